"""Redis, and the message bus as Redis sees it.

An engine's own `messagebus_connected` is not trusted alone (engines were
seen reporting it wrongly both ways), so the bus is verified from outside:
the engine's connection in CLIENT LIST, how long that connection has been
idle, and its heartbeat key. `engine_connections` is the one rule for
"this connection is that engine's", used by checks and helpers alike.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import NoAnswer, Unobservable, short_reason, unreachable_hint
from .inventory import Engine, Inventory
from .targets import RedisServer, redis_server_container, redis_servers, server_in_own_terms


def connect_redis(inventory: Inventory, server: RedisServer | None = None) -> redis.Redis:
    """A client of the bus (or of `server`) that has answered PING, or Unobservable saying why (refused, wrong
    password, ...)."""
    server, timeouts = server or redis_servers(inventory)[0], inventory.timeouts
    where = f"{server.title()} at {server.address}:{server.port}"
    client = redis.Redis(host=server.address, port=server.port, db=server.db,
                         password=inventory.secrets.needed(server.secret),
                         socket_connect_timeout=timeouts.connect_s, socket_timeout=timeouts.read_s,
                         # redis-py 6+ retries a timed-out or refused call 10 times with backoff by default: a
                         # Redis that does not answer then held the run ~15 s past the inventory's timeouts.
                         retry=Retry(NoBackoff(), 0), decode_responses=True)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        client.close()
        raise Unobservable(f"{where} refused the suite's credentials ({' '.join(str(exc).split())[:120]})",
                           fix=credentials_fix(server.password_env, where=_settings_of(server))) from None
    except redis.ResponseError as exc:
        client.close()
        # Redis answers but refuses (MISCONF after a failed snapshot, LOADING, ...): it runs, so say what it said.
        raise NoAnswer(f"{where} answers but refuses commands: {' '.join(str(exc).split())[:200]}") from None
    except redis.RedisError as exc:
        client.close()
        running = server_in_own_terms(inventory, "redis") if server.is_bus else \
            (redis_server_container(inventory, server) or f"the Redis server of {server.name}")
        raise NoAnswer(f"{where} unreachable ({short_reason(exc)}); "
                       f"{unreachable_hint(short_reason(exc), running)}") from None
    return client


def _settings_of(server: RedisServer) -> str:
    return "redis" if server.is_bus else f"redis_instances.{server.name}"


def credentials_fix(password_env: str | None, where: str = "redis") -> str:
    """What fits a refused password: the secret, never a restart (Redis runs; restarting it changes nothing).

    >>> credentials_fix("NAUTILUS_REDIS_PASSWORD")
    'check the secret NAUTILUS_REDIS_PASSWORD (the password Redis requires, requirepass); nothing to restart'
    >>> credentials_fix(None)
    'the inventory names no redis.password_env, so the suite sent no password: set redis.password_env to the variable holding the password Redis requires; nothing to restart'
    """
    if password_env:
        return f"check the secret {password_env} (the password Redis requires, requirepass); nothing to restart"
    return (f"the inventory names no {where}.password_env, so the suite sent no password: set {where}.password_env "
            "to the variable holding the password Redis requires; nothing to restart")


@dataclass
class BusSnapshot:
    clients: list[dict] = field(default_factory=list)
    heartbeats: dict[str, str | None] = field(default_factory=dict)
    taken_at: float = 0.0
    # stream -> its newest entries, newest first, as XREVRANGE gives them; and Redis's own clock, which stamped them
    streams: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    redis_now: float | None = None


def bus_snapshot(client: redis.Redis, engines: list[Engine]) -> BusSnapshot:
    """CLIENT LIST, every engine's heartbeat key and the newest entries of every heartbeat stream, in one round trip."""
    keys = [e.bus.heartbeat_key for e in engines if e.bus.heartbeat_key]
    streams: dict[str, int] = {}
    for engine in engines:
        if engine.bus.heartbeat_stream:
            spec = engine.bus.heartbeat_stream
            streams[spec.stream] = max(streams.get(spec.stream, 0), spec.scan)
    pipe = client.pipeline(transaction=False)
    pipe.client_list()
    if keys:
        pipe.mget(keys)
    if streams:
        pipe.time()
        for stream, count in streams.items():
            pipe.xrevrange(stream, count=count)
    try:
        replies = pipe.execute()
    except redis.RedisError as exc:
        raise Unobservable(f"redis: CLIENT LIST failed ({short_reason(exc)})") from None
    rest = replies[2:] if keys else replies[1:]
    snapshot = BusSnapshot(clients=replies[0], heartbeats=dict(zip(keys, replies[1] if keys else [])),
                           taken_at=time.time())
    if streams:
        seconds, micros = rest[0]
        snapshot.redis_now = seconds + micros / 1e6
        snapshot.streams = dict(zip(streams, rest[1:]))
    return snapshot


