"""The engine health and message-bus checks fail for real on the lab, and pass again once healed."""
from __future__ import annotations

import time

import pytest

from conftest import LAB_INVENTORY, derived_inventory, run_checks

INVENTORY = f"--inventory={LAB_INVENTORY}"


def failed_names(run) -> set[str]:
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    return run.failed


@pytest.mark.lab_fault
def test_a_fresh_restart_fails_uptime(tmp_path, fault, heal):
    fault("restart", "ml")
    # The lab's own window (5 s) is about as long as a restart takes to turn healthy on a busy machine.
    wide_window = f"--inventory={derived_inventory(tmp_path, {'min_uptime_s': 120})}"
    run = run_checks(tmp_path, "-m", "daily", "-k", "test_engine_uptime and ml", wide_window)
    assert failed_names(run) == {"test_engine_uptime[ml-engine]"}
    assert "restarted recently" in run.messages["test_engine_uptime[ml-engine]"]
    heal()
    assert failed_names(run_checks(tmp_path, "-m", "daily", "-k", "test_engine_uptime and ml", INVENTORY)) == set()


@pytest.mark.lab_fault
@pytest.mark.parametrize("engine, message", [
    ("factor", "factor_definitions_loaded = 0 (must be at least 1)"),  # guide flavour
    ("risk", "active_limits = 0 (must be at least 1)"),                # real flavour
])
def test_a_degraded_engine_fails_health_values_only(tmp_path, fault, heal, engine, message):
    args = ("-m", "emergency or daily", "-k", f"engine and {engine}", INVENTORY)
    fault("degraded", engine)
    run = run_checks(tmp_path, *args)
    assert failed_names(run) == {f"test_engine_health_values[{engine}-engine]"}
    assert message in run.messages[f"test_engine_health_values[{engine}-engine]"]
    heal()
    assert failed_names(run_checks(tmp_path, *args)) == set()


@pytest.mark.lab_fault
def test_a_silent_bus_connection_is_caught_though_the_engine_claims_connected(tmp_path, fault, heal):
    args = ("-m", "daily", "-k", "(messagebus or bus or heartbeat) and strategy", INVENTORY)
    fault("idle-bus", "strategy")
    time.sleep(16)  # past the heartbeat key's 15 s expiry and the lab's bus_idle_max_s (10 s)
    run = run_checks(tmp_path, *args)
    # The engine still says messagebus_connected: true; Redis shows a silent connection and no heartbeat.
    assert failed_names(run) == {"test_engine_bus_idle[strategy-engine]", "test_engine_heartbeat_fresh[strategy-engine]"}
    assert "connected but silent" in run.messages["test_engine_bus_idle[strategy-engine]"]
    heal()
    assert failed_names(run_checks(tmp_path, *args)) == set()
