"""Which faults the lab knows, by where they act, and which it has injected: lab/.state/faults.json, one record
per injected fault, read by `heal` and `faults` and cut down by `down`.

Below faults and stack (both use the records): it imports nothing of the lab but its constants.
"""
from __future__ import annotations

import json
import os
import time

from . import STATE_DIR

ENGINE_FAULTS = ("unhealthy", "degraded", "slow", "bus-down", "bus-lie", "idle-bus", "error-burst", "known-error",
                 "slow-log",
                 "leak", "cpu", "hang", "crash-loop", "exit", "oom", "hostile", "trickle", "hostile-body", "conn-churn",
                 "ws-stall", "no-data", "noisy-calculate")
DOCKER_FAULTS = ("stop", "kill", "pause", "remove", "restart", "port-taken", "port-impostor", "bad-db-login")
HOST_FAULTS = ("old-log", "no-backup", "empty-backup")            # target: host
POSTGRES_FAULTS = ("slow-query", "held-lock", "long-query", "dead-tuples")  # target: postgres
REDIS_FAULTS = ("redis-fill", "redis-evict")                      # target: redis
SERVER_FAULTS = ("freeze",)                                       # target: redis or postgres
WEBSOCKET_FAULTS = ("ws-connections",)                            # target: websocket
KINDS = (ENGINE_FAULTS + DOCKER_FAULTS + HOST_FAULTS + POSTGRES_FAULTS + REDIS_FAULTS + SERVER_FAULTS
         + WEBSOCKET_FAULTS)
REGISTRY = STATE_DIR / "faults.json"


def injected() -> list[dict]:
    try:
        return json.loads(REGISTRY.read_text())
    except (OSError, ValueError):
        return []


def remember(kind: str, target: str, **extra) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    records = injected() + [{"kind": kind, "target": target, "at": round(time.time(), 1), **extra}]
    temp = REGISTRY.with_suffix(".tmp")
    temp.write_text(json.dumps(records, indent=1))
    os.replace(temp, REGISTRY)


def forget(records: list[dict]) -> None:
    left = [r for r in injected() if r not in records]
    if left:
        temp = REGISTRY.with_suffix(".tmp")
        temp.write_text(json.dumps(left, indent=1))
        os.replace(temp, REGISTRY)
    else:
        REGISTRY.unlink(missing_ok=True)


def forget_container_faults() -> None:
    """After `lab down`: what lived in containers and lab processes went with them.

    Host files, PostgreSQL tables and Redis keys outlive the containers, so
    their records stay for the next heal.
    """
    forget([r for r in injected() if r["kind"] not in HOST_FAULTS + POSTGRES_FAULTS + REDIS_FAULTS])
