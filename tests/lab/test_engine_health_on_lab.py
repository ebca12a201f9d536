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
@pytest.mark.parametrize("engine,beat", [("strategy", "key absent"),  # its heartbeat key
                                         ("risk", "s old")])  # its entries in the stream every engine writes
def test_a_silent_bus_connection_is_caught_though_the_engine_claims_connected(tmp_path, fault, heal, engine, beat):
    args = ("-m", "daily", "-k", f"(messagebus or bus or heartbeat) and {engine}", INVENTORY)
    fault("idle-bus", engine)
    time.sleep(16)  # past the heartbeat key's 15 s expiry, the lab's 15 s beat age and its bus_idle_max_s (10 s)
    run = run_checks(tmp_path, *args)
    # The engine still says messagebus_connected: true; Redis shows a silent connection and no heartbeat.
    assert failed_names(run) == {f"test_engine_bus_idle[{engine}-engine]", f"test_engine_heartbeat_fresh[{engine}-engine]"}
    assert "connected but silent" in run.messages[f"test_engine_bus_idle[{engine}-engine]"]
    assert beat in run.messages[f"test_engine_heartbeat_fresh[{engine}-engine]"]
    if engine == "risk":
        assert "stream nautilus:messagebus entry with engine=risk, kind=heartbeat" in \
            run.messages["test_engine_heartbeat_fresh[risk-engine]"]
    heal()
    assert failed_names(run_checks(tmp_path, *args)) == set()
