"""The first checks judged on constructed observations, without Docker: a healthy sample passes, one bad fact fails.

Each check is called directly with the samples its fixtures would hand it.
"""
from __future__ import annotations

import pytest

from checks import test_containers as containers
from checks import test_engine_health as health
from checks import test_infrastructure as infra
from checks import test_messagebus as bus
from checks import test_ports as ports
from fixtures.verdict import Verdict
from observation.docker_api import ContainerSnapshot
from observation.errors import Unobservable, Unobserved
from observation.http import HttpSample
from observation.inventory import HeartbeatStream, load_inventory
from observation.ports import PortProbe
from observation.redis_bus import BusSnapshot
from observation.restart_history import Deploy
from observation.targets import ContainerTarget, PortTarget, ServiceTarget

FAILED = pytest.fail.Exception
INV = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
RISK, FACTOR = INV.engines["risk"], INV.engines["factor"]
NOW = 1_000_000.0


def verdict():
    return Verdict("target")


def sample(body=None, status=200, elapsed_ms=12.0, error=None):
    return {"risk": HttpSample("http://127.0.0.1:8200/health", status, elapsed_ms, body, error),
            "factor": HttpSample("http://127.0.0.1:8300/health", status, elapsed_ms, body, error)}


GOOD_RISK = {"status": "healthy", "uptime_seconds": 4000, "messagebus_connected": True, "monitoring_active": True,
             "monitored_portfolios": 3, "breach_alerts_sent": 0}


def attrs(status="running", health="healthy", restarts=0, started="2020-01-01T00:00:00Z", restarting=False):
    state = {"Status": status, "Running": status == "running", "Restarting": restarting, "ExitCode": 0,
             "StartedAt": started, "Health": {"Status": health, "Log": [{"ExitCode": 1, "Output": "curl: (7)"}]}}
    return {"Name": "/nautilus-risk-engine", "State": state, "RestartCount": restarts,
            "NetworkSettings": {"Networks": {"n": {"IPAddress": "172.18.0.5"}}}}


def snapshot(found):
    return ContainerSnapshot({"local": {"nautilus-risk-engine": found} if found else {}}, {})


C = ContainerTarget("nautilus-risk-engine", "local", "risk")


# -- containers -----------------------------------------------------------------

def test_container_checks_pass_on_a_healthy_container():
    for check in (containers.test_container_exists, containers.test_container_healthy):
        check(C, snapshot(attrs()), verdict())
    containers.test_container_running(C, snapshot(attrs()), INV, {}, verdict())
    containers.test_container_not_restart_looping(C, snapshot(attrs()), INV, verdict())


def test_missing_container_fails_exists():
    with pytest.raises(FAILED, match="expected container nautilus-risk-engine to exist on local; saw no such container"):
        containers.test_container_exists(C, snapshot(None), verdict())


def test_exited_container_fails_running():
    with pytest.raises(FAILED, match="expected status running; saw status exited"):
        containers.test_container_running(C, snapshot(attrs(status="exited")), INV, {}, verdict())


def test_unhealthy_container_fails_healthy_with_the_last_probe():
    with pytest.raises(FAILED, match="saw unhealthy after 0 failing probes .*curl: \\(7\\)"):
        containers.test_container_healthy(C, snapshot(attrs(health="unhealthy")), verdict())


def test_restart_loop_is_caught():
    with pytest.raises(FAILED, match="saw Docker is restarting it"):
        containers.test_container_not_restart_looping(C, snapshot(attrs(restarting=True, restarts=4)), INV, verdict())


def test_docker_down_is_cannot_observe_not_a_pass():
    with pytest.raises(Unobservable, match="no Docker daemon"):
        containers.test_container_exists(C, ContainerSnapshot({}, {"local": "no Docker daemon answers"}), verdict())


# -- engine health --------------------------------------------------------------

def test_engine_health_checks_pass_on_a_good_sample():
    samples = sample(GOOD_RISK)
    health.test_engine_health_answers(RISK, samples, verdict())
    health.test_engine_health_latency(RISK, samples, INV, verdict())
    health.test_engine_status_healthy(RISK, samples, verdict())
    health.test_engine_uptime(RISK, samples, INV, {}, verdict())
    health.test_engine_health_values(RISK, samples, verdict())


def test_unanswered_health_fails_with_the_reason():
    with pytest.raises(FAILED, match="saw connection failed: connection refused"):
        health.test_engine_health_answers(RISK, sample(error="connection failed: connection refused"), verdict())


def test_slow_health_fails_latency_with_its_level():
    with pytest.raises(FAILED, match="expected an answer within 1000 ms; saw 1200 ms, SLOW"):
        health.test_engine_health_latency(RISK, sample(GOOD_RISK, elapsed_ms=1200), INV, verdict())


