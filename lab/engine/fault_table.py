"""The lab's faults, one entry per kind: what injecting it does and what clearing it undoes.

`FAULTS[kind].inject(engine, kind, params)` answers POST /_lab/faults/{kind}; `FAULTS[kind].clear(engine)` runs
when DELETE removes the kind from `engine.faults`. Most faults only stand in `engine.faults`, where the health
formats, the bus and the middleware look for them; the others start something here (a leak, a CPU burner, a
Redis churn, a held request) or act at once (log lines, an exit).
"""
from __future__ import annotations

import asyncio
import ctypes
import json
import os
import subprocess
import sys
from typing import Awaitable, Callable, NamedTuple

import redis.asyncio as aioredis
from aiohttp import web

from crash_marker import container_id
from engine_config import (CPU_BURNER, CRASH_MARKER, FAULT_KINDS, HOSTILE_MODES, HOSTILE_TEXT, KNOWN_ERRORS, NAME,
                           OOM_CAP_MB, OOM_CHUNK_MB, REDIS, SLOW_OPERATIONS, STATE_DIR, WS_STATS_KEY, log)
from http_input import bad_request, param


class Fault(NamedTuple):
    inject: Callable[..., Awaitable[web.Response]]  # (engine, kind, params)
    clear: Callable[..., None]  # (engine); nothing to undo for most


def fault_state(engine, **extra) -> dict:
    return {"engine": NAME, "faults": engine.faults, **extra}


def nothing_to_undo(engine) -> None:
    pass


# -- standing faults: listed by GET until cleared ----------------------------------------

def standing(start: Callable[..., Awaitable[dict]] | None = None) -> Callable[..., Awaitable[web.Response]]:
    """A fault that stays in engine.faults with the parameters `start` returns (none when nothing starts)."""
    async def inject(engine, kind: str, params: dict) -> web.Response:
        engine.faults[kind] = await start(engine, kind, params) if start else {}
        log.warning("Lab fault injected: %s %s", kind, json.dumps(engine.faults[kind]))
        return web.json_response(fault_state(engine))
    return inject


async def start_slow(engine, kind: str, params: dict) -> dict:
    return {"ms": int(param(params, "ms", 1500, 0, 600_000))}


async def start_bus_off(engine, kind: str, params: dict) -> dict:
    engine.faults[kind] = {}  # before the drop, so the bus loop does not reconnect in between
    if engine.bus.client is not None:
        await engine.bus.drop()
        log.warning("MessageBus disconnected (lab fault %s)", kind)
        engine.bus.up = False
    return {}


async def start_leak(engine, kind: str, params: dict) -> dict:
    leak = {"mb_per_s": param(params, "mb_per_s", 20, 0.1, 1000), "max_mb": param(params, "max_mb", 150, 1, 4096)}
    if engine.leak_task is not None:
        engine.leak_task.cancel()
    engine.leak_task = asyncio.create_task(grow(engine, **leak))
    return leak


async def grow(engine, mb_per_s: float, max_mb: float) -> None:
    while len(engine.leaked) < max_mb:
        engine.leaked.append(bytearray(b"\xa5") * (1 << 20))  # written, so every page is resident
        await asyncio.sleep(1 / mb_per_s)
    log.warning("In-memory cache holds %d MB and stopped growing", len(engine.leaked))


def stop_leak(engine) -> None:
    if engine.leak_task is not None:
        engine.leak_task.cancel()
        engine.leak_task = None
    engine.leaked.clear()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages unless asked
    except (OSError, AttributeError):
        pass


