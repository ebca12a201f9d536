"""One root cause, one finding: what depends on a failed check is reported as blocked by it, on the real lab."""
from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import LAB_INVENTORY, run_checks
from remediation.invocation import render

INVENTORY = f"--inventory={LAB_INVENTORY}"


def roots_and_blocked(run) -> tuple[set[str], set[str]]:
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    blocked = {name for name in run.failed if "blocked by " in run.messages.get(name, "")}
    return run.failed - blocked, blocked


@pytest.mark.lab_fault
def test_a_stopped_engine_is_one_root_cause_with_one_fix(tmp_path, fault, heal):
    fault("stop", "risk")
    run = run_checks(tmp_path, "-m", "daily", "-k", "risk or 8200", INVENTORY, reports=True)
    roots, blocked = roots_and_blocked(run)
    assert roots == {"test_container_running[nautilus-risk-engine]"}
    assert {"test_engine_health_answers[risk-engine]", "test_port_open[port-8200]",
            "test_container_healthy[nautilus-risk-engine]", "test_engine_status_healthy[risk-engine]"} <= blocked
    assert "blocked by container-running[nautilus-risk-engine]" in run.messages["test_engine_health_answers[risk-engine]"]
    assert "remediation:" not in run.messages["test_engine_health_answers[risk-engine]"]
    assert "root causes (1): fix these first" in run.output
    assert f"rerun only the root causes: {sys.executable} -m pytest" in run.output
    assert run.output.count(f"fix: {render(['start-container', 'nautilus-risk-engine'])}") == 1
    assert run.returncode == 1  # still a failed run
    # The HTML and Allure reports say the same: blocked, and by what.
    assert "blocked by container-running[nautilus-risk-engine]: fix that first" in (tmp_path / "report.html").read_text()
    labels = [label for path in (tmp_path / "allure").glob("*-result.json")
              for label in json.loads(path.read_text()).get("labels", [])]
    assert {"name": "blocked_by", "value": "container-running[nautilus-risk-engine]"} in labels
    heal()
    assert run_checks(tmp_path, "-m", "daily", "-k", "risk or 8200", INVENTORY).failed == set()


@pytest.mark.lab_fault
def test_stopped_redis_blocks_every_bus_check_behind_one_cause(tmp_path, fault, heal):
    fault("stop", "redis")
    time.sleep(6)  # the engines notice the lost bus
    run = run_checks(tmp_path, "-m", "emergency", INVENTORY)
    roots, blocked = roots_and_blocked(run)
    assert roots == {"test_container_running[nautilus-redis]"}
    assert {f"test_engine_bus_connection[{e}-engine]" for e in ("risk", "ml")} <= blocked
    assert "test_redis_ping" in blocked and "test_engine_messagebus_flag[risk-engine]" in blocked
    heal()


def dockerd_pid() -> int:
    return int(Path("/var/run/docker.pid").read_text().strip())


@pytest.mark.lab_fault
def test_a_frozen_docker_daemon_is_the_root_of_every_container_check(tmp_path, lab):
    """dockerd stopped with SIGSTOP: the containers run on, the API answers nothing within its timeout."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        run = run_checks(tmp_path, "-m", "emergency", INVENTORY)
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    roots, blocked = roots_and_blocked(run)
    assert roots == {"test_docker_daemon_answers"}, sorted(roots)
    assert "test_container_running[nautilus-risk-engine]" in blocked
    message = run.messages["test_docker_daemon_answers"]
    assert "is running but does not answer" in message and f"dockerd pid {pid} is in state T (stopped)" in message
    assert f"sudo kill -CONT {pid}" in message and "sudo systemctl restart docker" in message
    assert "systemctl start docker" not in message  # it runs: starting it is no fix
    assert "start-container" not in run.output and "restart-container" not in run.output
    assert elapsed < 60
    subprocess.run(["docker", "info"], capture_output=True, timeout=30)  # the daemon answers again
    assert run_checks(tmp_path, "-m", "emergency", INVENTORY).failed == set()


@pytest.mark.lab_fault
def test_reruns_during_an_incident_keep_the_root_cause_reporting(tmp_path, fault, heal):
    """--lf, --engine and the printed root-cause rerun all keep one root cause and its fix."""
    import shlex
    import sys

    from conftest import ROOT
    env = dict(os.environ)
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    reports = [f"--html={tmp_path / 'r.html'}", f"--alluredir={tmp_path / 'a'}", f"--state-dir={tmp_path / 's'}"]
    base = [sys.executable, "-m", "pytest", "-q", "-o", f"cache_dir={tmp_path / 'cache'}", *reports, INVENTORY]

    def run(cmd: list[str]) -> str:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        return done.stdout.splitlines()[-1] if done.stdout else done.stderr

    fault("stop", "risk")
    done = subprocess.run(base + ["-m", "emergency"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert re.search(r"1 failed, \d+ passed, \d+ deselected, \d+ blocked", done.stdout.splitlines()[-1])
    rerun = next(line for line in done.stdout.splitlines() if line.startswith("rerun only the root causes: "))
    command = rerun.split(": ", 1)[1]
    assert shlex.split(command)[:3] == [sys.executable, "-m", "pytest"]
    # Pasted as printed into a bare shell elsewhere: no venv, only the system's bin directories on PATH.
    pasted = subprocess.run(command, shell=True, cwd="/tmp", capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin",
                                 "NAUTILUS_POSTGRES_PASSWORD_FILE": env["NAUTILUS_POSTGRES_PASSWORD_FILE"]})
    assert re.search(r"\b1 failed in", pasted.stdout.splitlines()[-1]), pasted.stdout[-2000:] + pasted.stderr
    # Blocked checks are not failures: --lf reruns the root cause alone, as the printed rerun does.
    assert re.search(r"^1 failed(, \d+ deselected)? in", run(base + ["--lf"]))
    assert re.search(r"1 failed, \d+ passed, \d+ deselected, \d+ blocked",
                     run(base + ["-m", "emergency", "--engine", "risk"]))
    heal()
    assert re.search(r"^\d+ passed", run(base + ["--lf"]))


@pytest.mark.lab_fault
def test_an_engine_down_across_runs_for_over_an_hour_is_level_3(tmp_path, fault, heal):
    """The guide's "service outage longer than an hour": only the runs before this one can say since when."""
    state = tmp_path / "state"
    args = ("-m", "emergency", "-k", "risk or 8200", INVENTORY, f"--state-dir={state}")
    fault("stop", "risk")
    first = run_checks(tmp_path, *args)
    assert "escalation: Level 1" in first.output and "outage longer than an hour" not in first.output
    down = json.loads((state / "outages.json").read_text())
    assert set(down) == {"risk"}
    # An hour of cron runs, in one step: the first run that saw the engine down is put two hours back.
    since = datetime.fromisoformat(down["risk"]) - timedelta(hours=2)
    (state / "outages.json").write_text(json.dumps({"risk": since.isoformat()}))
    later = run_checks(tmp_path, *args)
    assert re.search(r"escalation: Level 3 - Platform Architect .*: outage longer than an hour: risk down since "
                     rf"{since:%H:%M} UTC \(1[23]\d min\)", later.output), later.output[-2000:]
    heal()
    assert run_checks(tmp_path, *args).failed == set()
    assert json.loads((state / "outages.json").read_text()) == {}