def test_stopped_status_fails():
    with pytest.raises(FAILED, match="saw 'stopped'"):
        health.test_engine_status_healthy(RISK, sample({**GOOD_RISK, "status": "stopped"}), verdict())


def test_fresh_restart_fails_uptime():
    with pytest.raises(FAILED, match="expected an uptime of at least 300 s; saw 2 s: restarted recently"):
        health.test_engine_uptime(RISK, sample({**GOOD_RISK, "uptime_seconds": 2}), INV, {}, verdict())


def test_a_young_engine_whose_container_was_recreated_is_a_deploy():
    deploy = Deploy(RISK.container, "sha256:a", "sha256:b", "2025-08-02T09:00:00Z")
    seen = verdict()
    health.test_engine_uptime(RISK, sample({**GOOD_RISK, "uptime_seconds": 2}), INV,
                              {(RISK.host, RISK.container): deploy}, seen)
    assert dict(seen.records)["deploy"] == "nautilus-risk-engine (image a -> b, started 2025-08-02 09:00:00)"


def test_monitoring_off_fails_health_values():
    with pytest.raises(FAILED, match="monitoring_active = False \\(must be True\\)"):
        health.test_engine_health_values(RISK, sample({**GOOD_RISK, "monitoring_active": False}), verdict())


def test_zero_factor_definitions_fail_health_values():
    body = {"status": "healthy", "factors_calculated": 1, "factor_definitions_loaded": 0}
    with pytest.raises(FAILED, match="factor_definitions_loaded = 0 \\(must be at least 1\\)"):
        health.test_engine_health_values(FACTOR, sample(body), verdict())


def test_health_values_has_nothing_to_judge_for_an_engine_with_no_fields():
    spec = health.test_engine_health_values.pytestmark[-1].args[0]
    assert spec.applies(INV.engines["ml"]) is False and spec.applies(RISK) is True


# -- message bus ----------------------------------------------------------------

def bus_view(clients=(), heartbeat=None):
    return BusSnapshot(clients=list(clients), heartbeats={"hb:risk": heartbeat}, taken_at=NOW)


RISK_ON_BUS = RISK.model_copy(update={"bus": RISK.bus.model_copy(update={"client_name": "nautilus-risk-engine",
                                                                          "heartbeat_key": "hb:risk"})})


def test_bus_checks_pass_when_redis_sees_a_busy_connection_and_a_fresh_beat():
    view = bus_view([{"name": "nautilus-risk-engine", "addr": "172.18.0.5:5000", "idle": "1"}], str(NOW - 2))
    bus.test_engine_bus_connection(RISK_ON_BUS, view, snapshot(attrs()), {}, verdict())
    bus.test_engine_bus_idle(RISK_ON_BUS, view, snapshot(attrs()), {}, INV, verdict())
    bus.test_engine_heartbeat_fresh(RISK_ON_BUS, view, INV, verdict())
    bus.test_engine_messagebus_flag(RISK, sample(GOOD_RISK), verdict())


def test_a_lying_flag_is_caught_by_redis():
    with pytest.raises(FAILED, match="expected a Redis client named nautilus-risk-engine; saw 1 clients, none"):
        bus.test_engine_bus_connection(RISK_ON_BUS, bus_view([{"name": "other", "addr": "1.2.3.4:1"}]),
                                       snapshot(attrs()), {}, verdict())


def test_without_a_client_name_the_container_address_is_the_evidence():
    view = bus_view([{"name": "", "addr": "172.18.0.5:40000", "idle": "0"}])
    bus.test_engine_bus_connection(RISK, view, snapshot(attrs()), {}, verdict())
    with pytest.raises(FAILED, match="a Redis connection from nautilus-risk-engine \\(172.18.0.5\\)"):
        bus.test_engine_bus_connection(RISK, bus_view([]), snapshot(attrs()), {}, verdict())


def test_a_silent_connection_fails_idle():
    view = bus_view([{"name": "nautilus-risk-engine", "addr": "172.18.0.5:5000", "idle": "600"}])
    with pytest.raises(FAILED, match="saw idle for 600 s: connected but silent"):
        bus.test_engine_bus_idle(RISK_ON_BUS, view, snapshot(attrs()), {}, INV, verdict())


def test_stale_and_absent_heartbeats_fail():
    with pytest.raises(FAILED, match="saw 40.0 s old"):
        bus.test_engine_heartbeat_fresh(RISK_ON_BUS, bus_view(heartbeat=str(NOW - 40)), INV, verdict())
    with pytest.raises(FAILED, match="key absent"):
        bus.test_engine_heartbeat_fresh(RISK_ON_BUS, bus_view(), INV, verdict())


