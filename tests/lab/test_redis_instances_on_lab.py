"""A second Redis server beside the lab's bus, named in the inventory with its role: each Redis server check runs on
both, a stopped one fails its own checks alone (one root cause, its container's fix), and the bus stays green."""
from __future__ import annotations

import time

import docker
import pytest
import redis

from conftest import LAB_LABELS, derived_inventory, lab_container, lab_docker, run_checks
from lab.ownership import owned_container

CACHE, CACHE_PORT = "nautilus-redis-cache", 6390
SERVER_CHECKS = ["test_redis_ping", "test_redis_memory", "test_redis_evictions", "test_redis_rejected_connections",
                 "test_redis_latency", "test_redis_persistence", "test_redis_commandstats",
                 "test_redis_connection_churn"]
SELECTION = "test_redis_ or (container_running and redis)"


def answers(port: int, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1).ping():
                return True
        except redis.RedisError:
            time.sleep(0.3)
    return False


def remove_cache(client: docker.DockerClient) -> None:
    try:
        owned_container(client, CACHE).remove(force=True)
    except docker.errors.NotFound:
        pass


@pytest.fixture
def cache(lab):
    """A Redis server of the lab's own image, labelled as the lab's, publishing on 127.0.0.1 only."""
    client = lab_docker()
    remove_cache(client)
    image = lab_container("nautilus-redis").attrs["Config"]["Image"]
    container = client.containers.run(
        image, ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/tmp",
                "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
        name=CACHE, detach=True, labels=LAB_LABELS, mem_limit="128m", ports={"6379/tcp": ("127.0.0.1", CACHE_PORT)})
    try:
        assert answers(CACHE_PORT), "the second Redis did not answer PING"
        yield container
    finally:
        remove_cache(client)


def test_a_second_redis_is_judged_on_its_own(tmp_path, cache):
    inventory = derived_inventory(
        tmp_path, services={"grafana": None, "redis-cache": {"port": CACHE_PORT, "container": CACHE}},
        redis_instances={"cache": {"role": "market data cache", "port": CACHE_PORT, "service": "redis-cache"}})
    args = ("-m", "daily or weekly", "-k", SELECTION, f"--inventory={inventory}")

    healthy = run_checks(tmp_path, *args)
    for check in SERVER_CHECKS:
        assert healthy.outcomes.get(f"{check}[redis]") == "passed", (check, healthy.output[-2000:])
        assert healthy.outcomes.get(f"{check}[cache]") == "passed", (check, healthy.messages.get(f"{check}[cache]"))
    assert healthy.outcomes[f"test_container_running[{CACHE}]"] == "passed"
    assert healthy.failed == set()

    cache.stop(timeout=2)
    stopped = run_checks(tmp_path, *args)
    assert stopped.roots == {f"test_container_running[{CACHE}]"}, stopped.output[-3000:]
    assert stopped.failed == {f"test_container_running[{CACHE}]", *(f"{check}[cache]" for check in SERVER_CHECKS)}
    assert "start-container nautilus-redis-cache" in stopped.messages[f"test_container_running[{CACHE}]"]
    assert f"blocked by container-running[{CACHE}]" in stopped.messages["test_redis_ping[cache]"]
    assert all(stopped.outcomes[f"{check}[redis]"] == "passed" for check in SERVER_CHECKS)

    cache.start()
    assert answers(CACHE_PORT)
    assert run_checks(tmp_path, *args).failed == set()
