"""check-messagebus: the guide's MessageBus diagnosis, seen from Redis and from the engine (read-only).

An engine's own `messagebus_connected` is not trusted alone (engines were seen
reporting it wrongly both ways), so Redis is asked too: PING, INFO, CLIENT LIST
(the engine's connection, found by the same rule the checks use, and how long
it has been idle) and the engine's heartbeat key.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import redis

from observation.docker_api import State, container_addresses
from observation.errors import Unobservable
from observation.http import request
from observation.inventory import Engine
from observation.jsonpath import MISSING, lookup
from observation.redis_bus import (
    bus_snapshot,
    connect_redis,
    engine_connections,
    heartbeat_of,
)
from observation.targets import backend_without_docker, engine_url, start_without_docker

from .context import Context
from .errors import FAILURES, ContainerMissing, short_reason
from .registry import command_for
from .targets import platform_containers, resolve


# The engine has no bus flag at all (inventory health.messagebus: false): not a flag that is wrong or missing.
NOT_REPORTED: Any = type("NotReported", (), {"__repr__": lambda self: "NOT_REPORTED"})()


def check_messagebus(ctx: Context, argument: str | None, apply: bool = False) -> int:
    """The guide's MessageBus diagnosis, seen from Redis and from the engine, with its advice."""
    target = resolve(ctx.inventory, "check-messagebus", argument)
    engine, spec = target.engine, ctx.inventory.redis
    limits = engine.limits(ctx.inventory.thresholds)
    with ThreadPoolExecutor(max_workers=3) as pool:
        bus = pool.submit(redis_view, ctx, engine)
        health = pool.submit(request, None, engine_url(ctx.inventory, engine, engine.health_path),
                             connect_timeout_s=ctx.inventory.timeouts.connect_s,
                             read_timeout_s=limits.response_critical_ms / 1000)
        # A process engine (docker: false) is never asked of Docker: its own sockets are the evidence.
        container = pool.submit(_inspect_or_reason, ctx, target.host, target.container) if engine.docker else \
            pool.submit(_process_or_reason, ctx, engine)
    where = f"engine container {target.container}" if engine.docker else f"engine {engine.name} (a plain process)"
    # Redis's own deployment, not the engine's, decides whether Docker may be asked about Redis and named to fix it.
    redis_plain = backend_without_docker(ctx.inventory, "redis")
    ctx.say(f"check-messagebus {engine.name}: Redis {spec.host}:{spec.port} "
            f"({f'no container: {redis_plain}' if redis_plain else f'container {spec.container}'}), "
            f"{where} (read-only: changes nothing)")
    view, attrs = bus.result(), container.result()
    sockets = None
    if not engine.docker:
        process, attrs = attrs, None
        ctx.say(f"process: {process if isinstance(process, str) else process.line()}")
        if not isinstance(process, str) and not engine.bus.client_name and not engine.bus.client_address:
            sockets = process.redis_addresses
    addresses = container_addresses(attrs) if isinstance(attrs, dict) else set()
    networks = sorted(((attrs.get("NetworkSettings") or {}).get("Networks") or {}) if isinstance(attrs, dict) else [])
    network = networks[0] if networks else f"{ctx.inventory.compose_project}_{ctx.inventory.compose_project}-network"
    seen, redis_status = False, "running"
    if view.get("error"):
        ctx.say(f"Redis PING: {view['error']}")
        if redis_plain:
            redis_status = "down"  # no container to look at: Docker is not asked
        else:
            redis_status, seen_as = container_status(ctx, spec.container)
            ctx.say(f"Redis container {spec.container}: {seen_as}")
    else:
        ctx.say(f"Redis PING: PONG in {view['ping_ms']:.1f} ms")
        ctx.say(f"connected_clients: {view['connected_clients']} (used_memory {view['used_memory']})")
        # The same rule the checks use: by client name when the inventory names one, else by address.
        found, wanted = engine_connections(engine, view["snapshot"].clients, addresses, sockets)
        ctx.say(f"{wanted}: " + (", ".join(f"addr {c.get('addr')} idle {c.get('idle')} s" for c in found) if found
                                 else f"ABSENT from CLIENT LIST ({len(view['snapshot'].clients)} clients)"))
        if found and min(int(c.get("idle", 0)) for c in found) > limits.bus_idle_max_s:
            ctx.say(f"idle: every such connection has sent nothing for over {limits.bus_idle_max_s:g} s: "
                    "connected but silent, so effectively off the bus")
        seen = bool(found)
        beat = heartbeat_of(engine, view["snapshot"])  # the same reading as engine-heartbeat-fresh
        if beat:
            ctx.say(f"{beat.where}: " + (f"ABSENT: {beat.missing}" if beat.age is None else
                                         f"{beat.age:.1f} s old (limit {limits.heartbeat_max_age_s:g} s)"
                                         + (" - STALE" if beat.age > limits.heartbeat_max_age_s else "")))
    reply = health.result()
    body, error = reply.body, reply.error
    if not engine.health.reports("messagebus"):
        flag = NOT_REPORTED
        ctx.say("self-reported bus flag: none (the inventory says its /health has no such field: health.messagebus "
                "false), so Redis is the only witness")
    else:
        flag = lookup(body, engine.health.messagebus) if isinstance(body, dict) else MISSING
        ctx.say(f"self-reported {engine.health.messagebus!r} in its /health: "
                + (f"no answer ({error})" if error else "missing" if flag is MISSING else json.dumps(flag))
                + " (not trusted alone: engines were seen reporting it wrongly)")
    redis_down = redis_status if view.get("error") else None
    for line in messagebus_advice(engine.name, spec.container, network, redis_down, seen, flag, ctx.command,
                                  process=not engine.docker,
                                  redis_plain=start_without_docker(ctx.inventory, "redis") if redis_plain else None):
        ctx.say(line)
    return 0


