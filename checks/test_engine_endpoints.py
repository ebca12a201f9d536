"""The engines beyond /health: metrics, error rate, the guide's probe calls, WebSocket load, reach to Redis and PostgreSQL.

/metrics and the optional endpoints the inventory names are sampled once per
run, all engines at once (fixture `endpoint_samples`); the reach checks run one
TCP connect, and a PostgreSQL login with the engine's own settings, from inside each engine's container
(fixture `engine_reach`).
The calculate and risk-check probes are real calls, as the guide makes them:
each writes a row for the probe portfolio (`health-probe`) in the engine's
database, which is accepted as the cost of measuring the real path.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from fixtures.spec import DAILY, check
from observation.endpoints import endpoint_path
from observation.errors import Unobservable
from observation.jsonpath import lookup
from observation.metrics import Metrics, MetricsUnreadable, average_rate, error_rate_pct, read_metrics
from observation.reach import LOGIN
from observation.slow_answers import timing

from .guide import ANALYTICS, DATABASE, MESSAGEBUS, RISK, TUNING, WEBSOCKET
from .test_engine_health import rule_breaches, rules_wanted

# Where the guide's /websocket/stats carries its figures.
STATS_CONNECTIONS = "data.connection_stats.active_connections"
STATS_RATE = "data.message_stats.messages_sent_per_second"


def serves_metrics(engine) -> bool:
    return engine.metrics.format != "none"


def names_metrics(*logical: str):
    return lambda engine: serves_metrics(engine) and all(n in engine.metrics.names for n in logical)


def has_endpoint(name: str):
    return lambda engine: name in engine.endpoints


def websocket_observable(engine) -> bool:
    return "websocket_stats" in engine.endpoints or names_metrics("connections")(engine)


def readable_metrics(engine, endpoint_samples, verdict) -> Metrics:
    """The engine's metrics, for checks that read a value: a body that cannot be read is judged by
    engine-metrics-readable, so here it is `cannot observe`."""
    __tracebackhide__ = True
    sample = endpoint_samples.metrics[engine.name]
    if sample.error or sample.status != 200:
        raise Unobservable(f"GET {sample.url}: {sample.error or f'HTTP {sample.status}'} (see engine-metrics-readable)")
    try:
        return read_metrics(sample.body, engine.metrics.format)
    except MetricsUnreadable as exc:
        raise Unobservable(f"GET {sample.url}: {exc} (see engine-metrics-readable)") from None


def metric_value(engine, metrics: Metrics, logical: str) -> float:
    __tracebackhide__ = True
    name = engine.metrics.names[logical]
    value = metrics.value(name)
    if value is None:
        raise Unobservable(f"metric {name} ({logical}) is missing or not a number (see engine-metrics-readable)")
    return value


@check("engine-metrics-readable", "Engine /metrics parses and carries every metric the inventory names", tiers=DAILY,
       severity="normal", guide=ANALYTICS, remedy="diagnose-engine", applies=serves_metrics,
       needs=("container-running", "port-open"))
def test_engine_metrics_readable(engine, endpoint_samples, verdict):
    sample = endpoint_samples.metrics[engine.name]
    verdict.evidence("metrics", sample.evidence())
    verdict.expect(sample.error is None, expected=f"GET {sample.url} to answer", seen=sample.error or "")
    verdict.expect(sample.status == 200, expected=f"HTTP 200 from {sample.url}",
                   seen=f"HTTP {sample.status}: {sample.text[:200]!r}")
    verdict.expect(not sample.truncated, expected="a metrics body under 1 MiB", seen="a body cut at 1 MiB")
    fmt = engine.metrics.format
    try:
        metrics = read_metrics(sample.body, fmt)
    except MetricsUnreadable as exc:
        verdict.fail(expected=f"{fmt} metrics (inventory metrics.format)", seen=str(exc))
    wanted = engine.metrics.names
    missing = [f"{name} ({logical})" for logical, name in wanted.items() if not metrics.has(name)]
    offered = metrics.names()
    verdict.expect(not missing, expected=f"every metric the inventory names: {sorted(wanted.values())}",
                   seen=f"missing {missing}; the body has {offered[:25]}{' ...' if len(offered) > 25 else ''}")


@check("engine-error-rate", "Engine errors stay under the error-rate limit of its requests", tiers=DAILY,
       severity="normal", guide=ANALYTICS, remedy="diagnose-engine", applies=names_metrics("requests", "errors"),
       needs=("engine-metrics-readable",))
def test_engine_error_rate(engine, endpoint_samples, inventory, verdict):
    metrics = readable_metrics(engine, endpoint_samples, verdict)
    requests_, errors = metric_value(engine, metrics, "requests"), metric_value(engine, metrics, "errors")
    verdict.evidence("counters", {engine.metrics.names["requests"]: requests_, engine.metrics.names["errors"]: errors})
    rate = error_rate_pct(errors, requests_)
    if rate is None:
        pytest.skip(f"{engine.metrics.names['requests']} is 0: no request served since the engine started, "
                    "nothing to judge")
    verdict.measured("error_rate_pct", rate)
    limit = engine.limits(inventory.thresholds).error_rate_max_pct
    verdict.expect(rate <= limit, expected=f"at most {limit:g}% of requests ending in an error "
                                           "(counters since the engine started)",
                   seen=f"{errors:g} errors in {requests_:g} requests = {rate:g}% since start")


def timed_call(engine, endpoint_samples, name: str, limit_ms: float, verdict) -> dict | None:
    """The probe call's answer: it must come, be 2xx, and come within `limit_ms`."""
    __tracebackhide__ = True
    endpoint = engine.endpoints[name]
    sample = endpoint_samples.call(engine.name, name)
    call = f"{endpoint.method} {endpoint_path(endpoint)}"
    verdict.evidence(name, {**sample.evidence(), "method": endpoint.method, "request_body": endpoint.body})
    verdict.expect(sample.error is None, expected=f"{call} to answer within {limit_ms:g} ms", seen=sample.error or "")
    verdict.measured(f"{name}_ms", sample.elapsed_ms)
    verdict.expect(200 <= sample.status < 300, expected=f"a 2xx answer to {call}",
                   seen=f"HTTP {sample.status}: {sample.text[:200]!r}")
    verdict.expect(sample.elapsed_ms <= limit_ms, expected=f"{call} answered within {limit_ms:g} ms",
                   seen=timing(sample))
    return sample.json


