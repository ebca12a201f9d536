"""Inject and clear real faults in the running lab.

Process-level faults go to the engine's own control endpoint (`/_lab/faults`);
Docker-level ones go through the Docker API; data faults act on PostgreSQL,
Redis and the lab's host folders (lab/data_faults.py). Every injected fault is
remembered in lab/.state/faults.json, and `heal` undoes each one and waits
until the stack is healthy again.
"""
from __future__ import annotations

import time

import docker
import requests

from . import ENGINE_STATE_DIR, STATE_DIR, LabError
from . import data_faults as data
from .compose import compose
from .docker_access import client, compose_env, guard, lab_containers
# The kinds, the records and the port holder live below stack (which needs them for `down`); their names stay
# importable from here (lab.faults.KINDS, lab.faults.release_port_holders, ...).
from .fault_records import (DOCKER_FAULTS, ENGINE_FAULTS, HOST_FAULTS, KINDS, POSTGRES_FAULTS,  # noqa: F401
                            REDIS_FAULTS, REGISTRY, SERVER_FAULTS, WEBSOCKET_FAULTS, forget, forget_container_faults, injected,
                            remember)
from .ownership import owned_container
from .port_holder import HOLDER_MARK, hold_port, release_port_holders  # noqa: F401
from .server_freeze import freeze, thaw
from .stack import wait_healthy
from .topology import LabService, find, services

# What these leave behind lives in the container itself (its log, RestartCount,
# OOMKilled, ExitCode), so heal gives the service a fresh container.
# unhealthy and hang also leave 5xx answers in the engine's error counters.
# freeze: Docker's health log keeps the probes that timed out while the server was stopped, which log-known-errors
# rightly reports as health-check-timeout until five newer probes push them out.
RECREATE_ON_HEAL = ("error-burst", "known-error", "slow-log", "crash-loop", "exit", "oom", "unhealthy", "hang",
                    "hostile", "hostile-body", "trickle", "noisy-calculate", "bad-db-login", "freeze")
HOST = "host"
CONTROL_TIMEOUT_S = 5
RESTART_WAIT_S = 45


def control_url(svc: LabService, kind: str = "") -> str:
    return f"http://127.0.0.1:{svc.port}/_lab/faults" + (f"/{kind}" if kind else "")


# -- inject ----------------------------------------------------------------------------

def inject(kind: str, target: str, **params) -> str:
    """Inject one fault; returns a line saying what was done."""
    if kind not in KINDS:
        raise LabError(f"unknown fault {kind!r}; kinds: {', '.join(KINDS)}")
    docker_client = guard()
    if kind in HOST_FAULTS:
        if target != HOST:
            raise LabError(f"{kind} acts on the lab's host folders: use `python -m lab fault {kind} host`")
        return _host_fault(kind)
    svc = find(target)
    # The data faults reach Redis and PostgreSQL through their published ports: only the lab's own running
    # container may hold them, or a platform's server answering on that port would get the fault.
    if owned_container(docker_client, svc.container).status != "running" and kind not in DOCKER_FAULTS:
        raise LabError(f"{svc.container} is not running: `python -m lab heal` first")
    for kinds, service in ((POSTGRES_FAULTS, "postgres"), (REDIS_FAULTS, "redis"),
                           (WEBSOCKET_FAULTS, "websocket-engine")):
        if kind in kinds and svc.service != service:
            raise LabError(f"{kind} targets {service}, not {svc.service}")
    if kind in POSTGRES_FAULTS:
        said = {"slow-query": data.slow_query, "dead-tuples": data.dead_tuples,
                "held-lock": lambda: data.start_session("held-lock"),
                "long-query": lambda: data.start_session("long-query")}[kind]()
        remember(kind, svc.service)
        return said
    if kind in SERVER_FAULTS:
        remember(kind, svc.service, **freeze(owned_container(docker_client, svc.container), svc.service))
        return f"{svc.container}'s server process stopped (SIGSTOP): the container runs, its port takes " \
               "connections, nothing answers"
    if kind == "redis-fill":
        remember(kind, svc.service)
        return data.redis_fill()
    if kind == "redis-evict":
        r = data.redis_client()
        remember(kind, svc.service, policy=r.config_get("maxmemory-policy")["maxmemory-policy"])
        return data.redis_evict()[0]
    if kind == "ws-connections":
        count = params.get("count") or 760
        remember(kind, svc.service, count=count)
        return data.ws_connections(count)
    if kind in ENGINE_FAULTS:
        return _engine_fault(kind, svc, params)
    return _docker_fault(kind, svc)


