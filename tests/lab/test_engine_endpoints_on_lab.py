"""The engine endpoint checks against the lab: all pass when healthy; a real fault fails exactly the checks it should.

Each test breaks the lab for real (a lab fault, or real failing requests),
runs the checks of checks/test_engine_endpoints.py as an SRE would, compares
the failed set with the expected one, heals, and sees them pass again.
"""
from __future__ import annotations

import math
import re
import time

import pytest
import requests

from conftest import LAB_INVENTORY, lab_container, run_checks
from observation.inventory import load_inventory
from observation.metrics import read_metrics
from remediation.invocation import render

ENGINES = ["analytics", "risk", "factor", "ml", "features", "websocket", "strategy", "marketdata", "portfolio"]
MODULE = "checks/test_engine_endpoints.py"
ARGS = (MODULE, "-m", "daily", f"--inventory={LAB_INVENTORY}")


def assert_failed_exactly(run, expected: set[str]) -> None:
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    assert run.failed == expected, (
        f"unexpected failures: {sorted(run.failed - expected)}\nmissing failures: {sorted(expected - run.failed)}"
        f"\n{run.output[-3000:]}")


def passes_again(tmp_path, *k: str) -> None:
    run = run_checks(tmp_path, *ARGS, *k)
    assert_failed_exactly(run, set())


@pytest.mark.usefixtures("lab")
def test_healthy_lab_passes_engine_endpoint_checks(tmp_path):
    started = time.monotonic()
    run = run_checks(tmp_path, *ARGS)
    assert_failed_exactly(run, set())
    assert run.returncode == 0
    # 8 engines serve metrics, 8 name requests and errors, 9 run in Docker (x3: reach to Redis and PostgreSQL, the
    # PostgreSQL login), one each for calculate, risk check and the two WebSocket checks, and the answer of
    # analytics' calculate (it has rules).
    assert len(run.outcomes) == 8 + 8 + 27 + 4 + 1
    assert all(outcome == "passed" for name, outcome in run.outcomes.items() if "postgres_login" in name)
    assert run.outcomes["test_engine_probe_answer[analytics-engine]"] == "passed"
    skipped = {name for name, outcome in run.outcomes.items() if outcome == "skipped"}
    assert skipped <= {"test_websocket_messages_flowing[websocket-engine]"}  # judged only with clients connected
    assert time.monotonic() - started < 60


@pytest.mark.lab_fault
def test_slow_engines_fail_the_probe_times(tmp_path, fault, heal):
    fault("slow", "analytics", "--ms", "1300")
    fault("slow", "risk", "--ms", "250")
    run = run_checks(tmp_path, *ARGS, "-k", "analytics or risk")
    assert_failed_exactly(run, {"test_analytics_calculation_time[analytics-engine]", "test_risk_check_time[risk-engine]"})
    # 1300 ms of fault, plus what a loaded 2-CPU machine adds.
    assert re.search(r"expected POST /analytics/calculate/health-probe answered within 1000 ms; saw 1[3-9]\d\d ms",
                     run.messages["test_analytics_calculation_time[analytics-engine]"])
    assert "expected POST /risk/check/health-probe answered within 100 ms; saw 2" in \
        run.messages["test_risk_check_time[risk-engine]"]
    heal()
    passes_again(tmp_path, "-k", "analytics or risk")


@pytest.mark.lab_fault
def test_hung_engine_fails_metrics_and_probe_within_the_timeout(tmp_path, fault, heal):
    fault("hang", "risk")
    started = time.monotonic()
    run = run_checks(tmp_path, *ARGS, "-k", "risk")
    elapsed = time.monotonic() - started
    assert_failed_exactly(run, {"test_engine_metrics_readable[risk-engine]", "test_engine_error_rate[risk-engine]",
                                "test_risk_check_time[risk-engine]"})
    assert "saw no answer within 5000 ms" in run.messages["test_engine_metrics_readable[risk-engine]"]
    assert "cannot observe: GET http://127.0.0.1:8200/metrics: no answer within 5000 ms" in \
        run.messages["test_engine_error_rate[risk-engine]"]
    assert "to answer within 100 ms; saw no answer within 5000 ms" in run.messages["test_risk_check_time[risk-engine]"]
    assert elapsed < 30, f"a hung engine cost {elapsed:.0f} s: the calls must wait once, in parallel"
    heal()
    # The abandoned probe, released by the heal, reads its body from a closed connection: the engine
    # answers it 500 and counts an error, so the error rate is brought back down before judging again.
    dilute_errors("risk")
    passes_again(tmp_path, "-k", "risk")


