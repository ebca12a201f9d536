"""The log checks against the lab: real lines written by real engines fail exactly the checks they should.

The checks read the last hour (or week), so a line logged by an earlier test
is still seen for an hour. Each test therefore starts its target from a
freshly created container (an empty log: `docker compose up --force-recreate`),
and judges the target's checks exactly; the other containers may carry lines
from earlier tests, so their outcomes are only required not to change because
of this fault. `heal` recreates a container whose log a fault wrote
(lab/faults.py RECREATE_ON_HEAL), so the target passes again afterwards.
"""
from __future__ import annotations

import time

import docker
import pytest

from conftest import LAB_INVENTORY, lab_container, run_checks
from observation.logs import OWN_PROBE_AFTER_S
from remediation.invocation import render

INVENTORY = f"--inventory={LAB_INVENTORY}"
HOURLY = "log_error_rate or log_slow_operations or log_known_errors"
LAB_KNOWN_ERRORS = {  # the lab's known-error texts -> the Knowledge Base ids they must be named as
    "MessageBus connection failed": "messagebus-connection-failed",
    "Database connection timeout": "database-connection-timeout",
    "Memory limit exceeded": "memory-limit-exceeded",
    "Health check timeout": "health-check-timeout",
    "No space left on device": "no-space-left",
    "Port already in use": "port-in-use",
}


def fresh(service: str) -> None:
    """Recreate one lab service so its Docker log starts empty, and wait until the lab is healthy."""
    from lab.compose import compose
    from lab.stack import compose_env, wait_healthy
    compose("up", "-d", "--force-recreate", "--no-deps", service, env=compose_env(), capture=True)
    wait_healthy()