@check("analytics-calculation-time", "The guide's test calculation answers within its time limit", tiers=DAILY,
       severity="normal", guide=TUNING, remedy="diagnose-engine", applies=has_endpoint("calculate"),
       needs=("container-running", "port-open"))
def test_analytics_calculation_time(engine, endpoint_samples, inventory, verdict):
    """A real calculation for the probe portfolio (it writes a row, as the guide's own probe does)."""
    limit = engine.limits(inventory.thresholds).analytics_calculation_ms
    timed_call(engine, endpoint_samples, "calculate", limit, verdict)


@check("risk-check-time", "The guide's test risk check answers within its time limit", tiers=DAILY,
       severity="normal", guide=RISK, remedy="diagnose-engine", applies=has_endpoint("risk_check"),
       needs=("container-running", "port-open"))
def test_risk_check_time(engine, endpoint_samples, inventory, verdict):
    """A real risk check for the probe portfolio (it writes a row, as the guide's own probe does)."""
    limit = engine.limits(inventory.thresholds).risk_check_ms
    sample = endpoint_samples.call(engine.name, "risk_check")
    if sample.json is not None:  # shown even when the check passes: breaches are what the engine reports
        verdict.evidence("breaches_found", lookup(sample.json, "breaches_found"))
    timed_call(engine, endpoint_samples, "risk_check", limit, verdict)


def judges_answers(engine) -> bool:
    return any(endpoint.rules for endpoint in engine.endpoints.values())


@check("engine-probe-answer", "The engine's probe calls answer with the values their inventory rules require",
       tiers=DAILY, severity="normal", guide=TUNING, applies=judges_answers, remedy="diagnose-engine",
       needs=("container-running", "port-open"))