def counters(engine: str) -> tuple[float, float]:
    """The engine's request and error counters, read as the checks read them (lab inventory names)."""
    spec = load_inventory(LAB_INVENTORY, environ={"NAUTILUS_POSTGRES_PASSWORD": "unused"}).engines[engine]
    reply = requests.get(f"http://127.0.0.1:{spec.port}{spec.metrics.path}", timeout=5)
    metrics = read_metrics(reply.json() if spec.metrics.format == "json" else reply.text, spec.metrics.format)
    return metrics.value(spec.metrics.names["requests"]), metrics.value(spec.metrics.names["errors"])


def hit(engine: str, times: int) -> None:
    port = 8100 + 100 * ENGINES.index(engine)
    with requests.Session() as session:
        for _ in range(times):
            session.get(f"http://127.0.0.1:{port}/health", timeout=5)


def dilute_errors(engine: str, below_pct: float = 4.0) -> None:
    """Good requests until the engine's errors are under `below_pct` of its requests again: the counters
    last until it restarts, and a restart would fail the uptime checks of everyone sharing the lab."""
    total, errors = counters(engine)
    hit(engine, max(0, math.ceil(errors * 100 / below_pct - total)))


@pytest.mark.lab_fault
def test_failing_requests_raise_the_error_rate(tmp_path, fault, heal):
    """Real failing requests: a guide-flavour engine answers /health 503 while unhealthy, and the engine counts
    every 5xx answer as an error. The fault is cleared on the engine itself (not healed) so its counters stay;
    heal then gives it a fresh container, whose counters start at zero."""
    total, errors = counters("strategy")
    failing = max(1, math.ceil((0.08 * total - errors) / 0.92))  # errors to reach about 8% of requests
    fault("unhealthy", "strategy")
    hit("strategy", failing)
    requests.delete("http://127.0.0.1:8700/_lab/faults/unhealthy", timeout=5).raise_for_status()
    wait_docker_healthy("nautilus-strategy-engine")
    run = run_checks(tmp_path, *ARGS, "-k", "strategy")
    assert_failed_exactly(run, {"test_engine_error_rate[strategy-engine]"})
    message = run.messages["test_engine_error_rate[strategy-engine]"]
    assert "expected at most 5% of requests ending in an error (counters since the engine started)" in message
    assert "since start" in message.split("; saw ", 1)[1]
    heal()
    passes_again(tmp_path, "-k", "strategy")