def wait_for_line(container: str, text: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in lab_container(container).logs(tail=200).decode(errors="replace"):
        assert time.monotonic() < deadline, f"{container} did not log {text!r} within {timeout_s:.0f} s"
        time.sleep(1)


def of(run, container: str) -> set[str]:
    return {name for name in run.failed if name.endswith(f"[{container}]")}


def others(run, container: str) -> set[str]:
    return run.failed - of(run, container)


def daily(tmp_path, k: str = HOURLY):
    run = run_checks(tmp_path, "-m", "daily", "-k", k, INVENTORY)
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    return run


@pytest.mark.usefixtures("lab")
def test_healthy_lab_passes_the_log_checks(tmp_path):
    run = daily(tmp_path)
    assert run.failed == set(), {name: run.messages[name][:400] for name in run.failed}
    assert len(run.outcomes) == 3 * 14
    weekly = run_checks(tmp_path, "-m", "weekly", "-k", "weekly_error_summary", INVENTORY)
    assert weekly.failed == set() and len(weekly.outcomes) == 14, weekly.output[-3000:]


@pytest.mark.lab_fault
def test_error_lines_up_to_the_limit_pass_and_one_more_fails(tmp_path, fault, heal):
    fresh("ml-engine")
    before = daily(tmp_path)
    assert of(before, "nautilus-ml-engine") == set()
    fault("error-burst", "ml", "--count", "10")  # the limit: log_errors_per_hour 10
    at_limit = daily(tmp_path)
    # Each burst line also says "timeout", which the guide's slow grep counts: 10 is that limit too.
    assert of(at_limit, "nautilus-ml-engine") == set(), at_limit.output[-3000:]
    fault("error-burst", "ml", "--count", "1")
    over = daily(tmp_path)
    assert of(over, "nautilus-ml-engine") == {"test_log_error_rate[nautilus-ml-engine]",
                                              "test_log_slow_operations[nautilus-ml-engine]"}
    assert others(over, "nautilus-ml-engine") <= others(before, "nautilus-ml-engine")
    message = over.messages["test_log_error_rate[nautilus-ml-engine]"]
    assert "expected at most 10 error lines in the last 1 h" in message and "saw 11;" in message
    assert "Order routing failed: upstream timeout after 3000 ms (synthetic lab fault 1/1)" in message
    heal()  # recreates ml-engine: a fresh log
    assert of(daily(tmp_path), "nautilus-ml-engine") == set()


@pytest.mark.lab_fault
def test_slow_lines_fail_only_the_slow_check(tmp_path, fault, heal):
    fresh("strategy-engine")
    before = daily(tmp_path)
    fault("slow-log", "strategy", "--count", "11")
    run = daily(tmp_path)
    assert of(run, "nautilus-strategy-engine") == {"test_log_slow_operations[nautilus-strategy-engine]"}
    assert others(run, "nautilus-strategy-engine") <= others(before, "nautilus-strategy-engine")
    message = run.messages["test_log_slow_operations[nautilus-strategy-engine]"]
    assert "at most 10 slow-operation lines in the last 1 h" in message and "saw 11;" in message
    assert "took 3500ms" in message  # the latest line (2500 + 100 * 10)
    heal()
    assert of(daily(tmp_path), "nautilus-strategy-engine") == set()


@pytest.mark.lab_fault
def test_each_known_error_is_named_with_its_fix(tmp_path, fault, heal):
    fresh("analytics-engine")
    before = daily(tmp_path)
    for text in LAB_KNOWN_ERRORS:
        fault("known-error", "analytics", "--text", text)
    run = daily(tmp_path)
    # Six ERROR lines (under 10) and two "timeout"s (under 10): only the Knowledge Base check fails.
    assert of(run, "nautilus-analytics-engine") == {"test_log_known_errors[nautilus-analytics-engine]"}
    assert others(run, "nautilus-analytics-engine") <= others(before, "nautilus-analytics-engine")
    message = run.messages["test_log_known_errors[nautilus-analytics-engine]"]
    for text, error_id in LAB_KNOWN_ERRORS.items():
        assert f"{error_id} (" in message and f"{text} (synthetic lab fault known-error)" in message
    assert f"run first: {render(['free-port', '8100'])}" in message
    assert f"run first: {render(['check-messagebus', 'analytics'])}" in message
    assert "kill -9" not in message and "--volumes" not in message
    heal()
    assert of(daily(tmp_path), "nautilus-analytics-engine") == set()


@pytest.mark.lab_fault
def test_factor_engine_import_error_is_named(tmp_path, fault, heal):
    fault("crash-loop", "factor")  # every start dies with the guide's ImportError on MessagePriority
    wait_for_line("nautilus-factor-engine", "ImportError")  # written at the first restart, not at the crash
    run = daily(tmp_path)
    failed = of(run, "nautilus-factor-engine")
    assert "test_log_known_errors[nautilus-factor-engine]" in failed
    # Each crash also writes error lines; how many depends on how often Docker restarted it so far.
    assert failed <= {"test_log_known_errors[nautilus-factor-engine]", "test_log_error_rate[nautilus-factor-engine]"}
    message = run.messages["test_log_known_errors[nautilus-factor-engine]"]
    assert "factor-messagepriority-import" in message and "rebuild the image without cache" in message
    assert f"run first: {render(['diagnose-startup', 'nautilus-factor-engine'])}" in message
    heal()  # removes the crash marker and recreates the container
    assert of(daily(tmp_path), "nautilus-factor-engine") == set()


@pytest.mark.lab_fault
def test_port_taken_shows_in_docker_state(tmp_path, fault, heal):
    fault("port-taken", "risk")  # risk stopped, a lab listener holds 8200
    with pytest.raises(docker.errors.APIError):
        lab_container("nautilus-risk-engine").start()  # what an operator would try
    run = daily(tmp_path, "log_known_errors")
    assert of(run, "nautilus-risk-engine") == {"test_log_known_errors[nautilus-risk-engine]"}, run.output[-3000:]
    message = run.messages["test_log_known_errors[nautilus-risk-engine]"]
    assert "port-in-use" in message and "in docker inspect: State.Error:" in message
    assert f"run first: {render(['free-port', '8200'])}" in message
    heal()
    assert of(daily(tmp_path, "log_known_errors"), "nautilus-risk-engine") == set()


@pytest.mark.lab_fault
def test_weekly_error_budget(tmp_path, fault, heal):
    fresh("portfolio-engine")
    fault("error-burst", "portfolio", "--count", "501")  # weekly_errors_max 500
    run = run_checks(tmp_path, "-m", "weekly", "-k", "weekly_error_summary", INVENTORY)
    assert of(run, "nautilus-portfolio-engine") == {"test_weekly_error_summary[nautilus-portfolio-engine]"}
    assert "at most 500 error lines in the last 168 h" in run.messages[
        "test_weekly_error_summary[nautilus-portfolio-engine]"]
    heal()
    after = run_checks(tmp_path, "-m", "weekly", "-k", "weekly_error_summary", INVENTORY)
    assert of(after, "nautilus-portfolio-engine") == set()


@pytest.mark.lab_fault
def test_error_lines_the_suites_own_probe_caused_are_not_blamed_on_the_engine(tmp_path, fault, heal):
    """The platform's analytics engine logs errors answering a calculation it has no data for, the suite's own
    probe among them: those lines are the suite's doing, and a run remembers its calls for the next."""
    fresh("analytics-engine")
    target = "nautilus-analytics-engine"
    fault("noisy-calculate", "analytics", "--count", "12")  # each calculate call logs 12 ERROR lines (limit: 10 an hour)
    state = f"--state-dir={tmp_path / 'state'}"
    selection = f"analytics and ({HOURLY} or calculation_time)"
    first = run_checks(tmp_path, "-m", "daily", "-k", selection, INVENTORY, state)
    assert first.outcomes[f"test_log_error_rate[{target}]"] == "passed", first.messages.get(
        f"test_log_error_rate[{target}]")
    wait_for_line(target, "for portfolio health-probe (synthetic lab fault noisy-calculate)")
    # The next run reads the first run's lines (and maybe its own) and knows both calls from its state folder.
    second = run_checks(tmp_path, "-m", "daily", "-k", selection, INVENTORY, state)
    assert of(second, target) == set(), {name: second.messages[name][:600] for name in of(second, target)}
    logged = sum("synthetic lab fault noisy-calculate" in line
                 for line in lab_container(target).logs().decode(errors="replace").splitlines())
    assert logged >= 12
    # A run that knows none of those calls (another state folder, no probe of its own) counts every line.
    unknowing = run_checks(tmp_path, "-m", "daily", "-k", "analytics and log_error_rate", INVENTORY)
    assert of(unknowing, target) == {f"test_log_error_rate[{target}]"}
    assert f"saw {logged};" in unknowing.messages[f"test_log_error_rate[{target}]"]
    # The engine's own errors beside the probe's are still the engine's.
    # Past the widened window of the second run's probe call (kept in the state folder): a burst inside it is
    # rightly read as that call's doing. With warm runs the run in between can end within it.
    time.sleep(OWN_PROBE_AFTER_S + 1)
    fault("error-burst", "analytics", "--count", "11")
    wait_for_line(target, "(synthetic lab fault 11/11)")
    burst = run_checks(tmp_path, "-m", "daily", "-k", selection, INVENTORY, state)
    # ("upstream timeout after 3000 ms": the burst's lines are slow-operation lines too)
    assert of(burst, target) == {f"test_log_error_rate[{target}]", f"test_log_slow_operations[{target}]"}
    message = burst.messages[f"test_log_error_rate[{target}]"]
    assert "saw 11 (and " in message and "logged during the suite's own probe calls, not counted)" in message, message
    heal()
    assert of(daily(tmp_path, f"analytics and ({HOURLY})"), target) == set()