def test_engine_probe_answer(engine, endpoint_samples, verdict):
    """A 200 is not enough: a calculation answering `sufficient_data: false` from `primary_source: "none"`
    computed nothing. Judged with the same rules as /health fields (inventory endpoints.NAME.rules)."""
    wrong = []
    for name, endpoint in sorted(engine.endpoints.items()):
        if not endpoint.rules:
            continue
        sample = endpoint_samples.call(engine.name, name)
        call = f"{endpoint.method} {endpoint_path(endpoint)}"
        verdict.evidence(name, {**sample.evidence(), "method": endpoint.method, "request_body": endpoint.body})
        verdict.expect(sample.error is None, expected=f"{call} to answer", seen=sample.error or "")
        verdict.expect(200 <= sample.status < 300 and isinstance(sample.json, dict),
                       expected=f"a 2xx JSON object answering {call}",
                       seen=f"HTTP {sample.status}: {sample.text[:200]!r}")
        wrong += [f"{name} {path} = {held}" for path, held in rule_breaches(sample.json, endpoint.rules).items()]
    verdict.expect(not wrong, expected="; ".join(f"{name}: {rules_wanted(e.rules)}"
                                                 for name, e in sorted(engine.endpoints.items()) if e.rules),
                   seen="; ".join(wrong))


@dataclass
class WebSocketFigures:
    connections: float
    rate: float | None  # messages per second; None when nothing gives it
    source: str


def websocket_figures(engine, endpoint_samples, verdict) -> WebSocketFigures:
    """Connections and messages per second from /websocket/stats, else from the metrics the inventory names."""
    __tracebackhide__ = True
    reasons = []
    if "websocket_stats" in engine.endpoints:
        sample = endpoint_samples.call(engine.name, "websocket_stats")
        verdict.evidence("websocket_stats", sample.evidence())
        connections, rate = lookup(sample.json, STATS_CONNECTIONS), lookup(sample.json, STATS_RATE)
        if sample.error is None and sample.status == 200 and _number(connections):
            return WebSocketFigures(connections, rate if _number(rate) else None, f"GET {sample.url}")
        reasons.append(f"GET {sample.url}: " + (sample.error or (f"HTTP {sample.status}" if sample.status != 200
                                                                  else f"no number at {STATS_CONNECTIONS}")))
    if names_metrics("connections")(engine):
        try:
            metrics = readable_metrics(engine, endpoint_samples, verdict)
            connections = metric_value(engine, metrics, "connections")
        except Unobservable as exc:
            reasons.append(str(exc))
        else:
            names = engine.metrics.names
            rate = None
            if "messages" in names and "uptime" in names:
                messages, uptime = metrics.value(names["messages"]), metrics.value(names["uptime"])
                rate = average_rate(messages, uptime) if messages is not None and uptime is not None else None
            return WebSocketFigures(connections, rate, f"metrics {names['connections']} "
                                                       "(messages per second averaged since start)")
    raise Unobservable("; ".join(reasons))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@check("websocket-connections", "WebSocket active connections stay below the warning level", tiers=DAILY,
       severity="normal", guide=WEBSOCKET, applies=websocket_observable,
       needs=("container-running", "port-open"))
def test_websocket_connections(engine, endpoint_samples, inventory, verdict):
    figures = websocket_figures(engine, endpoint_samples, verdict)
    limits = engine.limits(inventory.thresholds)
    warning, critical = limits.websocket_connections_warning, limits.websocket_connections_critical
    count = figures.connections
    verdict.measured("active_connections", f"{count:g}")
    level = "CRITICAL" if count >= critical else "WARNING"
    if count >= warning:
        verdict.advise("scale the WebSocket engine (docker-compose up --scale websocket-engine=3), pool connections, "
                       "balance the load")
    verdict.expect(count < warning,
                   expected=f"fewer than {warning} active connections (WARNING from {warning}, CRITICAL at {critical})",
                   seen=f"{count:g} active connections from {figures.source} ({level}, the engine nears its limit)")


