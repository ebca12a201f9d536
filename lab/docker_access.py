"""How the lab reaches Docker and Compose: the client, the guard that refuses an endpoint holding the platform,
the lab's own containers, and the environment Compose runs with (image tag, PostgreSQL password).

Below every module that acts on the lab (stack, faults, data_faults, maintenance, processes, scale, compose):
it imports only the lab's constants, base_image and ownership, so they can all import it at their top.
"""
from __future__ import annotations

import os
import secrets

import docker

from . import LABEL, LABEL_VALUE, STATE_DIR
from .base_image import image_tag
from .ownership import refuse_foreign

PASSWORD_FILE = STATE_DIR / "postgres-password"


def compose_env() -> dict[str, str]:
    """The environment compose needs: the image tag and the PostgreSQL password.

    The password comes from NAUTILUS_POSTGRES_PASSWORD, else from a file made
    once with a random one, which the suite reads via NAUTILUS_POSTGRES_PASSWORD_FILE.
    """
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
    # from_env reads DOCKER_HOST and its TLS variables as observation.docker_endpoint does: the suite's rule.
    return docker.from_env(timeout=30)


def endpoint() -> str:
    """The daemon the lab acts on, in words: the suite's one rule, with no inventory url (DOCKER_HOST, else
    the local socket)."""
    from observation.docker_endpoint import docker_endpoint
    return docker_endpoint(None, os.environ).describe()


def guard() -> docker.DockerClient:
    """The Docker client, once the endpoint is known to hold nothing platform-like the lab did not create."""
    docker_client = client()
    refuse_foreign(docker_client, endpoint())
    return docker_client


def lab_containers() -> list:
    """The containers the lab created (its label), and no others; one removed between the listing and its inspect
    (another run's teardown) is gone, not an error."""
    return client().containers.list(all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"}, ignore_removed=True)
