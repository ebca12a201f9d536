"""Several Redis servers, each with its role: the inventory, the checks' ids, what a failure rests on and its fix."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import checks.test_infrastructure  # noqa: F401 - the checks' specs, in REGISTRY once imported
import checks.test_messagebus  # noqa: F401
import checks.test_redis  # noqa: F401
from fixtures.dependencies import Outcomes, family, services_of
from fixtures.judgement import fix_for
from fixtures.spec import REGISTRY
from observation.errors import NoAnswer, Unobservable
from observation.inventory import InventoryError, load_inventory
from observation.redis_bus import connect_redis
from observation.targets import containers, redis_server_container, redis_servers

ROOT = Path(__file__).resolve().parents[2]
ENV = {"NAUTILUS_POSTGRES_PASSWORD": "x"}
CACHE = {"services": {"redis-cache": {"port": 6390, "container": "nautilus-redis-cache"}},
         "redis_instances": {"cache": {"role": "market data cache", "port": 6390, "service": "redis-cache",
                                       "password_env": "CACHE_PW"}}}


def inventory_from(tmp_path, document: dict, environ: dict | None = None):
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_inventory(str(path), environ={**ENV, **(environ or {})})


def test_each_server_has_its_name_role_service_and_container(tmp_path):
    inv = inventory_from(tmp_path, CACHE)
    bus, cache = redis_servers(inv)
    assert (bus.name, bus.is_bus, bus.service, bus.title()) == ("redis", True, "redis", "Redis")
    assert (cache.name, cache.role, cache.port, cache.service) == ("cache", "market data cache", 6390, "redis-cache")
    assert cache.title() == "Redis cache (market data cache)"
    assert redis_server_container(inv, cache) == "nautilus-redis-cache"
    # Its container keeps its data where every Redis image does: container-data-on-volumes judges it.
    found, _ = containers(inv, None)
    assert {t.name: t.data_dir for t in found}["nautilus-redis-cache"] == "/data"


def test_a_service_of_the_same_name_is_its_service(tmp_path):
    inv = inventory_from(tmp_path, {"services": {"cache": {"port": 6390, "container": "c"}},
                                    "redis_instances": {"cache": {"role": "cache", "port": 6390}}})
    assert redis_servers(inv)[1].service == "cache"
    alone = inventory_from(tmp_path, {"redis_instances": {"sessions": {"role": "sessions", "port": 6391}}})
    assert redis_servers(alone)[1].service is None and redis_server_container(alone, redis_servers(alone)[1]) is None


@pytest.mark.parametrize("instances, said", [
    ({"redis": {"role": "cache", "port": 6390}}, "redis_instances.redis: 'redis' names the message bus"),
    ({"cache": {"port": 6390}}, "redis_instances.cache.role"),
    ({"cache": {"role": "", "port": 6390}}, "redis_instances.cache.role"),
    ({"cache": {"role": "cache", "port": 6390, "service": "nope"}}, "redis_instances.cache.service: no service 'nope'"),
    ({"cache": {"role": "cache", "port": 6379}}, "redis_instances.cache.port: 127.0.0.1:6379 is the message bus"),
    ({"cache": {"role": "cache", "port": 6390, "colour": "red"}}, "redis_instances.cache.colour"),
])
def test_a_wrong_instance_is_one_line_naming_its_key(tmp_path, instances, said):
    with pytest.raises(InventoryError) as raised:
        inventory_from(tmp_path, {"redis_instances": instances})
    assert said in str(raised.value) and "\n" not in str(raised.value)


def test_each_server_asks_its_own_password(tmp_path):
    inv = inventory_from(tmp_path, CACHE, {"CACHE_PW": "cache-secret"})
    assert inv.secrets.needed("redis:cache") == "cache-secret"
    assert "cache-secret" in inv.secrets.values()  # masked in every report like the others
    missing = inventory_from(tmp_path, CACHE)
    with pytest.raises(Unobservable, match="CACHE_PW"):
        missing.secrets.needed("redis:cache")


def test_a_refused_server_is_named_with_its_role_and_container(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]  # bound, never listening: refused
        document = {**CACHE, "services": {"redis-cache": {"port": port, "container": "nautilus-redis-cache"}},
                    "redis_instances": {"cache": {"role": "market data cache", "port": port,
                                                  "service": "redis-cache"}}}
        inv = inventory_from(tmp_path, document)
        with pytest.raises(NoAnswer) as raised:
            connect_redis(inv, redis_servers(inv)[1])
    said = str(raised.value)
    assert said.startswith(f"Redis cache (market data cache) at 127.0.0.1:{port} unreachable")
    assert said.endswith("is nautilus-redis-cache running?")


def test_a_servers_checks_rest_on_its_own_service_and_the_engines_on_the_bus(tmp_path):
    inv = inventory_from(tmp_path, CACHE)
    bus, cache = redis_servers(inv)
    needs_of = {check_id: spec.needs for check_id, spec in REGISTRY.items()}
    outcomes = Outcomes(needs_of=lambda check_id: needs_of.get(check_id, ()))
    outcomes.record("container-running", "service:redis-cache", "failed", "container-running[nautilus-redis-cache]")
    memory = REGISTRY["redis-memory"].needs
    # The cache's stopped container blocks the cache's checks, through redis-ping, and not the bus's.
    assert family(cache, inv) == "service:redis-cache"
    assert outcomes.cause(memory, family(cache, inv), services_of(cache)) == \
        ("failed", "container-running[nautilus-redis-cache]")  # through redis-ping, at any depth
    assert outcomes.cause(memory, family(bus, inv), services_of(bus)) is None
    ping = REGISTRY["redis-ping"].needs
    assert outcomes.cause(ping, family(cache, inv), services_of(cache)) == \
        ("failed", "container-running[nautilus-redis-cache]")
    assert outcomes.cause(ping, family(bus, inv), services_of(bus)) is None
    # The engines' bus checks rest on the bus's redis-ping, whether or not other servers exist.
    outcomes.record("redis-ping", family(bus, inv), "failed", "redis-ping[redis]")
    assert outcomes.cause(REGISTRY["engine-bus-connection"].needs, "engine:risk")[1] == "redis-ping[redis]"
    assert outcomes.cause(memory, family(cache, inv), services_of(cache)) == \
        ("failed", "container-running[nautilus-redis-cache]")  # still its own cause, never the bus's
    bus_down = Outcomes(needs_of=lambda check_id: needs_of.get(check_id, ()))
    bus_down.record("container-running", "service:redis", "failed", "container-running[nautilus-redis]")
    bus_down.record("redis-ping", family(bus, inv), "failed", "redis-ping[redis]")
    assert bus_down.cause(memory, family(cache, inv), services_of(cache)) is None
    assert bus_down.cause(memory, family(bus, inv), services_of(bus))[1] == "redis-ping[redis]"


def test_a_servers_fix_restarts_its_own_container_never_the_bus(tmp_path):
    inv = inventory_from(tmp_path, CACHE)
    bus, cache = redis_servers(inv)
    ping, paths = REGISTRY["redis-ping"], {"inventory": "/i.yaml", "state_dir": None}
    assert fix_for(ping, {}, cache, paths, inv).argv == ("restart-container", "nautilus-redis-cache",
                                                         "--inventory=/i.yaml")
    assert fix_for(ping, {}, bus, paths, inv).argv == ("restart-redis", "--inventory=/i.yaml")
    persistence = REGISTRY["redis-persistence"]
    assert "BGREWRITEAOF" in fix_for(persistence, {"remedy": "redis-rewrite-aof"}, cache, paths, inv).text
    assert fix_for(persistence, {"remedy": "redis-rewrite-aof"}, bus, paths, inv).argv[0] == "redis-rewrite-aof"
    alone = inventory_from(tmp_path, {"redis_instances": {"sessions": {"role": "sessions", "port": 6391}}})
    said = fix_for(ping, {}, redis_servers(alone)[1], paths, alone).text
    assert "runs in no container" in said and "restart-redis" not in said


def collected(tmp_path, document: dict) -> list[str]:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({**document, "state_dir": str(tmp_path / "state")}))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           "-m", "daily or weekly", "-k", "redis or bus_connection", f"--inventory={path}"], cwd=ROOT,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **ENV}, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.split("::")[1] for line in done.stdout.splitlines() if "::" in line]


SERVER_CHECKS = ["test_redis_ping", "test_redis_memory", "test_redis_evictions", "test_redis_rejected_connections",
                 "test_redis_latency", "test_redis_persistence", "test_redis_commandstats",
                 "test_redis_connection_churn"]


def test_a_cache_that_evicts_by_design_has_no_eviction_check(tmp_path):
    evicting = {**CACHE, "redis_instances": {"cache": {**CACHE["redis_instances"]["cache"], "evicts": True}}}
    ids = collected(tmp_path, evicting)
    assert "test_redis_evictions[redis]" in ids and "test_redis_evictions[cache]" not in ids
    assert "test_redis_memory[cache]" in ids


def test_ids_name_each_server_and_stay_plain_for_the_bus_alone(tmp_path):
    several = collected(tmp_path, CACHE)
    for check in SERVER_CHECKS:
        assert f"{check}[redis]" in several and f"{check}[cache]" in several, check
        assert check not in several
    assert "test_engine_bus_connection[risk-engine]" in several  # the bus checks are not multiplied
    assert not [n for n in several if n.startswith("test_engine_bus_connection[") and n.endswith("cache]")]
    alone = collected(tmp_path, {})
    assert set(SERVER_CHECKS) <= set(alone) and not [n for n in alone if "[redis]" in n or "[cache]" in n]