def _process_or_reason(ctx: Context, engine: Engine):
    from observation.processes import look
    try:
        return look(engine, ctx.inventory)
    except Unobservable as exc:
        return str(exc)


def redis_view(ctx: Context, engine: Engine) -> dict:
    """PING time, INFO clients and memory, and the bus snapshot the checks take; {"error": ...} when Redis fails."""
    try:
        client = connect_redis(ctx.inventory)
    except Unobservable as exc:
        return {"error": str(exc)}
    try:
        started = time.perf_counter()
        client.ping()
        ping_ms = (time.perf_counter() - started) * 1000
        pipe = client.pipeline(transaction=False)
        pipe.info("clients")
        pipe.info("memory")
        clients_info, memory_info = pipe.execute()
        snapshot = bus_snapshot(client, [engine])
    except (redis.RedisError, Unobservable) as exc:
        return {"error": f"no answer ({short_reason(exc)})"}
    finally:
        client.close()
    return {"ping_ms": ping_ms, "connected_clients": clients_info.get("connected_clients"),
            "used_memory": memory_info.get("used_memory_human"), "snapshot": snapshot}


def container_status(ctx: Context, name: str) -> tuple[str, str]:
    """(status, how it reads) of a platform container: "missing" or "unknown" when Docker cannot say."""
    try:
        state = State.of(ctx.docker(platform_containers(ctx.inventory)[name].host).inspect(name))
    except ContainerMissing as exc:
        return "missing", str(exc)
    except FAILURES as exc:
        return "unknown", str(exc)
    return state.status, state.line()


def _inspect_or_reason(ctx: Context, host: str, name: str) -> dict | str:
    """Docker is only supporting evidence here: when it cannot answer, say so and go on."""
    try:
        return ctx.docker(host).inspect(name)
    except FAILURES as exc:
        return str(exc)


def messagebus_advice(engine: str, redis_container: str, network: str, redis_down: str | None, seen: bool,
                      flag: Any, command: Callable[[str, str | None], str] = command_for,
                      process: bool = False, redis_plain: str | None = None) -> list[str]:
    """The guide's "MessageBus Solutions" that fit what was seen; advice only.

    `redis_down` is None when Redis answers, else its container's status ("missing" or "unknown" included);
    `flag` is NOT_REPORTED for an engine whose /health has no bus flag (nothing to contradict);
    `command(helper, argument)` writes a helper's command line (the run's, with its inventory);
    `redis_plain` is how to start a Redis that runs without Docker: then no Docker command or container helper is
    named for Redis.

    >>> messagebus_advice("ml", "nautilus-redis", "n_n-network", "exited", False, True, lambda h, a: f"<{h} {a}>")[:2]
    ['verdict: Redis does not answer, so no engine is on the bus', 'advice: start Redis: <start-container nautilus-redis>']
    >>> messagebus_advice("ml", "nautilus-redis", "n_n-network", None, True, NOT_REPORTED)[0]
    'verdict: Redis sees the engine on the bus'
    >>> messagebus_advice("ml", "nautilus-redis", "n_n-network", "down", False, True, redis_plain="start it")[1:3]
    ['advice: start it', 'advice: verify Redis configuration and memory limits (INFO memory, maxmemory)']
    """
    if redis_down:
        verdict = "verdict: Redis does not answer, so no engine is on the bus"
    elif seen:
        verdict = "verdict: Redis sees the engine on the bus" + (
            "" if flag is True or flag is NOT_REPORTED else
            f", but it reports {json.dumps(None if flag is MISSING else flag)}: "
            "its flag is wrong, Redis is the better witness")
    else:
        verdict = "verdict: Redis does NOT see the engine" + (
            " although it reports true: its flag is wrong" if flag is True else "")
    lines = [verdict]
    if redis_down and redis_plain:
        lines.append(f"advice: {redis_plain}")
    elif redis_down in ("running", "unknown"):
        lines.append(f"advice: restart Redis: {command('restart-redis', None)} (the guide's `docker-compose restart "
                     "redis`)")
    elif redis_down == "missing":
        lines.append(f"advice: the container {redis_container} does not exist: recreate it with "
                     "`docker compose up -d redis`")
    elif redis_down:
        lines.append(f"advice: start Redis: {command('start-container', redis_container)}")
    if redis_down and redis_down != "missing" and not redis_plain:
        lines.append(f"advice: Redis logs: docker logs --tail 50 {redis_container}")
    if not redis_down and not seen and process:  # a plain process: its own sockets and log, its own restart
        lines += ["advice: check that the engine's host reaches Redis (its address and port in the engine's "
                  "configuration, a firewall between them)",
                  "advice: check for Redis authentication issues (the engine's Redis password and the inventory's "
                  "redis.password_env)",
                  f"advice: the engine's own view: {command('diagnose-process', engine)}; if it stays off "
                  f"the bus: {command('restart-process', engine)}"]
    elif not redis_down and not seen:
        lines += [f"advice: check the network: docker network inspect {network}",
                  "advice: check for Redis authentication issues (the engine's Redis password and the inventory's "
                  "redis.password_env)",
                  f"advice: the engine's own view: {command('diagnose-engine', engine)}; if it stays off "
                  f"the bus: {command('restart-engine', engine)}"]
    lines.append("advice: verify Redis configuration and memory limits (INFO memory, maxmemory)")
    return lines
