"""The message bus, judged from the engine's own flag and verified from outside, in Redis.

A self-reported `messagebus_connected` is not trusted alone: Redis must show
the engine's connection, that connection must not sit idle, and the engine's
heartbeat must be fresh.
"""
from __future__ import annotations

from fixtures.spec import DAILY, EMERGENCY, check
from observation.docker_api import container_addresses
from observation.jsonpath import lookup
from observation.redis_bus import engine_connections, heartbeat_of

from .guide import MESSAGEBUS
from .test_engine_health import health_json, shown


def connections(engine, bus_view, container_states, process_states, verdict) -> list[dict]:
    """The engine's connections in Redis CLIENT LIST; fails the check when there is none.

    A process engine whose process cannot be found cannot be observed (the inventory must say where it is):
    that is no failure of the engine, which port-open judges."""
    __tracebackhide__ = True
    view = verdict.observed(bus_view)
    addresses, sockets = set(), None
    if not engine.bus.client_name and engine.docker:
        addresses = container_addresses(container_states.get(engine.container, engine.host))
    elif not engine.bus.client_name and not engine.bus.client_address:
        process = verdict.observed(process_states[engine.name])
        verdict.evidence("process", process.line())
        sockets = process.redis_addresses
    found, wanted = engine_connections(engine, view.clients, addresses, sockets)
    verdict.evidence("redis_clients", sorted(f"{c.get('name') or '-'} {c.get('addr')} idle={c.get('idle')}s"
                                             for c in view.clients))
    seen = f"{len(view.clients)} clients, none of them"
    if sockets:  # the process holds connections Redis shows under other addresses: something sits between them
        seen += ("; Redis sees the process's connections from another address (a proxy between them, such as a "
                 "published Docker port): set bus.client_name or bus.client_address")
    verdict.expect(bool(found), expected=wanted, seen=seen)
    return found


@check("engine-messagebus-flag", "Engine reports its MessageBus connected", tiers=EMERGENCY, severity="critical",
       guide=MESSAGEBUS, remedy="check-messagebus", applies=lambda engine: engine.health.reports("messagebus"),
       needs=("engine-health-answers", "redis-ping@redis"))
def test_engine_messagebus_flag(engine, health_samples, verdict):
    body = health_json(engine, health_samples, verdict)
    flag = lookup(body, engine.health.messagebus)
    verdict.expect(flag is True, expected=f"{engine.health.messagebus} true", seen=shown(flag))


@check("engine-bus-connection", "Redis shows the engine's connection", tiers=EMERGENCY, severity="critical",
       guide=MESSAGEBUS, remedy="check-messagebus",
       needs=("container-running", "port-open", "redis-ping@redis"))
def test_engine_bus_connection(engine, bus_view, container_states, process_states, verdict):
    connections(engine, bus_view, container_states, process_states, verdict)


@check("engine-bus-idle", "The engine's Redis connection is in use, not idle", tiers=DAILY, severity="critical",
       guide=MESSAGEBUS, remedy="check-messagebus",
       needs=("engine-bus-connection", "container-running"))  # a paused engine keeps an idle connection
def test_engine_bus_idle(engine, bus_view, container_states, process_states, inventory, verdict):
    found = connections(engine, bus_view, container_states, process_states, verdict)
    idle = min(int(c.get("idle", 0)) for c in found)
    verdict.measured("idle_s", idle)
    limit = engine.limits(inventory.thresholds).bus_idle_max_s
    verdict.expect(idle <= limit, expected=f"a connection that sent a command within {limit:g} s",
                   seen=f"idle for {idle} s: connected but silent, so effectively off the bus")


@check("engine-heartbeat-fresh", "The engine's heartbeat in Redis is fresh", tiers=EMERGENCY, severity="critical",
       guide=MESSAGEBUS, remedy="check-messagebus",
       applies=lambda engine: bool(engine.bus.heartbeat_key or engine.bus.heartbeat_stream),
       needs=("container-running", "container-on-platform-network", "redis-ping@redis"))
def test_engine_heartbeat_fresh(engine, bus_view, inventory, verdict):
    beat = heartbeat_of(engine, verdict.observed(bus_view))
    verdict.expect(beat.age is not None, expected=f"a {beat.where}", seen=beat.missing)
    verdict.measured("heartbeat_age_s", round(beat.age, 1))
    max_age = engine.limits(inventory.thresholds).heartbeat_max_age_s
    verdict.expect(beat.age <= max_age, expected=f"a heartbeat younger than {max_age:g} s ({beat.where})",
                   seen=f"{beat.age:.1f} s old")
