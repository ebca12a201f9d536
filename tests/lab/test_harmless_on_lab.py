"""A plain run changes nothing it inspects: the lab snapshotted before and after full daily and weekly runs.

What is compared, and what is left out because the platform itself changes it:
- containers: id, state, paused, restart count, start time;
- PostgreSQL: every table's row count, except engine_heartbeats (the engines
  append a row every 10 s) and the rows of the suite's own probe calls
  (portfolio `health-probe`, the guide's POST probes); every table's manual
  VACUUM and ANALYZE counts and times;
- Redis: the key names and their types, and the memory and persistence settings
  (values change by the engines' own heartbeats and stream);
- files under the inventory's log and backup paths: names, sizes, modification times.
The suite's own connections (pg_stat_activity, CLIENT LIST) are not compared.
And no lab container logs an error line while the runs probe it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest
import redis

from conftest import LAB_INVENTORY, LAB_OWNED, ROOT, lab_docker
from observation.logs import ERRORS

PROBE_PORTFOLIO = "health-probe"
ENGINE_WRITTEN = {"engine_heartbeats"}
REDIS_SETTINGS = ("maxmemory", "maxmemory-policy", "save", "appendonly", "appendfsync")


def containers() -> dict:
    client = lab_docker()
    try:
        found = {}
        for c in client.containers.list(all=True, filters=LAB_OWNED):
            state = c.attrs["State"]
            found[c.name] = (c.id, state["Status"], state["Paused"], c.attrs["RestartCount"], state["StartedAt"])
        return found
    finally:
        client.close()


def database(password: str) -> dict:
    with psycopg.connect(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus", password=password,
                         connect_timeout=5) as conn:
        tables = [r[0] for r in conn.execute("SELECT relname FROM pg_stat_user_tables ORDER BY relname")]
        found = {}
        for table in tables:
            if table in ENGINE_WRITTEN:
                continue
            columns = {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))}
            probe = " WHERE portfolio IS DISTINCT FROM %s" if "portfolio" in columns else ""
            found[f"rows:{table}"] = conn.execute(f'SELECT count(*) FROM "{table}"{probe}',
                                                  (PROBE_PORTFOLIO,) if probe else ()).fetchone()[0]
        for row in conn.execute("SELECT relname, vacuum_count, analyze_count, last_vacuum, last_analyze "
                                "FROM pg_stat_user_tables"):
            found[f"maintenance:{row[0]}"] = row[1:]
        return found


def bus() -> dict:
    r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, socket_connect_timeout=5)
    try:
        # Keys with a time to live expire on their own (a heartbeat left by an engine that has stopped): only the
        # lasting ones can show what a run wrote or deleted.
        keys = {k.decode(): r.type(k).decode() for k in r.scan_iter(count=1000) if r.ttl(k) == -1}
        return {"keys": keys, "settings": {name: r.config_get(name).get(name) for name in REDIS_SETTINGS}}
    finally:
        r.close()


def files() -> dict:
    found = {}
    for folder in (LAB_INVENTORY.parent / ".state" / "logs", LAB_INVENTORY.parent / ".state" / "backups"):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = path.stat()
                found[str(path)] = (info.st_size, info.st_mtime_ns)
    return found


def snapshot(password: str) -> dict:
    return {"containers": containers(), "database": database(password), "bus": bus(), "files": files()}


def error_lines_since(since: int) -> dict:
    """Each lab container's log lines matching the suite's error grep, logged since `since` (unix seconds)."""
    client = lab_docker()
    try:
        return {c.name: [line for line in c.logs(since=since).decode(errors="replace").splitlines()
                         if ERRORS.search(line)]
                for c in client.containers.list(filters=LAB_OWNED)}
    finally:
        client.close()


@pytest.mark.usefixtures("lab")
def test_daily_and_weekly_runs_change_nothing_they_inspect(tmp_path, lab_password):
    started = int(time.time())
    before = snapshot(lab_password)
    env = dict(os.environ)
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    for tier in ("daily", "weekly"):
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", tier,
                               f"--inventory={LAB_INVENTORY}", f"--reports-dir={tmp_path}",
                               f"--state-dir={tmp_path / 'state'}"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode in (0, 1), done.stdout[-2000:]  # judged, whatever the verdicts
    after = snapshot(lab_password)
    for part in before:
        assert after[part] == before[part], part
    # Nor do its probes make any lab container log an error line (the engines' logs are what the log checks read).
    assert {name: lines for name, lines in error_lines_since(started).items() if lines} == {}
