"""Every lab fault really happens (seen through HTTP, Docker or Redis) and heals."""
from __future__ import annotations

import socket
import time

import docker
import pytest
import redis
import requests

pytestmark = pytest.mark.lab_fault


def health(port: int, timeout: float = 5) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/health", timeout=timeout)


def container(name: str):
    return docker.from_env(timeout=10).containers.get(name)


def eventually(probe, timeout_s: float = 20, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def redis_client_names() -> set[str]:
    r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, decode_responses=True)
    return {c["name"] for c in r.client_list()}


def test_unhealthy_in_both_flavours(fault):
    fault("unhealthy", "risk")
    fault("unhealthy", "analytics")
    real = health(8200)
    assert (real.status_code, real.json()["status"]) == (200, "stopped")
    guide = health(8100)
    assert (guide.status_code, guide.json()["status"]) == (503, "unhealthy")


def test_slow_responses(fault):
    fault("slow", "strategy", "--ms", "1200")
    started = time.monotonic()
    assert health(8700).status_code == 200
    assert time.monotonic() - started >= 1.2


def test_bus_down_and_bus_lie(fault):
    fault("bus-down", "ml")
    fault("bus-lie", "features")
    assert eventually(lambda: health(8400).json()["messagebus_connected"] is False, 10)
    gone = {"nautilus-ml-engine", "nautilus-features-engine"}
    assert eventually(lambda: not gone & redis_client_names(), 10), redis_client_names()
    assert health(8500).json()["messagebus_connected"] is True  # the lie the suite must see through


def test_error_burst_reaches_the_logs(fault):
    fault("error-burst", "marketdata", "--count", "15")
    logs = container("nautilus-marketdata-engine").logs(since=int(time.time()) - 30).decode()
    assert sum("ERROR" in line for line in logs.splitlines()) >= 15


def _memory(name: str) -> int:
    return container(name).stats(stream=False)["memory_stats"]["usage"]


def test_leak_grows_memory(fault):
    before = _memory("nautilus-portfolio-engine")
    fault("leak", "portfolio", "--mb-per-s", "20", "--max-mb", "100")
    assert eventually(lambda: _memory("nautilus-portfolio-engine") > before + 40 * 2**20, 15)


def test_cpu_burn(fault):
    fault("cpu", "factor")

    def cpu_percent() -> float:
        s = container("nautilus-factor-engine").stats(stream=False)
        cpu = s["cpu_stats"]["cpu_usage"]["total_usage"] - s["precpu_stats"]["cpu_usage"]["total_usage"]
        system = s["cpu_stats"]["system_cpu_usage"] - s["precpu_stats"].get("system_cpu_usage", 0)
        return 100.0 * cpu / system * s["cpu_stats"].get("online_cpus", 1) if system > 0 else 0.0

    assert eventually(lambda: cpu_percent() > 50, 15)


def test_hang(fault):
    fault("hang", "websocket")
    with pytest.raises(requests.Timeout):
        health(8600, timeout=2)


def test_crash_loop_with_the_guides_import_error(fault):
    fault("crash-loop", "factor")
    engine = container("nautilus-factor-engine")
    assert eventually(lambda: engine.reload() or engine.attrs["RestartCount"] >= 2, 30)
    assert "ImportError: cannot import name 'MessagePriority'" in engine.logs(tail=50).decode()


@pytest.mark.parametrize("kind,target,name", [
    ("stop", "strategy", "nautilus-strategy-engine"),
    ("kill", "ml", "nautilus-ml-engine"),
    ("stop", "redis", "nautilus-redis"),
    ("stop", "postgres", "nautilus-postgres"),
])
def test_docker_level_stop(fault, kind, target, name):
    fault(kind, target)
    assert container(name).status == "exited"


def test_pause(fault):
    fault("pause", "features")
    assert container("nautilus-features-engine").status == "paused"
    with pytest.raises(requests.Timeout):
        health(8500, timeout=2)


def test_port_taken_keeps_the_engine_from_starting(fault):
    fault("port-taken", "marketdata")
    with socket.create_connection(("127.0.0.1", 8800), timeout=2):
        pass  # something listens: the lab's holder, not the engine
    with pytest.raises(docker.errors.APIError):
        container("nautilus-marketdata-engine").start()


def test_heal_brings_everything_back(fault, heal):
    fault("stop", "risk")
    fault("unhealthy", "analytics")
    heal()
    assert health(8200).json()["status"] == "healthy"
    assert health(8100).json()["status"] == "healthy"