def _host_fault(kind: str) -> str:
    if kind == "old-log":
        said, record = data.plant_old_logs(), {}
    else:
        said, record = data.set_backups_aside(plant_empty=kind == "empty-backup")
    remember(kind, HOST, **record)
    return said


def _engine_fault(kind: str, svc: LabService, params: dict) -> str:
    if svc.engine is None:
        raise LabError(f"{kind} is an engine fault; {svc.service} is not an engine (use stop, kill or pause)")
    body = {k: v for k, v in params.items() if v is not None}
    container = owned_container(client(), svc.container)
    restarts, since = container.attrs["RestartCount"], time.time() - 1
    try:
        reply = requests.post(control_url(svc, kind), json=body, timeout=CONTROL_TIMEOUT_S)
    except requests.RequestException as exc:
        raise LabError(f"{svc.container} control endpoint unreachable: {exc.__class__.__name__}") from exc
    if reply.status_code >= 400:
        raise LabError(f"{svc.container} refused {kind}: HTTP {reply.status_code} {reply.text[:200]}")
    remember(kind, svc.service, **body)
    if kind in ("exit", "oom"):
        state = _wait_restarted(container, restarts)
        events = ", ".join(_exit_events(container.name, since))
        return (f"{kind}: {svc.container} died ({events}) and its restart policy restarted it: "
                f"RestartCount {container.attrs['RestartCount']}, State.ExitCode {state['ExitCode']}, "
                f"State.OOMKilled {state['OOMKilled']}")
    return f"{kind} injected into {svc.container}"


def _exit_events(name: str, since: float) -> list[str]:
    """Docker's oom and die events for the container since `since`: where the exit code survives a restart."""
    seen = []
    for event in client().events(since=int(since), until=int(time.time()) + 1, decode=True,
                                 filters={"type": "container", "container": name, "event": ["oom", "die"]}):
        code = event["Actor"]["Attributes"].get("exitCode")
        seen.append(event["status"] + (f" exitCode={code}" if code is not None else ""))
    return seen


