"""Make sure a Docker engine answers, installing and starting one where we may.

CI and fresh development machines start with only the docker client. As root on
Debian we install docker.io and start dockerd in the background; anywhere else
we say what is missing instead of guessing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker

from . import LabError

DOCKERD_LOG = Path("/var/log/nautilus-lab-dockerd.log")
PID_FILE = Path("/var/run/docker.pid")


def engine_answers(timeout: float = 5) -> bool:
    try:
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def ensure_docker(wait_s: float = 60) -> None:
    """Return once `docker info` would answer, or raise LabError saying why not."""
    if engine_answers():
        return
    if os.environ.get("DOCKER_HOST"):
        raise LabError(f"no Docker engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}: "
                       "start it there, or unset DOCKER_HOST to use a local one")
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise LabError("no Docker engine answers: install Docker (docker.io or Docker Engine) "
                       "and start it, or run `python -m lab up` as root on Debian to have it done")
    if shutil.which("dockerd") is None:
        _install_docker_io()
    _start_dockerd()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if engine_answers(timeout=2):
            return
        time.sleep(1)
    raise LabError(f"dockerd did not answer within {wait_s:.0f}s: see {DOCKERD_LOG}")


def _install_docker_io() -> None:
    print("[lab] installing docker.io with apt-get (one time)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                 "docker.io", "iptables", "ca-certificates"]):
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise LabError(f"`{' '.join(cmd)}` failed: {last}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clear_stale_pid_file() -> None:
    # A dockerd killed with its session leaves its pid file behind, and a new
    # dockerd refuses to start while the file names a pid (even a dead one).
    try:
        pid = int(PID_FILE.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        pid = 0
    if PID_FILE.exists() and not (pid and _pid_alive(pid)):
        PID_FILE.unlink()
    stale_containerd = Path("/var/run/docker/containerd/containerd.pid")
    try:
        cpid = int(stale_containerd.read_text().strip() or 0)
        if not _pid_alive(cpid):
            stale_containerd.unlink()
    except (FileNotFoundError, ValueError):
        pass


def _start_dockerd() -> None:
    _clear_stale_pid_file()
    if PID_FILE.exists():
        return  # a dockerd is alive but not answering yet; wait for it
    print(f"[lab] starting dockerd in the background (log: {DOCKERD_LOG})", flush=True)
    log = open(DOCKERD_LOG, "ab")
    subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)