RISK_BEATS_IN_A_STREAM = RISK.model_copy(update={"bus": RISK.bus.model_copy(update={
    "heartbeat_stream": HeartbeatStream(stream="nautilus:events", match={"topic": "heartbeat.risk"})})})


def stream_view(*entries: tuple[float, str], redis_now: float = NOW) -> BusSnapshot:
    """Entries of a shared stream, newest first: (seconds before Redis's now, topic)."""
    return BusSnapshot(streams={"nautilus:events": [(f"{int((redis_now - ago) * 1000)}-0", {"topic": topic})
                                                    for ago, topic in entries]},
                       redis_now=redis_now, taken_at=redis_now + 3600)  # the suite's clock is not the one judged


def test_a_heartbeat_in_a_shared_stream_is_the_newest_entry_of_its_topic():
    view = stream_view((1, "heartbeat.ml"), (4, "heartbeat.risk"), (30, "heartbeat.risk"))
    v = verdict()
    bus.test_engine_heartbeat_fresh(RISK_BEATS_IN_A_STREAM, view, INV, v)
    assert ("measured:heartbeat_age_s", "4.0") in v.records
    with pytest.raises(FAILED, match=r"a heartbeat younger than 15 s \(stream nautilus:events entry with "
                                     r"topic=heartbeat.risk\); saw 30.0 s old"):
        bus.test_engine_heartbeat_fresh(RISK_BEATS_IN_A_STREAM, stream_view((1, "heartbeat.ml"), (30, "heartbeat.risk")),
                                        INV, verdict())
    with pytest.raises(FAILED, match="none among its newest 1 entries"):
        bus.test_engine_heartbeat_fresh(RISK_BEATS_IN_A_STREAM, stream_view((1, "heartbeat.ml")), INV, verdict())


def test_a_stream_heartbeat_needs_a_field_to_match():
    with pytest.raises(ValueError):
        HeartbeatStream(stream="s", match={})


def test_redis_down_makes_bus_checks_unobservable():
    with pytest.raises(Unobservable, match="redis: connection refused"):
        bus.test_engine_heartbeat_fresh(RISK_ON_BUS, Unobserved("redis: connection refused"), INV, verdict())


def test_messagebus_flag_false_fails():
    with pytest.raises(FAILED, match="expected messagebus_connected true; saw False"):
        bus.test_engine_messagebus_flag(RISK, sample({**GOOD_RISK, "messagebus_connected": False}), verdict())


# -- services, ports, Redis, PostgreSQL -----------------------------------------

def test_service_and_port_checks():
    backend = ServiceTarget("backend", "local", "http://127.0.0.1:8001/health", "nautilus-backend")
    infra.test_service_health_answers(backend, {"backend": HttpSample(backend.url, 200, 3.0, {})}, verdict())
    with pytest.raises(FAILED, match="saw HTTP 502"):
        infra.test_service_health_answers(backend, {"backend": HttpSample(backend.url, 502, 3.0, "")}, verdict())
    port = PortTarget(8200, "local", "127.0.0.1", "risk-engine")
    ports.test_port_open(port, {("local", 8200): PortProbe(True, 0.2)}, INV, snapshot(attrs()), verdict())
    with pytest.raises(FAILED, match="saw connection refused after 0 ms"):
        ports.test_port_open(port, {("local", 8200): PortProbe(False, 0.1, "connection refused")}, INV,
                             snapshot(attrs()), verdict())


class Backend:
    def __init__(self, client):
        self.client = client

    def get(self):
        if isinstance(self.client, Exception):
            raise self.client
        return self.client


def test_redis_and_postgres_answers():
    class Redis:
        def __init__(self, reply):
            self.reply = reply

        def ping(self):
            return self.reply

    infra.test_redis_ping(Backend(Redis(True)), verdict())
    with pytest.raises(FAILED, match="expected PONG; saw False"):
        infra.test_redis_ping(Backend(Redis(False)), verdict())
    with pytest.raises(Unobservable, match="refused the suite's password"):
        infra.test_redis_ping(Backend(Unobservable("Redis at 127.0.0.1:6379 refused the suite's password")), verdict())

    class Conn:
        def __init__(self, row):
            self.row = row

        def execute(self, sql):
            return self

        def fetchone(self):
            return self.row

    infra.test_postgres_ready(Backend(Conn((1,))), verdict())
    with pytest.raises(FAILED, match="expected \\(1,\\); saw None"):
        infra.test_postgres_ready(Backend(Conn(None)), verdict())