def _wait_restarted(container, restarts_before: int) -> dict:
    """Until the restart policy has brought the container back; returns State as Docker then shows it."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while True:
        container.reload()
        if container.attrs["RestartCount"] > restarts_before and container.status == "running":
            return container.attrs["State"]
        if time.monotonic() > deadline:
            raise LabError(f"{container.name} was not restarted within {RESTART_WAIT_S}s "
                           f"(status {container.status}, RestartCount {container.attrs['RestartCount']})")
        time.sleep(0.2)


def _docker_fault(kind: str, svc: LabService) -> str:
    container = owned_container(client(), svc.container)
    if kind == "stop":
        container.stop(timeout=5)
    elif kind == "kill":
        container.kill()
    elif kind == "pause":
        container.pause()
    elif kind == "remove":
        container.remove(force=True)  # volumes are named and survive; heal recreates the container
    elif kind == "restart":
        container.restart(timeout=5)
        _wait_healthy_one(container)
    elif kind == "bad-db-login":
        if svc.engine is None:
            raise LabError(f"bad-db-login recreates an engine with a wrong database password; {svc.service} is no engine")
        _recreate_with_wrong_password(svc)
    elif kind in ("port-taken", "port-impostor"):
        if svc.port is None:
            raise LabError(f"{svc.container} publishes no port")
        container.stop(timeout=5)
        hold_port(svc.port, answer="degraded" if kind == "port-impostor" else None)
    remember(kind, svc.service)
    return f"{kind} applied to {svc.container}"


WRONG_PASSWORD = "lab-wrong-password"  # no secret: the password PostgreSQL must refuse


def _recreate_with_wrong_password(svc: LabService) -> None:
    """The engine's container made again from the lab's Compose file with one setting wrong (its
    POSTGRES_PASSWORD), as a deployment with a bad secret starts it; heal recreates it without the change."""
    override = STATE_DIR / "bad-db-login.compose.yaml"
    override.write_text(f"services:\n  {svc.service}:\n    environment:\n      POSTGRES_PASSWORD: {WRONG_PASSWORD}\n")
    try:
        compose("up", "-d", "--force-recreate", "--no-deps", svc.service, env=compose_env(), capture=True,
                files=(override,))
    finally:
        override.unlink(missing_ok=True)
    container = owned_container(client(), svc.container)
    deadline = time.monotonic() + 30
    while container.status != "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        container.reload()
    if container.status != "running":
        raise LabError(f"{svc.container} did not start again with the wrong password (status {container.status})")


def _wait_healthy_one(container, timeout_s: float = 45) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status", "healthy") == "healthy":
            return
        time.sleep(0.3)
    raise LabError(f"{container.name} not healthy {timeout_s:.0f}s after the restart")


# -- heal ------------------------------------------------------------------------------

def heal(target: str | None = None) -> list[str]:
    """Clear faults (all, or one target's) and wait until the lab is healthy."""
    docker_client = guard()
    if target == HOST:
        records = [r for r in injected() if r["target"] == HOST]
        done = data.heal_host(records)
        forget(records)
        return done
    chosen = [find(target)] if target else services()
    names = {svc.service for svc in chosen}
    records = [r for r in injected() if target is None or r["target"] in names]
    stopped = {c.name for c in lab_containers() if c.status in ("exited", "created", "dead")}
    done = []
    recreate = {r["target"] for r in records if r["kind"] in RECREATE_ON_HEAL}
    for svc in chosen:
        if svc.port:
            release_port_holders(svc.port)
        marker = ENGINE_STATE_DIR / f"crash-{svc.engine}"
        if marker.exists():
            marker.unlink()
            recreate.add(svc.service)
            done.append(f"removed crash marker of {svc.container}")
        try:
            container = owned_container(docker_client, svc.container)
        except docker.errors.NotFound:
            continue
        for record in records:  # before waiting: a stopped server never turns healthy
            if record["kind"] in SERVER_FAULTS and record["target"] == svc.service:
                done += thaw(record)
        if container.status == "paused":
            container.unpause()
            done.append(f"unpaused {svc.container}")
        if svc.engine and container.status == "running" and svc.service not in recreate:
            _clear_engine_faults(svc, done)
    if recreate:
        # Before waiting: an engine still holding its fault (unhealthy, hang) would never turn healthy.
        ordered = sorted(recreate)
        compose("up", "-d", "--force-recreate", "--no-deps", *ordered, env=compose_env(), capture=True)
        done.append(f"recreated {', '.join(ordered)} (fresh log, restart count and exit state)")
    wait_healthy()
    done += [f"started {name}" for name in sorted(stopped)]
    # Data faults need their service up, which wait_healthy has just made sure of.
    kinds = {r["kind"] for r in records}
    # The holder is stopped by an exec into the backend; skipped when no holder was started and the engine
    # reports no client (that exec was a fifth of a heal with nothing to do).
    if (target is None or "websocket-engine" in names) and ("ws-connections" in kinds or data.ws_active() != 0):
        done += data.stop_ws_holder()
    if target is None or "postgres" in names:
        done += data.heal_postgres(reset_statements="slow-query" in kinds)
    if target is None or "redis" in names:
        redis_container = find("redis").container
        restarted = redis_container in stopped or "redis" in recreate or \
            any(r["kind"] in SERVER_FAULTS and r["target"] == "redis" for r in records)
        done += data.heal_redis(records, restarted)
    if target is None:
        done += data.heal_host([r for r in records if r["target"] == HOST])
    forget(records)
    return done


def _clear_engine_faults(svc: LabService, done: list[str]) -> None:
    try:
        reply = requests.delete(control_url(svc), timeout=CONTROL_TIMEOUT_S)
        cleared = reply.json().get("cleared") if reply.ok else None
        if cleared:
            done.append(f"cleared {', '.join(cleared)} on {svc.container}")
    except requests.RequestException:
        pass  # not answering yet (restarting): compose up below brings it back


def active_faults() -> dict[str, dict]:
    found = {}
    running = {c.name for c in lab_containers() if c.status == "running"}
    for svc in services():
        if svc.engine and svc.container in running:
            try:
                faults = requests.get(control_url(svc), timeout=CONTROL_TIMEOUT_S).json().get("faults", {})
            except (requests.RequestException, ValueError):
                faults = {"unreachable": {}}
            if faults:
                found[svc.container] = faults
    for record in injected():
        name = record["target"] if record["target"] == HOST else find(record["target"]).container
        found.setdefault(name, {}).setdefault(record["kind"], {k: v for k, v in record.items()
                                                               if k not in ("kind", "target")})
    return found
