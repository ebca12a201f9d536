"""The checks against the lab: all pass when healthy; a real fault fails exactly the checks it should.

Each test breaks the lab for real, runs the tier as an SRE would (a pytest
subprocess), compares the set of failed checks with the expected set, then
heals the lab and sees the same checks pass again.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from conftest import LAB_INVENTORY, lab_container, run_checks
from remediation.invocation import render

ENGINES = ["analytics", "risk", "factor", "ml", "features", "websocket", "strategy", "marketdata", "portfolio"]
INVENTORY = (f"--inventory={LAB_INVENTORY}",)


def engine_down(engine: str, port: int) -> set[str]:
    container = f"nautilus-{engine}-engine"
    return {
        f"test_container_running[{container}]",
        f"test_container_healthy[{container}]",
        f"test_engine_health_answers[{engine}-engine]",
        f"test_engine_status_healthy[{engine}-engine]",
        f"test_engine_messagebus_flag[{engine}-engine]",
        f"test_engine_bus_connection[{engine}-engine]",
        f"test_port_open[port-{port}]",
    }


def assert_failed_exactly(run, expected: set[str]) -> None:
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    assert run.failed == expected, (
        f"unexpected failures: {sorted(run.failed - expected)}\nmissing failures: {sorted(expected - run.failed)}"
        f"\n{run.output[-3000:]}")


@pytest.mark.usefixtures("lab")
@pytest.mark.parametrize("tier", ["emergency", "daily"])
def test_healthy_lab_passes(tmp_path, tier):
    run = run_checks(tmp_path, "-m", tier, *INVENTORY)
    assert_failed_exactly(run, set())
    assert run.returncode == 0
    assert len(run.outcomes) > 60


@pytest.mark.lab_fault
def test_stopped_engine(tmp_path, fault, heal):
    fault("stop", "risk")
    run = run_checks(tmp_path, "-m", "emergency", *INVENTORY)
    assert_failed_exactly(run, engine_down("risk", 8200))
    assert "blocked by container-running[nautilus-risk-engine]" in run.messages["test_engine_health_answers[risk-engine]"]
    assert render(['start-container', 'nautilus-risk-engine']) in run.messages["test_container_running[nautilus-risk-engine]"]
    # The printed command, pasted into a bare shell elsewhere: no venv, only the system's bin directories on PATH,
    # no password (starting a container needs none). It prints its plan and changes nothing.
    printed = re.search(r"remediation: (.*?)   \(dry run", run.messages["test_container_running[nautilus-risk-engine]"])
    pasted = subprocess.run(["/bin/sh", "-c", printed.group(1)], cwd="/tmp", env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60)
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert "dry run of " in pasted.stdout and "docker start" in pasted.stdout.lower(), pasted.stdout
    assert lab_container("nautilus-risk-engine").status == "exited"
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "risk", *INVENTORY), set())


@pytest.mark.lab_fault
def test_stopped_redis(tmp_path, fault, heal):
    fault("stop", "redis")
    time.sleep(6)  # engines notice a lost bus within 5 s
    run = run_checks(tmp_path, "-m", "emergency", *INVENTORY)
    expected = {"test_container_running[nautilus-redis]", "test_container_healthy[nautilus-redis]",
                "test_port_open[port-6379]", "test_redis_ping"}
    expected |= {f"test_engine_messagebus_flag[{e}-engine]" for e in ENGINES}
    expected |= {f"test_engine_bus_connection[{e}-engine]" for e in ENGINES}
    expected |= {f"test_engine_heartbeat_fresh[{e}-engine]" for e in ENGINES}
    assert_failed_exactly(run, expected)
    assert render(['start-container', 'nautilus-redis']) in run.messages["test_container_running[nautilus-redis]"]
    assert "blocked by container-running[nautilus-redis]" in run.messages["test_redis_ping"]
    assert "cannot observe: redis" in run.messages["test_engine_bus_connection[risk-engine]"]
    heal()
    time.sleep(5)  # engines reconnect and beat again
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", *INVENTORY), set())


@pytest.mark.lab_fault
def test_stopped_postgres(tmp_path, fault, heal):
    fault("stop", "postgres")
    run = run_checks(tmp_path, "-m", "emergency", *INVENTORY)
    assert_failed_exactly(run, {"test_container_running[nautilus-postgres]", "test_container_healthy[nautilus-postgres]",
                                "test_port_open[port-5432]", "test_postgres_ready"})
    assert render(['start-container', 'nautilus-postgres']) in \
        run.messages["test_container_running[nautilus-postgres]"]
    assert "blocked by container-running[nautilus-postgres]" in run.messages["test_postgres_ready"]
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "postgres", *INVENTORY), set())


@pytest.mark.lab_fault
def test_unhealthy_engine_real_flavour(tmp_path, fault, heal):
    fault("unhealthy", "risk")
    run = run_checks(tmp_path, "-m", "emergency", *INVENTORY)
    assert_failed_exactly(run, {"test_engine_status_healthy[risk-engine]"})
    assert "'stopped'" in run.messages["test_engine_status_healthy[risk-engine]"]
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "risk", *INVENTORY), set())


@pytest.mark.lab_fault
def test_bus_lie_is_caught_from_redis(tmp_path, fault, heal):
    fault("bus-lie", "features")
    time.sleep(1)
    run = run_checks(tmp_path, "-m", "emergency", "-k", "features", *INVENTORY)
    assert_failed_exactly(run, {"test_engine_bus_connection[features-engine]"})
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "features", *INVENTORY), set())


@pytest.mark.lab_fault
def test_slow_engine_fails_latency_only(tmp_path, fault, heal):
    fault("slow", "ml", "--ms", "1500")
    run = run_checks(tmp_path, "-m", "daily", "-k", "ml", *INVENTORY)
    assert_failed_exactly(run, {"test_engine_health_latency[ml-engine]"})
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "ml", *INVENTORY), set())


@pytest.mark.usefixtures("lab")
def test_engine_option_narrows_the_run(tmp_path):
    run = run_checks(tmp_path, "-m", "emergency", "--engine", "risk", *INVENTORY)
    engine_ids = {name for name in run.outcomes if "-engine]" in name}
    assert engine_ids and all("risk" in name for name in engine_ids)
    assert "test_redis_ping" in run.outcomes


@pytest.mark.usefixtures("lab")
def test_wrong_password_is_one_clear_reason_and_never_shown(tmp_path):
    wrong = "not-the-lab-password-42"
    run = run_checks(tmp_path, "-m", "emergency", "-k", "postgres", *INVENTORY,
                     env={"NAUTILUS_POSTGRES_PASSWORD": wrong})
    assert run.failed == {"test_postgres_ready"}
    assert "password authentication failed; check NAUTILUS_POSTGRES_PASSWORD" in run.messages["test_postgres_ready"]
    for written in [run.output, *(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())]:
        assert wrong not in written


@pytest.mark.lab_fault
def test_bus_seen_by_address_when_the_engine_names_no_client(tmp_path, fault, heal):
    """Real engines may set no client name: the container's address in CLIENT LIST is the evidence."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(LAB_INVENTORY.read_text().replace(
        'bus: {client_name: nautilus-features-engine, heartbeat_key: "nautilus:heartbeat:features"}',
        "bus: {client_name: null, heartbeat_key: null}"))
    args = ("-m", "emergency", "-k", "features and messagebus", f"--inventory={inventory}")
    assert_failed_exactly(run_checks(tmp_path, *args), set())
    fault("bus-down", "features")
    run = run_checks(tmp_path, *args)
    assert_failed_exactly(run, {"test_engine_messagebus_flag[features-engine]",
                                "test_engine_bus_connection[features-engine]"})
    # Docker picks the lab network's subnet from its address pools (172.x, or 192.168.x once those are used).
    assert re.search(r"a Redis connection from nautilus-features-engine \(\d+\.\d+\.\d+\.\d+\)",
                     run.messages["test_engine_bus_connection[features-engine]"])
    heal()
    assert_failed_exactly(run_checks(tmp_path, *args), set())


