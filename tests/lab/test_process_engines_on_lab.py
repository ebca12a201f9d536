"""Engines as plain processes (docker: false), judged on what they have: three lab engines run outside any
container (lab/processes.py), found by their pid files, their Redis connections by their own sockets, their logs
read from their files; real faults fail the named checks, and the checks pass again once healed."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import LAB_INVENTORY, ROOT, derived_inventory, run_checks
from lab import processes

ALPHA, BETA, GAMMA = processes.ENGINES
ENGINES_ARGS = [arg for e in processes.ENGINES for arg in ("--engine", e.name)]


@pytest.fixture(scope="module")
def process_engines(lab):
    """The lab's three plain-process engines, up and healthy; stopped after the module, whatever happened."""
    processes.down()  # none left from a run killed mid-way
    processes.up()
    yield processes.ENGINES
    processes.down()


@pytest.fixture
def healed(process_engines):
    """Each test leaves the process engines as it found them: healthy, no fault, fresh logs."""
    yield
    for engine in processes.ENGINES:
        processes.heal(engine)


def process_inventory(tmp_path: Path, thresholds: dict | None = None) -> Path:
    """The lab inventory plus the process engines as `docker: false` engines: found by their pid files, read
    from their log files, restarted by the lab. No client name: their bus connections must be recognised by
    their own sockets. Redis is named by its lab-network address too, where the process engines reach it."""
    document = yaml.safe_load(LAB_INVENTORY.read_text())
    added = {e.name: {"port": e.port, "docker": False,
                      "process": {"pid_file": str(e.pid_file), "log_file": str(e.log_file),
                                  "restart_command": [sys.executable, "-m", "lab", "processes", "heal", e.name]},
                      "bus": {"heartbeat_key": f"nautilus:heartbeat:{e.name}"}} for e in processes.ENGINES}
    return derived_inventory(tmp_path, thresholds, engines={**document["engines"], **added},
                             redis={"internal_host": processes.redis_address()})


def checks(tmp_path: Path, inventory: Path, selection: str, tier: str = "daily"):
    run = run_checks(tmp_path, f"--inventory={inventory}", *ENGINES_ARGS, "-m", tier, "-k", selection)
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    return run


def test_process_engines_are_on_the_bus_and_a_silent_connection_fails_idle(tmp_path, healed):
    inventory = process_inventory(tmp_path)
    selection = "engine-bus-connection or engine-bus-idle or engine-heartbeat-fresh"
    run = checks(tmp_path, inventory, selection)
    # Every process engine is judged (recognised by its sockets, no client name), and passes.
    assert {name for name, outcome in run.outcomes.items() if outcome == "passed"} == {
        f"test_engine_{check}[{e.name}-engine]" for e in processes.ENGINES
        for check in ("bus_connection", "bus_idle", "heartbeat_fresh")}, run.output[-3000:]
    processes.fault(ALPHA, "idle-bus")
    time.sleep(16)  # past the heartbeat key's 15 s expiry and the lab's bus_idle_max_s (10 s)
    run = checks(tmp_path, inventory, selection)
    assert run.failed == {"test_engine_bus_idle[alpha-engine]", "test_engine_heartbeat_fresh[alpha-engine]"}
    assert "connected but silent" in run.messages["test_engine_bus_idle[alpha-engine]"]
    assert "check-messagebus alpha" in run.output  # its helper judges a process from its sockets, not Docker
    seen = helper("check-messagebus", ALPHA.name, inventory)
    assert seen.returncode == 0, seen.stderr
    assert "a Redis connection of alpha's process" in seen.stdout and "connected but silent" in seen.stdout
    assert "Docker endpoint" not in seen.stdout and "diagnose-engine" not in seen.stdout
    processes.heal(ALPHA)
    assert checks(tmp_path, inventory, selection).failed == set()


