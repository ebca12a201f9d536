"""Bring the lab up and down, and report its state."""
from __future__ import annotations

import os
import secrets
import time

import docker

from . import PROJECT, STATE_DIR, LabError
from .base_image import ensure_base_image
from .compose import compose
from .docker_engine import ensure_docker

PASSWORD_FILE = STATE_DIR / "postgres-password"
UP_TIMEOUT_S = 180


def compose_env() -> dict[str, str]:
    """The environment compose needs: the image tag and the PostgreSQL password.

    The password comes from NAUTILUS_POSTGRES_PASSWORD, else from a file made
    once with a random one, which the suite reads via NAUTILUS_POSTGRES_PASSWORD_FILE.
    """
    from .base_image import image_tag
    env = dict(os.environ)
    env["NAUTILUS_LAB_IMAGE"] = image_tag()
    if not env.get("NAUTILUS_POSTGRES_PASSWORD"):
        env["NAUTILUS_POSTGRES_PASSWORD"] = lab_password()
    return env


def lab_password() -> str:
    STATE_DIR.mkdir(exist_ok=True)
    if not PASSWORD_FILE.exists():
        PASSWORD_FILE.touch(mode=0o600)
        PASSWORD_FILE.write_text(secrets.token_hex(16))
    return PASSWORD_FILE.read_text().strip()


def client() -> docker.DockerClient:
    return docker.from_env(timeout=30)


def up(rebuild_image: bool = False) -> None:
    started = time.monotonic()
    ensure_docker()
    ensure_base_image(client(), rebuild=rebuild_image)
    STATE_DIR.mkdir(exist_ok=True)
    print("[lab] starting the stack", flush=True)
    compose("up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), "--remove-orphans",
            env=compose_env())
    print(f"[lab] all services healthy in {time.monotonic() - started:.1f}s", flush=True)


def down(volumes: bool = False) -> None:
    from .faults import release_port_holders
    release_port_holders()
    ensure_docker()
    args = ["down", "--remove-orphans", "--timeout", "5"] + (["--volumes"] if volumes else [])
    compose(*args, env=compose_env())


def lab_containers() -> list:
    return client().containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})


def status_lines() -> list[str]:
    lines = []
    for c in sorted(lab_containers(), key=lambda c: c.name):
        state = c.attrs["State"]
        health = state.get("Health", {}).get("Status", "-")
        lines.append(f"{c.name:28} {state['Status']:10} health={health:10} restarts={c.attrs.get('RestartCount', 0)}")
    return lines


def wait_healthy(timeout_s: float = 90) -> None:
    """Bring every service back (compose up -d) and wait until Docker calls all of them healthy.

    `compose up --wait` gives up at once on a container still marked unhealthy
    from a fault just cleared; Docker needs one good probe to flip it back.
    """
    compose("up", "-d", "--quiet-pull", env=compose_env(), capture=True)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [c.name for c in lab_containers()
                   if c.attrs["State"].get("Health", {}).get("Status", "healthy") != "healthy"
                   or c.status != "running"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise LabError(f"not healthy after {timeout_s:.0f}s: {', '.join(sorted(pending))}")
        time.sleep(1)


def require_running() -> None:
    if not lab_containers():
        raise LabError("the lab is not up: run `python -m lab up` first")
