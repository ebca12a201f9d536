"""The guide's procedures on the real lab: emergency restart keeps every byte, isolation and rebuild do what they say.

Each test applies its helper with `--apply --yes` and then runs the emergency
checks; a dry run of each is shown to change nothing at all.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import psycopg
import pytest
import redis

from conftest import LAB_INVENTORY, LAB_OWNED, ROOT, lab_cli, lab_docker, run_checks
from remediation.invocation import render

INVENTORY = f"--inventory={LAB_INVENTORY}"
STATE = ROOT / "lab" / ".state"
BACKUP_DIR, LOG_DIR = STATE / "backups", STATE / "logs"
ISOLATION_DIR = ROOT / "reports" / "out" / "isolation"
VOLUMES = ("nautilus-lab_postgres-data", "nautilus-lab_redis-data")
ROWS = 500


def remediation(*args: str, tmp_path: Path, timeout: float = 170) -> subprocess.CompletedProcess:
    env = dict(os.environ, NAUTILUS_AUDIT_LOG=str(tmp_path / "audit.log"))
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(STATE / "postgres-password"))
    return subprocess.run([sys.executable, "-m", "remediation", *args, INVENTORY], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def docker_client() -> docker.DockerClient:
    return lab_docker()


def bundle_of(stdout: str) -> Path:
    said = ("diagnostics saved to ", "diagnostics and isolation report saved to ")
    line = next(line for line in stdout.splitlines() if line.startswith(said))
    return Path(line.rsplit(" to ", 1)[1])


def containers_state() -> dict:
    """Every lab container: status, restart count, start time, networks."""
    return {c.name: (c.status, c.attrs["RestartCount"], c.attrs["State"]["StartedAt"],
                     sorted(c.attrs["NetworkSettings"]["Networks"]))
            for c in docker_client().containers.list(all=True,
                                                     filters=LAB_OWNED)}


def files_under(*folders: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for folder in folders if folder.exists()
            for p in folder.rglob("*") if p.is_file()}


def wait_for(predicate, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def emergency_checks(tmp_path: Path, *k: str):
    return run_checks(tmp_path, "-m", "emergency", *(("-k", k[0]) if k else ()), INVENTORY)


# -- emergency-restart --------------------------------------------------------------------------

@pytest.mark.lab_fault
def test_emergency_restart_keeps_rows_keys_volumes_and_backups(tmp_path, lab_password, heal):
    client, table, key = docker_client(), f"procedures_restart_{uuid.uuid4().hex[:8]}", f"procedures:{uuid.uuid4()}"
    dsn = dict(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus", password=lab_password,
               connect_timeout=5)
    planted = BACKUP_DIR / f"planted-procedures-{uuid.uuid4().hex[:8]}.sql.gz"
    r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, socket_connect_timeout=5)
    try:
        with psycopg.connect(**dsn) as conn:  # closed before the restart: PostgreSQL's smart shutdown waits on clients
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, payload text)")
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(i, f"row {i}") for i in range(ROWS)])
        r.set(key, "kept")
        planted.write_bytes(os.urandom(4096))
        backup_before = (hashlib.sha256(planted.read_bytes()).hexdigest(), planted.stat().st_mtime_ns)
        # The same volumes (the local driver's CreatedAt is its folder's mtime, so it moves with writes)
        volumes_before = {v: client.volumes.get(v).attrs["Mountpoint"] for v in VOLUMES}
        started_before = {n: s[2] for n, s in containers_state().items()}

        began = time.monotonic()
        done = remediation("emergency-restart", "--apply", "--yes", tmp_path=tmp_path)
        took = time.monotonic() - began
        print(f"emergency-restart took {took:.1f} s")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "emergency-restart done: 14 containers restarted in 4 phases, all validated" in done.stdout
        assert "pg_isready in nautilus-postgres: exit 0" in done.stdout
        assert "Redis PING at 127.0.0.1:6379: PONG" in done.stdout
        assert all(s[2] != started_before[n] for n, s in containers_state().items())  # every one restarted

        with psycopg.connect(**dsn) as conn:
            assert conn.execute(f"SELECT count(*), count(DISTINCT payload) FROM {table}").fetchone() == (ROWS, ROWS)
        assert r.get(key) == b"kept"
        assert {v: client.volumes.get(v).attrs["Mountpoint"] for v in VOLUMES} == volumes_before
        for name, volume in (("nautilus-postgres", VOLUMES[0]), ("nautilus-redis", VOLUMES[1])):
            assert volume in {m.get("Name") for m in client.containers.get(name).attrs["Mounts"]}
        assert (hashlib.sha256(planted.read_bytes()).hexdigest(), planted.stat().st_mtime_ns) == backup_before
        bundle = bundle_of(done.stdout)
        assert {"manifest.json", "docker-ps.txt", "post-restart-validation.json", "post-restart-validation.log"} <= \
            {p.name for p in bundle.iterdir()}
        validation = json.loads((bundle / "post-restart-validation.json").read_text())
        assert all(p["open"] for p in validation["ports"].values()) and len(validation["engines"]) == 9
        audit = json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
        assert (audit["helper"], audit["target"]) == ("emergency-restart", "platform")

        run = emergency_checks(tmp_path)
        assert run.returncode == 0 and run.failed == set(), run.output[-3000:]
        assert len(run.outcomes) > 100
    finally:
        with psycopg.connect(**dsn) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        r.delete(key)
        r.close()
        planted.unlink(missing_ok=True)
        if any(s[0] != "running" for s in containers_state().values()):
            heal()


# -- isolate-engine / restore-engine ------------------------------------------------------------

@pytest.mark.lab_fault
def test_isolate_then_restore_an_engine(tmp_path, heal):
    """Isolation opens a maintenance window: daily exits 0 naming ml in maintenance; restore closes it."""
    name, marker = "nautilus-ml-engine", ISOLATION_DIR / "ml.json"
    state = f"--state-dir={tmp_path / 'state'}"  # the helpers' and the runs' state: where the window lives
    try:
        done = remediation("isolate-engine", "ml", "--apply", "--yes", state, tmp_path=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        status, _, _, networks = containers_state()[name]
        assert (status, networks) == ("exited", [])
        assert json.loads(marker.read_text())["networks"]["nautilus-lab_nautilus-network"]["aliases"] == \
            ["nautilus-ml-engine", "ml-engine"]
        assert "=== Engine Isolation Report ===" in (bundle_of(done.stdout) / "isolation-report.log").read_text()

        # ml's checks: what other lab tests left elsewhere (an engine's old error lines, the host's load) is not
        # this test's subject.
        isolated = run_checks(tmp_path, "-m", "daily", "-k", "ml-engine or port-8400", INVENTORY, state)
        assert isolated.returncode == 0 and isolated.failed == set(), isolated.output[-3000:]
        in_maintenance = {n for n, o in isolated.outcomes.items() if o == "skipped" and
                          "ml in maintenance: isolated by isolate-engine" in isolated.messages[n]}
        assert {"test_container_running[nautilus-ml-engine]", "test_port_open[port-8400]",
                "test_engine_health_answers[ml-engine]", "test_engine_bus_connection[ml-engine]"} <= in_maintenance
        assert all("ml-engine" in n or "8400" in n for n in in_maintenance)
        assert "ml in maintenance: isolated by isolate-engine at " in isolated.output
        assert f"restore with {render(['restore-engine', 'ml'])}" in isolated.output

        restored = remediation("restore-engine", "ml", "--apply", "--yes", state, tmp_path=tmp_path)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "nautilus-ml-engine is running and healthy" in restored.stdout and not marker.exists()
        assert "closed the maintenance window of ml" in restored.stdout
        assert containers_state()[name][3] == ["nautilus-lab_nautilus-network"]
        wait_for(lambda: emergency_checks(tmp_path, "ml-engine or port-8400").failed == set(),
                 "the ml engine's emergency checks to pass", 30)
        judged = run_checks(tmp_path, "-m", "daily", "-k", "ml-engine or port-8400", INVENTORY, state)
        assert judged.returncode == 0 and "in maintenance" not in judged.output
        assert judged.outcomes["test_container_running[nautilus-ml-engine]"] == "passed"
    finally:
        if marker.exists():
            remediation("restore-engine", "ml", "--apply", "--yes", state, tmp_path=tmp_path)
        if containers_state()[name][0] != "running":
            heal()


# -- rebuild-engine -----------------------------------------------------------------------------

@pytest.mark.lab_fault
def test_rebuild_fixes_the_factor_crash_loop(tmp_path, fault):
    fault("crash-loop", "factor")
    wait_for(lambda: docker_client().containers.get("nautilus-factor-engine").attrs["RestartCount"] >= 2,
             "the crash loop to loop (restarts of the same container keep crashing)", 30)
    diagnosis = remediation("diagnose-startup", "factor", tmp_path=tmp_path)
    assert "ImportError: cannot import name 'MessagePriority'" in diagnosis.stdout

    done = remediation("rebuild-engine", "factor", "--apply", "--yes", tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "factor-engine has no build section: rebuild = recreate" in done.stdout
    assert "nautilus-factor-engine is running and healthy" in done.stdout
    run = emergency_checks(tmp_path, "factor-engine or port-8300")
    assert run.returncode == 0 and run.failed == set() and len(run.outcomes) >= 8, run.output[-3000:]


# -- dry runs -----------------------------------------------------------------------------------

@pytest.mark.lab_fault
def test_dry_run_of_each_procedure_changes_nothing(tmp_path, lab):
    marker = ISOLATION_DIR / "strategy.json"  # restore-engine needs a marker to show its plan
    bundles = ROOT / "reports" / "out" / "bundles"
    ISOLATION_DIR.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"engine": "strategy", "isolated_at": "test",
                                  "networks": {"nautilus-lab_nautilus-network": {"aliases": ["strategy-engine"]}}}))
    try:
        containers, files = containers_state(), files_under(BACKUP_DIR, LOG_DIR)
        bundles_before = set(bundles.iterdir()) if bundles.exists() else set()
        for args in (("emergency-restart",), ("isolate-engine", "ml"), ("restore-engine", "strategy"),
                     ("rebuild-engine", "factor")):
            dry = remediation(*args, tmp_path=tmp_path, timeout=60)
            assert dry.returncode == 0, dry.stderr
            assert "dry run: nothing changed" in dry.stdout and "1. " in dry.stdout
        assert containers_state() == containers
        assert files_under(BACKUP_DIR, LOG_DIR) == files
        assert (set(bundles.iterdir()) if bundles.exists() else set()) == bundles_before
        assert not (tmp_path / "audit.log").exists() and marker.exists()
    finally:
        marker.unlink(missing_ok=True)


def test_lab_compose_passthrough_runs_the_labs_compose(lab):
    done = subprocess.run([sys.executable, "-m", "lab", "compose", "version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and "Docker Compose version v2" in done.stdout
    lab_cli("status")