@check("websocket-messages-flowing", "Messages flow to connected WebSocket clients", tiers=DAILY,
       severity="critical", guide=WEBSOCKET, remedy="diagnose-engine", applies=websocket_observable,
       needs=("websocket-connections",))
def test_websocket_messages_flowing(engine, endpoint_samples, verdict):
    figures = websocket_figures(engine, endpoint_samples, verdict)
    if figures.connections <= 0:
        pytest.skip("no active WebSocket connection: no message is due, nothing to judge")
    if figures.rate is None:
        verdict.advise("name the metrics messages and uptime in the inventory, or serve /websocket/stats")
        raise Unobservable(f"{figures.source} gives no messages per second")
    verdict.measured("messages_per_second", figures.rate)
    verdict.expect(figures.rate > 0,
                   expected=f"messages flowing to the {figures.connections:g} connected clients (more than 0 per second)",
                   seen=f"{figures.rate:g} messages per second from {figures.source}: clients connected but fed nothing")


def reach(engine, engine_reach, dependency: str, verdict):
    __tracebackhide__ = True
    result = verdict.observed(engine_reach[(engine.name, dependency)])
    verdict.evidence(f"docker exec {engine.container} (TCP connect)", result.output)
    return result


@check("engine-reaches-redis", "The engine's container opens a TCP connection to Redis", tiers=DAILY,
       severity="critical", guide=MESSAGEBUS, remedy="check-messagebus", applies=lambda engine: engine.docker,
       needs=("container-running", "container-running@redis", "container-on-platform-network",
              "container-on-platform-network@redis"))
def test_engine_reaches_redis(engine, engine_reach, verdict):
    result = reach(engine, engine_reach, "redis", verdict)
    verdict.expect(result.ok, expected=f"a TCP connection from {engine.container} to {result.address}",
                   seen=result.line())


@check("engine-reaches-postgres", "The engine's container opens a TCP connection to PostgreSQL", tiers=DAILY,
       severity="critical", guide=DATABASE, applies=lambda engine: engine.docker,
       needs=("container-running", "container-running@postgres", "container-on-platform-network",
              "container-on-platform-network@postgres"))
def test_engine_reaches_postgres(engine, engine_reach, verdict):
    result = reach(engine, engine_reach, "postgres", verdict)
    if not result.ok:
        # PostgreSQL's own outage is judged by postgres-ready and its container's checks, which block this one:
        # what is left here is the engine's network or its idea of where PostgreSQL is, never a restart of it.
        verdict.advise("check that the engine shares PostgreSQL's network and that postgres.internal_host names it")
    verdict.expect(result.ok, expected=f"a TCP connection from {engine.container} to {result.address}",
                   seen=result.line())


@check("engine-postgres-login", "The engine logs in to PostgreSQL with its own credentials and database, from inside "
       "its container", tiers=DAILY, severity="critical", guide=DATABASE, applies=lambda engine: engine.docker,
       needs=("engine-reaches-postgres", "postgres-ready", "postgres-connections"))
def test_engine_postgres_login(engine, engine_reach, verdict):
    """The guide's database connection test: a TCP connect proves the route, a login proves the engine's
    settings (user, password, database). Its settings are read inside the container and never shown."""
    result = verdict.observed(engine_reach[(engine.name, LOGIN)])
    verdict.evidence(f"docker exec {engine.container} (PostgreSQL login)", result.output)
    if not result.ok:
        # PostgreSQL answers the suite (postgres-ready) and the engine's connect (engine-reaches-postgres): the
        # engine's own settings are wrong, and no restart of PostgreSQL mends them.
        verdict.advise(f"compare {engine.container}'s database settings (DATABASE_URL, or POSTGRES_USER, "
                       "POSTGRES_PASSWORD and POSTGRES_DB) with PostgreSQL's users and databases; after correcting "
                       "them recreate the engine's container (docker compose up -d for its service); "
                       "PostgreSQL itself needs no restart")
    verdict.expect(result.ok, expected=f"a login to PostgreSQL at {result.address} with {engine.container}'s own "
                                       "settings", seen=result.line())