@pytest.mark.lab_fault
def test_default_reports_with_xdist_carry_every_result(fault):
    """No --html/--alluredir: the run names its own reports under reports/out, workers included."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT
    fault("unhealthy", "risk")
    env = dict(os.environ)
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "emergency", "-n", "2",
                           *INVENTORY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    paths = dict(line.split(": ", 1) for line in done.stdout.splitlines()
                 if line.startswith(("HTML report: ", "Allure results: ")))
    html, allure_dir = Path(paths["HTML report"]), Path(paths["Allure results"])
    try:
        assert html.name.startswith("emergency-") and html.parent == ROOT / "reports" / "out"
        results = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
        assert len(results) == int(done.stdout.split(" passed")[0].split()[-1]) + 1
        failed = [r for r in results if r["status"] == "failed"]
        assert [r["name"] for r in failed] == ["Engine reports status healthy [risk-engine]"]
        labels = {(label["name"], label["value"]) for label in failed[0]["labels"]}
        assert {("tier", "emergency"), ("engine", "risk"), ("severity", "critical"),
                ("check", "engine-status-healthy")} <= labels
        page = html.read_text()
        assert render(['restart-engine', 'risk']) in page
    finally:
        html.unlink(missing_ok=True)
        shutil.rmtree(allure_dir, ignore_errors=True)


@pytest.mark.lab_fault
def test_stopped_engine_in_the_daily_tier(tmp_path, fault, heal):
    fault("stop", "strategy")
    run = run_checks(tmp_path, "-m", "daily", "-k", "strategy or 8700", *INVENTORY)
    assert_failed_exactly(run, engine_down("strategy", 8700) | {
        "test_engine_health_latency[strategy-engine]", "test_engine_uptime[strategy-engine]",
        "test_engine_bus_idle[strategy-engine]", "test_container_cpu_usage[nautilus-strategy-engine]",
        "test_container_memory_usage[nautilus-strategy-engine]", "test_engine_error_rate[strategy-engine]",
        "test_engine_metrics_readable[strategy-engine]", "test_engine_reaches_postgres[strategy-engine]",
        "test_engine_reaches_redis[strategy-engine]", "test_engine_memory_growth_between_runs[strategy-engine]",
        "test_engine_postgres_login[strategy-engine]"})
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "strategy or 8700", *INVENTORY), set())


@pytest.mark.lab_fault
def test_removed_container(tmp_path, fault, heal):
    fault("remove", "frontend")
    run = run_checks(tmp_path, "-m", "emergency", "-k", "frontend or 3000", *INVENTORY)
    assert_failed_exactly(run, {f"test_container_{c}[nautilus-frontend]"
                                for c in ("exists", "running", "healthy", "not_restart_looping",
                                          "on_platform_network")}
                          | {"test_port_open[port-3000]", "test_service_health_answers[frontend]"})
    assert "no such container" in run.messages["test_container_exists[nautilus-frontend]"]
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "frontend or 3000", *INVENTORY), set())


@pytest.mark.lab_fault
def test_docker_marks_an_unhealthy_engine(tmp_path, fault, heal):
    fault("unhealthy", "analytics")
    engine = lab_container("nautilus-analytics-engine")
    deadline = time.monotonic() + 30
    while engine.attrs["State"]["Health"]["Status"] != "unhealthy":
        assert time.monotonic() < deadline, "Docker never marked the engine unhealthy"
        time.sleep(1)
        engine.reload()
    run = run_checks(tmp_path, "-m", "emergency", "-k", "analytics", *INVENTORY)
    assert_failed_exactly(run, {"test_container_healthy[nautilus-analytics-engine]",
                                "test_engine_health_answers[analytics-engine]",
                                "test_engine_status_healthy[analytics-engine]"})
    assert "unhealthy after" in run.messages["test_container_healthy[nautilus-analytics-engine]"]
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "analytics", *INVENTORY), set())


@pytest.mark.lab_fault
def test_stopped_backend(tmp_path, fault, heal):
    fault("stop", "backend")
    run = run_checks(tmp_path, "-m", "emergency", "-k", "backend or 8001", *INVENTORY)
    assert_failed_exactly(run, {"test_container_running[nautilus-backend]", "test_container_healthy[nautilus-backend]",
                                "test_service_health_answers[backend]", "test_port_open[port-8001]"})
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "emergency", "-k", "backend or 8001", *INVENTORY), set())
