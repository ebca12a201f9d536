"""Inject and clear real faults in the running lab.

Process-level faults go to the engine's own control endpoint (`/_lab/faults`);
Docker-level ones go through the Docker API. `heal` undoes all of them and
waits until the stack is healthy again.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import requests

from . import ENGINE_STATE_DIR, LAB_DIR, STATE_DIR, LabError
from .stack import client, lab_containers, wait_healthy
from .topology import LabService, find, services

ENGINE_FAULTS = ("unhealthy", "slow", "bus-down", "bus-lie", "error-burst", "leak", "cpu", "hang", "crash-loop")
DOCKER_FAULTS = ("stop", "kill", "pause", "remove", "port-taken")
KINDS = ENGINE_FAULTS + DOCKER_FAULTS
HOLDER_MARK = "lab.port_holder"
CONTROL_TIMEOUT_S = 5


def control_url(svc: LabService, kind: str = "") -> str:
    return f"http://127.0.0.1:{svc.port}/_lab/faults" + (f"/{kind}" if kind else "")


def inject(kind: str, target: str, **params) -> str:
    """Inject one fault; returns a line saying what was done."""
    svc = find(target)
    if kind not in KINDS:
        raise LabError(f"unknown fault {kind!r}; kinds: {', '.join(KINDS)}")
    if kind in ENGINE_FAULTS:
        if svc.engine is None:
            raise LabError(f"{kind} is an engine fault; {svc.service} is not an engine (use stop, kill or pause)")
        body = {k: v for k, v in params.items() if v is not None}
        try:
            reply = requests.post(control_url(svc, kind), json=body, timeout=CONTROL_TIMEOUT_S)
        except requests.RequestException as exc:
            raise LabError(f"{svc.container} control endpoint unreachable: {exc.__class__.__name__}") from exc
        if reply.status_code >= 400:
            raise LabError(f"{svc.container} refused {kind}: HTTP {reply.status_code} {reply.text[:200]}")
        return f"{kind} injected into {svc.container}"
    container = client().containers.get(svc.container)
    if kind == "stop":
        container.stop(timeout=5)
    elif kind == "kill":
        container.kill()
    elif kind == "pause":
        container.pause()
    elif kind == "remove":
        container.remove(force=True)  # volumes are named and survive; heal recreates the container
    elif kind == "port-taken":
        if svc.port is None:
            raise LabError(f"{svc.container} publishes no port")
        container.stop(timeout=5)
        hold_port(svc.port)
    return f"{kind} applied to {svc.container}"


def hold_port(port: int) -> int:
    """Start a lab-owned process listening on 127.0.0.1:port; returns its pid."""
    proc = subprocess.Popen([sys.executable, "-m", HOLDER_MARK, str(port)], start_new_session=True,
                            cwd=LAB_DIR.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / f"port-holder-{port}.pid").write_text(str(proc.pid))
    time.sleep(0.3)
    if proc.poll() is not None:
        raise LabError(f"could not hold port {port}: something else already listens there")
    return proc.pid


def release_port_holders(port: int | None = None) -> None:
    # Only processes we started and marked are ever signalled.
    for pid_file in STATE_DIR.glob(f"port-holder-{port or '*'}.pid"):
        pid = int(pid_file.read_text().strip() or 0)
        if pid and HOLDER_MARK in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)
        pid_file.unlink()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def heal(target: str | None = None) -> list[str]:
    """Clear faults (all, or one target's) and wait until the lab is healthy."""
    chosen = [find(target)] if target else services()
    stopped = {c.name for c in lab_containers() if c.status in ("exited", "created", "dead")}
    done = []
    for svc in chosen:
        if svc.port:
            release_port_holders(svc.port)
        marker = ENGINE_STATE_DIR / f"crash-{svc.engine}"
        crashed = marker.exists()
        if crashed:
            marker.unlink()
        try:
            container = client().containers.get(svc.container)
        except docker.errors.NotFound:
            continue
        if container.status == "paused":
            container.unpause()
            done.append(f"unpaused {svc.container}")
        if crashed:
            container.restart(timeout=5)
            done.append(f"removed crash marker and restarted {svc.container}")
        elif svc.engine and container.status == "running":
            _clear_engine_faults(svc, done)
    wait_healthy()
    return done + [f"started {name}" for name in sorted(stopped)]


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
    return found