def stream_heartbeat_age(entries: list[tuple[str, dict]], match: dict[str, str], redis_now: float) -> float | None:
    """Seconds since the newest entry carrying every field value of `match` (its id is Redis's millisecond clock
    when it was added); None when none of `entries` does.

    >>> entries = [("1700000009000-0", {"topic": "heartbeat.ml"}), ("1700000004500-0", {"topic": "heartbeat.risk"})]
    >>> stream_heartbeat_age(entries, {"topic": "heartbeat.risk"}, 1700000010.0)
    5.5
    >>> stream_heartbeat_age(entries, {"topic": "heartbeat.factor"}, 1700000010.0) is None
    True
    """
    for entry_id, values in entries:
        if all(values.get(k) == v for k, v in match.items()):
            return round(redis_now - int(entry_id.split("-")[0]) / 1000, 3)
    return None


@dataclass(frozen=True)
class Heartbeat:
    """An engine's last beat as the inventory says to find it: where, its age (None: none found), and why not."""

    where: str
    age: float | None
    missing: str = ""


def heartbeat_of(engine: Engine, snapshot: BusSnapshot) -> Heartbeat | None:
    """The engine's heartbeat, from its key or its stream; None when the inventory names neither. The one reading
    engine-heartbeat-fresh and check-messagebus share."""
    if engine.bus.heartbeat_stream:
        spec = engine.bus.heartbeat_stream
        wanted = ", ".join(f"{k}={v}" for k, v in spec.match.items())
        where = f"stream {spec.stream} entry with {wanted}"
        entries = snapshot.streams.get(spec.stream) or []
        age = stream_heartbeat_age(entries, spec.match, snapshot.redis_now or snapshot.taken_at)
        return Heartbeat(where, age, "" if age is not None else
                         f"none among its newest {len(entries)} entries (the stream holds no beat of this engine)")
    if engine.bus.heartbeat_key:
        key = engine.bus.heartbeat_key
        raw = snapshot.heartbeats.get(key)
        age = heartbeat_age(raw, snapshot.taken_at)
        missing = ("key absent (expired: no heartbeat for a while)" if raw is None else
                   f"unreadable value {raw[:40]!r} (it should hold a unix time)" if age is None else "")
        return Heartbeat(f"heartbeat key {key}", age, missing)
    return None


def engine_connections(engine: Engine, clients: list[dict], addresses: set[str],
                       sockets: frozenset[str] | None = None) -> tuple[list[dict], str]:
    """The engine's connections in CLIENT LIST, and how they were recognised.

    By the client name when the inventory names one (the stronger evidence),
    else by the engine container's address (real engines name no client), else,
    for a plain process, by its own sockets to Redis (`sockets`: ip:port, as
    observation.processes found them) or the inventory's client_address.

    >>> from observation.inventory import Engine
    >>> clients = [{"name": "nautilus-risk-engine", "addr": "172.18.0.5:4000", "idle": "1"}]
    >>> engine_connections(Engine(name="risk", port=8200, bus={"client_name": "nautilus-risk-engine"}), clients, set())[1]
    'a Redis client named nautilus-risk-engine'
    >>> len(engine_connections(Engine(name="ml", port=8400), clients, {"172.18.0.9"})[0])
    0
    >>> engine_connections(Engine(name="ml", port=8400, docker=False), clients, set(), frozenset({"172.18.0.5:4000"}))
    ([{'name': 'nautilus-risk-engine', 'addr': '172.18.0.5:4000', 'idle': '1'}], "a Redis connection of ml's process (172.18.0.5:4000)")
    """
    if engine.bus.client_name:
        return ([c for c in clients if c.get("name") == engine.bus.client_name],
                f"a Redis client named {engine.bus.client_name}")
    if sockets is not None:
        shown = ", ".join(sorted(sockets)) or "the process holds no TCP connection to Redis"
        return [c for c in clients if c.get("addr") in sockets], f"a Redis connection of {engine.name}'s process ({shown})"
    if engine.bus.client_address:
        return ([c for c in clients if c.get("addr", "").rsplit(":", 1)[0].strip("[]") == engine.bus.client_address],
                f"a Redis connection from {engine.bus.client_address} (bus.client_address)")
    shown = ", ".join(sorted(addresses)) or "no address known"
    return ([c for c in clients if c.get("addr", "").rsplit(":", 1)[0] in addresses],
            f"a Redis connection from {engine.container} ({shown})")


def heartbeat_age(raw: str | None, now: float) -> float | None:
    """Seconds since the heartbeat the key holds (a unix time); None when absent or unreadable.

    >>> heartbeat_age("100.0", now=103.5), heartbeat_age(None, now=1.0), heartbeat_age("x", now=1.0)
    (3.5, None, None)
    """
    try:
        return now - float(raw) if raw is not None else None
    except ValueError:
        return None