async def start_cpu(engine, kind: str, params: dict) -> dict:
    if engine.cpu_child is None or engine.cpu_child.poll() is not None:
        # A fresh interpreter, not a fork: a forked child would share the event loop's
        # signal wakeup fd, and a signal sent to it would stop this engine.
        engine.cpu_child = subprocess.Popen([sys.executable, "-c", CPU_BURNER, str(os.getpid())],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return {}


def stop_cpu(engine) -> None:
    child, engine.cpu_child = engine.cpu_child, None
    if child is not None:
        child.kill()
        child.wait(timeout=2)


async def start_hang(engine, kind: str, params: dict) -> dict:
    if engine.hang_release is None:
        engine.hang_release = asyncio.Event()
    return {}


def release_hang(engine) -> None:
    if engine.hang_release is not None:
        engine.hang_release.set()  # every held request goes on
        engine.hang_release = None


async def start_churn(engine, kind: str, params: dict) -> dict:
    per_s = param(params, "count", 50, 1, 500)
    if engine.churn_task is not None:
        engine.churn_task.cancel()
    engine.churn_task = asyncio.create_task(churn(per_s))
    return {"per_s": per_s}


async def churn(per_s: float) -> None:
    """A new Redis connection for every read, as an engine without a connection pool does."""
    while True:
        conn = aioredis.Redis(**REDIS, socket_timeout=1, socket_connect_timeout=1)
        try:
            await conn.get(WS_STATS_KEY)
        except Exception:
            pass  # the fault is the connecting, not the answer
        finally:
            try:
                await conn.close(close_connection_pool=True)
            except Exception:
                pass
        await asyncio.sleep(1 / per_s)


def stop_churn(engine) -> None:
    if engine.churn_task is not None:
        engine.churn_task.cancel()
        engine.churn_task = None


async def hostile(engine, kind: str, params: dict) -> web.Response:
    secret = str(params.get("text") or "lab-hostile-secret")
    engine.faults[kind] = {"secret": secret}
    log.error("Database connection timeout %s api_key=%s (synthetic lab fault hostile)", HOSTILE_TEXT, secret)
    return web.json_response(fault_state(engine))


async def hostile_body(engine, kind: str, params: dict) -> web.Response:
    mode = params.get("text") or "not-json"
    if mode not in HOSTILE_MODES:
        raise bad_request("text must be one of the hostile modes", modes=list(HOSTILE_MODES))
    if mode == "long-log":
        log.error("Database connection timeout %s (synthetic lab fault hostile-body long-log)", "z" * (1 << 20))
        return web.json_response(fault_state(engine, logged=1))
    engine.faults[kind] = {"mode": mode}
    log.warning("Lab fault injected: hostile-body %s", mode)
    return web.json_response(fault_state(engine))


# -- one-shot faults: they log or exit, and stand nowhere --------------------------------

async def error_burst(engine, kind: str, params: dict) -> web.Response:
    count = int(param(params, "count", 20, 1, 10_000))
    for i in range(count):
        log.error("Order routing failed: upstream timeout after 3000 ms (synthetic lab fault %d/%d)", i + 1, count)
    return web.json_response(fault_state(engine, logged=count))


async def known_error(engine, kind: str, params: dict) -> web.Response:
    text = params.get("text") or KNOWN_ERRORS[0]
    if text not in KNOWN_ERRORS:
        raise bad_request("text must be one of the knowledge base's errors", texts=list(KNOWN_ERRORS))
    log.error("%s (synthetic lab fault known-error)", text)
    return web.json_response(fault_state(engine, logged=1, text=text))


async def slow_log(engine, kind: str, params: dict) -> web.Response:
    count = int(param(params, "count", 5, 1, 10_000))
    for i in range(count):
        log.warning("slow operation: %s took %dms", SLOW_OPERATIONS[i % len(SLOW_OPERATIONS)], 2500 + 100 * i)
    return web.json_response(fault_state(engine, logged=count))


async def crash_loop(engine, kind: str, params: dict) -> web.Response:
    try:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        CRASH_MARKER.write_text(container_id() + "\n")  # only this container crashes at start
    except OSError as exc:
        return web.json_response(fault_state(engine, detail=f"cannot write the crash marker: {exc}"), status=500)
    engine.faults["crash-loop"] = {"marker": str(CRASH_MARKER)}
    log.critical("Lab fault crash-loop: exiting now; every start of this container fails while %s exists",
                 CRASH_MARKER)
    asyncio.get_running_loop().call_later(0.3, exit_now, engine, 1)
    return web.json_response(fault_state(engine), status=202)


async def exit_fault(engine, kind: str, params: dict) -> web.Response:
    code = int(param(params, "code", 1, 0, 255))
    log.critical("Lab fault exit: the process exits now with code %d", code)
    asyncio.get_running_loop().call_later(0.3, exit_now, engine, code)
    return web.json_response(fault_state(engine, exiting=code), status=202)


def exit_now(engine, code: int) -> None:
    stop_cpu(engine)
    sys.stdout.flush()
    os._exit(code)


async def oom(engine, kind: str, params: dict) -> web.Response:
    log.critical("Lab fault oom: allocating memory until the container's limit is hit")
    asyncio.get_running_loop().call_later(0.3, exhaust_memory)
    return web.json_response(fault_state(engine, allocating=True), status=202)


def exhaust_memory() -> None:
    """Blocks the event loop on purpose: written pages, fast, until the kernel's OOM killer ends us."""
    hoard = []
    while len(hoard) * OOM_CHUNK_MB < OOM_CAP_MB:
        hoard.append(bytearray(b"\x5a") * (OOM_CHUNK_MB << 20))
    hoard.clear()
    log.warning("Lab fault oom: %d MB allocated and not killed; is there no memory limit?", OOM_CAP_MB)


async def start_noisy_calculate(engine, kind: str, params: dict) -> dict:
    return {"count": int(param(params, "count", 9, 1, 1000))}


# Where each kind's effect lives when it only stands in engine.faults:
#   unhealthy, degraded: health_formats; idle-bus: backends (and health); trickle: health_formats via the
#   middleware; ws-stall: the WebSocket ticker; no-data, noisy-calculate: analytics' calculate.
FAULTS: dict[str, Fault] = {
    "unhealthy": Fault(standing(), nothing_to_undo),
    "degraded": Fault(standing(), nothing_to_undo),
    "slow": Fault(standing(start_slow), nothing_to_undo),
    "bus-down": Fault(standing(start_bus_off), nothing_to_undo),
    "bus-lie": Fault(standing(start_bus_off), nothing_to_undo),
    "idle-bus": Fault(standing(), nothing_to_undo),
    "error-burst": Fault(error_burst, nothing_to_undo),
    "known-error": Fault(known_error, nothing_to_undo),
    "slow-log": Fault(slow_log, nothing_to_undo),
    "leak": Fault(standing(start_leak), stop_leak),
    "cpu": Fault(standing(start_cpu), stop_cpu),
    "hang": Fault(standing(start_hang), release_hang),
    "crash-loop": Fault(crash_loop, nothing_to_undo),
    "exit": Fault(exit_fault, nothing_to_undo),
    "oom": Fault(oom, nothing_to_undo),
    "hostile": Fault(hostile, nothing_to_undo),
    "trickle": Fault(standing(), nothing_to_undo),
    "hostile-body": Fault(hostile_body, nothing_to_undo),
    "conn-churn": Fault(standing(start_churn), stop_churn),
    "ws-stall": Fault(standing(), nothing_to_undo),
    "no-data": Fault(standing(), nothing_to_undo),
    "noisy-calculate": Fault(standing(start_noisy_calculate), nothing_to_undo),
}
assert tuple(FAULTS) == FAULT_KINDS, "every fault kind needs one entry in FAULTS, in FAULT_KINDS' order"
