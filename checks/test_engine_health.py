"""Every engine's /health: answers, fast enough, healthy, and on the message bus.

The health of all engines is sampled once, concurrently (fixtures/samplers.py);
each check here judges one fact of one engine from that sample. Field paths
come from the inventory, so the guide's flat fields and the real engines'
nested ones are read the same way.
"""
from __future__ import annotations

import time

from checks.catalog import check
from fixtures.jsonpath import MISSING, lookup


def _answered(engine, health_samples, verdict):
    __tracebackhide__ = True
    sample = health_samples[engine.name]
    verdict.evidence("health", sample.evidence())
    verdict.expect(sample.error is None, expected=f"GET {sample.url} to answer", seen=sample.error or "")
    return sample


def _json(engine, health_samples, verdict) -> dict:
    __tracebackhide__ = True
    sample = _answered(engine, health_samples, verdict)
    verdict.expect(sample.json is not None, expected="a JSON object from /health",
                   seen=f"HTTP {sample.status}: {str(sample.body)[:200]!r}")
    return sample.json


@check("engine-health-answers")
def test_engine_health_answers(engine, health_samples, verdict):
    sample = _answered(engine, health_samples, verdict)
    verdict.expect(sample.status == 200, expected="HTTP 200", seen=f"HTTP {sample.status} in {sample.elapsed_ms} ms")


@check("engine-health-latency")
def test_engine_health_latency(engine, health_samples, inventory, verdict):
    sample = _answered(engine, health_samples, verdict)
    slow = engine.limits(inventory.thresholds).response_slow_ms
    verdict.expect(sample.elapsed_ms <= slow, expected=f"an answer within {slow} ms",
                   seen=f"{sample.elapsed_ms:.0f} ms")


@check("engine-status-healthy")
def test_engine_status_healthy(engine, health_samples, verdict):
    body = _json(engine, health_samples, verdict)
    status = lookup(body, engine.health.status)
    verdict.expect(status in engine.health.healthy_values,
                   expected=f"{engine.health.status} in {engine.health.healthy_values}",
                   seen="no such field" if status is MISSING else repr(status))


@check("engine-uptime-reported")
def test_engine_uptime_reported(engine, health_samples, verdict):
    body = _json(engine, health_samples, verdict)
    uptime = lookup(body, engine.health.uptime)
    verdict.expect(isinstance(uptime, (int, float)) and not isinstance(uptime, bool) and uptime >= 0,
                   expected=f"{engine.health.uptime} as a number of seconds",
                   seen="no such field" if uptime is MISSING else repr(uptime))


@check("engine-fields-present")
def test_engine_fields_present(engine, health_samples, verdict):
    body = _json(engine, health_samples, verdict)
    missing = [path for path in engine.health.expected if lookup(body, path) is MISSING]
    verdict.expect(not missing, expected=f"fields {engine.health.expected}", seen=f"missing {missing}")


@check("engine-messagebus-flag")
def test_engine_messagebus_flag(engine, health_samples, verdict):
    body = _json(engine, health_samples, verdict)
    flag = lookup(body, engine.health.messagebus)
    verdict.expect(flag is True, expected=f"{engine.health.messagebus} true",
                   seen="no such field" if flag is MISSING else repr(flag))


@check("engine-messagebus-seen-by-redis")
def test_engine_messagebus_seen_by_redis(engine, bus_view, redis_backend, container_states, inventory, verdict):
    """The engine's own flag is not trusted alone: Redis must see it too.

    By the client name the engine sets when the inventory names one, else by
    a connection from the engine container's address; plus a fresh heartbeat
    key when the inventory names one.
    """
    redis_backend.get()  # fails with the reason when Redis cannot be reached
    verdict.evidence("redis_clients", sorted(f"{c.get('name') or '-'} {c.get('addr')}" for c in bus_view.clients))
    if engine.bus.client_name:
        names = {c.get("name") for c in bus_view.clients}
        verdict.expect(engine.bus.client_name in names,
                       expected=f"a Redis client named {engine.bus.client_name}",
                       seen=f"{len(bus_view.clients)} clients, none with that name")
    else:
        addresses = container_addresses(container_states.get(engine.container, engine.host))
        clients = [c for c in bus_view.clients if c.get("addr", "").rsplit(":", 1)[0] in addresses]
        verdict.expect(bool(clients), expected=f"a Redis connection from {engine.container} ({', '.join(addresses) or 'no address'})",
                       seen=f"{len(bus_view.clients)} clients, none from there")
    if engine.bus.heartbeat_key:
        raw = bus_view.heartbeats.get(engine.bus.heartbeat_key)
        max_age = engine.limits(inventory.thresholds).heartbeat_max_age_s
        verdict.expect(raw is not None, expected=f"heartbeat key {engine.bus.heartbeat_key}",
                       seen="key absent (expired: no heartbeat for a while)")
        age = bus_view.taken_at - float(raw)
        verdict.expect(age <= max_age, expected=f"a heartbeat younger than {max_age}s", seen=f"{age:.1f}s old")


def container_addresses(attrs: dict | None) -> set[str]:
    networks = ((attrs or {}).get("NetworkSettings") or {}).get("Networks") or {}
    return {n["IPAddress"] for n in networks.values() if n.get("IPAddress")}