def test_a_killed_process_engine_fails_port_open_and_the_fix_is_the_process_not_docker(tmp_path, healed):
    inventory = process_inventory(tmp_path)
    selection = "port-open or engine-health-answers or engine-bus-connection"
    assert checks(tmp_path, inventory, selection, "emergency").failed == set()
    processes.kill(BETA)
    run = checks(tmp_path, inventory, selection, "emergency")
    assert run.roots == {f"test_port_open[port-{BETA.port}]"}, run.output[-3000:]
    # What rests on the port is blocked by it, not a root cause of its own.
    assert run.outcomes["test_engine_bus_connection[beta-engine]"] == "blocked"
    message = run.messages[f"test_port_open[port-{BETA.port}]"]
    assert "connection refused" in message.lower()
    root_line = next(line for line in run.output.splitlines() if line.strip().startswith("fix:") and "beta" in line)
    assert "diagnose-process beta" in root_line and "restart-process beta" in root_line
    assert "docker" not in root_line.lower() and "free-port" not in root_line
    # The helpers the fix names work on the process, never on Docker.
    diagnosis = helper("diagnose-process", BETA.name, inventory)
    assert diagnosis.returncode == 0, diagnosis.stderr
    assert "NOT FOUND" in diagnosis.stdout and "is not running" in diagnosis.stdout
    assert "Docker endpoint" not in diagnosis.stdout
    refused = helper("diagnose-startup", BETA.name, inventory)
    assert refused.returncode == 2 and "runs as a plain process (docker: false)" in refused.stderr
    dry = helper("restart-process", BETA.name, inventory)
    assert dry.returncode == 0 and "dry run" in dry.stdout and processes.running(BETA) is None
    restarted = helper("restart-process", BETA.name, inventory, "--apply", "--yes")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert processes.running(BETA) is not None
    processes.wait_ready(BETA)
    assert checks(tmp_path, inventory, selection, "emergency").failed == set()


def helper(name: str, engine: str, inventory: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remediation", name, engine, f"--inventory={inventory}", *extra],
                          cwd=ROOT, text=True, capture_output=True, timeout=120,
                          env={**os.environ, "NAUTILUS_AUDIT_LOG": str(inventory.parent / "audit.log")})


def test_an_error_burst_in_a_process_engines_log_file_fails_its_log_checks(tmp_path, healed):
    inventory = process_inventory(tmp_path)
    selection = "process-log"
    assert checks(tmp_path, inventory, selection).failed == set()
    processes.fault(GAMMA, "error-burst", count=30)  # "upstream timeout": error lines that are slow lines too
    processes.fault(BETA, "known-error", text="Database connection timeout")
    run = checks(tmp_path, inventory, selection)
    assert run.failed == {"test_process_log_error_rate[gamma-engine]", "test_process_log_slow_operations[gamma-engine]",
                          "test_process_log_known_errors[beta-engine]"}, run.output[-3000:]
    assert "saw 30" in run.messages["test_process_log_error_rate[gamma-engine]"]
    assert "db-connection-timeout" in run.messages["test_process_log_known_errors[beta-engine]"] or \
        "Database connection timeout" in run.messages["test_process_log_known_errors[beta-engine]"]
    assert "diagnose-process gamma" in run.output and "docker logs" not in run.output
    processes.heal(GAMMA)  # restarted with its log rotated, as logrotate and a restart leave it
    processes.heal(BETA)
    assert checks(tmp_path, inventory, selection).failed == set()


def test_connection_churn_fails_the_churn_check(tmp_path, healed):
    inventory = process_inventory(tmp_path)
    selection = "redis-connection-churn"
    assert checks(tmp_path, inventory, selection).failed == set()
    processes.fault(ALPHA, "conn-churn", count=50)  # a new Redis connection for every read, ~20-50 a second
    run = checks(tmp_path, inventory, selection)
    assert run.failed == {"test_redis_connection_churn"}, run.output[-3000:]
    assert "new connections" in run.messages["test_redis_connection_churn"]
    processes.heal(ALPHA)
    assert checks(tmp_path, inventory, selection).failed == set()


def test_a_process_engines_memory_and_cpu_are_judged_as_a_containers(tmp_path, healed):
    # Lowered bounds, stated: the lab machine has tens of GB and shares its CPUs with the suite's own tests, so a
    # 250 MB leak is ~1 % of the host's memory and a busy loop gets a third of a core. Healthy engines use
    # ~70 MB and ~1 % of a core, within these bounds.
    lowered = {"memory_high_pct": 0.6, "memory_warning_pct": 0.8, "memory_critical_pct": 0.9,
               "cpu_warning_pct": 5, "cpu_critical_pct": 15}
    total_mb = __import__("psutil").virtual_memory().total / 2**20
    leak_mb = total_mb * 0.012  # takes the engine past 0.8 % of the host's memory
    inventory = process_inventory(tmp_path, lowered)
    selection = "process-memory-usage or process-cpu-usage"
    assert checks(tmp_path, inventory, selection).failed == set()
    processes.fault(BETA, "cpu")
    processes.fault(GAMMA, "leak", mb_per_s=200, max_mb=min(leak_mb, 4000))
    time.sleep(max(3, leak_mb / 200 + 1))
    run = checks(tmp_path, inventory, selection)
    assert run.failed == {"test_process_cpu_usage[beta-engine]", "test_process_memory_usage[gamma-engine]"}, \
        run.output[-3000:]
    assert "host memory" in run.messages["test_process_memory_usage[gamma-engine]"]
    processes.heal(BETA)
    processes.heal(GAMMA)
    assert checks(tmp_path, inventory, selection).failed == set()