def wait_docker_healthy(container: str, timeout_s: float = 30) -> None:
    engine = lab_container(container)
    deadline = time.monotonic() + timeout_s
    while engine.attrs["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, f"Docker never marked {container} healthy again"
        time.sleep(1)
        engine.reload()


@pytest.mark.lab_fault
def test_stopped_redis_fails_every_engine_reach_to_redis(tmp_path, fault, heal):
    fault("stop", "redis")
    run = run_checks(tmp_path, *ARGS, "-k", "engine_reaches")
    assert len(run.outcomes) == 18
    assert_failed_exactly(run, {f"test_engine_reaches_redis[{e}-engine]" for e in ENGINES})
    assert "expected a TCP connection from nautilus-risk-engine to redis:6379; saw cannot connect to redis:6379" in \
        run.messages["test_engine_reaches_redis[risk-engine]"]
    assert render(['check-messagebus', 'risk']) in run.messages["test_engine_reaches_redis[risk-engine]"]
    heal()
    passes_again(tmp_path, "-k", "engine_reaches")


@pytest.mark.lab_fault
def test_stopped_postgres_fails_every_engine_reach_to_postgres(tmp_path, fault, heal):
    fault("stop", "postgres")
    run = run_checks(tmp_path, *ARGS, "-k", "engine_reaches")
    assert len(run.outcomes) == 18
    assert_failed_exactly(run, {f"test_engine_reaches_postgres[{e}-engine]" for e in ENGINES})
    message = run.messages["test_engine_reaches_postgres[analytics-engine]"]
    assert "expected a TCP connection from nautilus-analytics-engine to postgres:5432; saw cannot connect" in message
    assert "remediation: check that the engine shares PostgreSQL's network" in message and "fix:" not in message
    heal()
    passes_again(tmp_path, "-k", "engine_reaches")


@pytest.mark.lab_fault
def test_stopped_engine_container_cannot_be_looked_into(tmp_path, fault, heal):
    fault("stop", "ml")
    run = run_checks(tmp_path, *ARGS, "-k", "engine_reaches and ml")
    assert_failed_exactly(run, {"test_engine_reaches_redis[ml-engine]", "test_engine_reaches_postgres[ml-engine]"})
    assert ("cannot observe: container nautilus-ml-engine is not running (Docker host 'local' refused to exec the "
            "connect and login probes: 409 Conflict)") in run.messages["test_engine_reaches_redis[ml-engine]"]
    heal()
    passes_again(tmp_path, "-k", "engine_reaches and ml")


@pytest.mark.lab_fault
def test_many_websocket_clients_fail_the_connection_check_and_messages_flow(tmp_path, fault, heal):
    fault("ws-connections", "websocket", "--count", "760")
    time.sleep(3)  # the engine's messages-per-second figure spans the last seconds
    run = run_checks(tmp_path, *ARGS, "-k", "websocket_connections or websocket_messages")
    # With clients connected, messages-flowing is judged (not skipped) and passes: the engine feeds them.
    assert run.outcomes["test_websocket_messages_flowing[websocket-engine]"] == "passed"
    assert_failed_exactly(run, {"test_websocket_connections[websocket-engine]"})
    message = run.messages["test_websocket_connections[websocket-engine]"]
    assert "expected fewer than 750 active connections (WARNING from 750, CRITICAL at 800); saw 760 active" in message
    heal()
    run = run_checks(tmp_path, *ARGS, "-k", "websocket_connections or websocket_messages")
    assert_failed_exactly(run, set())
    assert run.outcomes["test_websocket_messages_flowing[websocket-engine]"] == "skipped"


@pytest.mark.lab_fault
def test_a_calculation_from_no_data_fails_the_probe_answer_though_it_answers_200(tmp_path, fault, heal):
    fault("no-data", "analytics")
    run = run_checks(tmp_path, *ARGS, "-k", "analytics")
    # Fast and 200: only the answer's own fields say that nothing was computed.
    assert_failed_exactly(run, {"test_engine_probe_answer[analytics-engine]"})
    message = run.messages["test_engine_probe_answer[analytics-engine]"]
    assert "sufficient_data = False" in message and "primary_source = 'none'" in message, message
    assert "diagnose-engine analytics" in run.output
    heal()
    passes_again(tmp_path, "-k", "analytics")


@pytest.mark.lab_fault
def test_a_stalled_feed_fails_messages_flowing_while_its_clients_stay_connected(tmp_path, fault, heal):
    fault("ws-connections", "websocket", "--count", "20")
    fault("ws-stall", "websocket")
    time.sleep(12)  # past the engine's 10 s messages-per-second window
    selection = ("-k", "websocket_connections or websocket_messages")
    run = run_checks(tmp_path, *ARGS, *selection)
    assert_failed_exactly(run, {"test_websocket_messages_flowing[websocket-engine]"})
    message = run.messages["test_websocket_messages_flowing[websocket-engine]"]
    assert "messages flowing to the 20 connected clients" in message and "fed nothing" in message, message
    assert "diagnose-engine websocket" in run.output
    # The feed alone resumes (the clients stay): judged again with them connected, and it passes.
    requests.delete("http://127.0.0.1:8600/_lab/faults/ws-stall", timeout=5).raise_for_status()
    time.sleep(3)
    run = run_checks(tmp_path, *ARGS, *selection)
    assert_failed_exactly(run, set())
    assert run.outcomes["test_websocket_messages_flowing[websocket-engine]"] == "passed"
    heal()


@pytest.mark.lab_fault
def test_an_engine_with_a_wrong_database_password_fails_its_login_and_the_fix_is_its_settings(tmp_path, fault, heal,
                                                                                           lab_password):
    fault("bad-db-login", "strategy")  # recreated with a wrong POSTGRES_PASSWORD; the route to PostgreSQL is fine
    run = run_checks(tmp_path, *ARGS, "-k", "engine_reaches or postgres_login")
    assert_failed_exactly(run, {"test_engine_postgres_login[strategy-engine]"})
    message = run.messages["test_engine_postgres_login[strategy-engine]"]
    assert "login with the engine's POSTGRES_* settings failed" in message and "password authentication failed" in \
        message, message
    assert "PostgreSQL itself needs no restart" in message and "restart postgres" not in message
    assert lab_password not in run.output and "lab-wrong-password" not in run.output
    heal()
    passes_again(tmp_path, "-k", "engine_reaches or postgres_login")
