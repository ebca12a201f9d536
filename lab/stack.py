"""Bring the lab up and down, and report its state."""
from __future__ import annotations

import datetime
import json
import os
import time

import docker
import yaml

from . import BACKUP_DIR, ENGINE_STATE_DIR, ENGINE_UID, LAB_DIR, LABEL, LABEL_VALUE, LOG_DIR, PROJECT, STATE_DIR, LabError
from .base_image import ensure_base_image, image_tag
from .compose import compose
from .data_faults import stop_sessions
# The Docker client, guard and Compose environment live below every module that acts on the lab; kept here
# under their old names (lab.stack.compose_env, ...) for the tests and tools that import them from here.
from .docker_access import PASSWORD_FILE, client, compose_env, endpoint, guard, lab_containers, lab_password  # noqa: F401
from .docker_engine import engine_answers, ensure_docker
from .fault_records import forget_container_faults
from .maintenance import after_up
from .port_holder import release_port_holders
from .processes import down as stop_process_engines
from .topology import SAFE_LOADER, find, services

UP_TIMEOUT_S = 180
# Data volumes and the image user that owns them (compose.yaml `user:`). A new
# volume is root-owned, and so is one written before the services ran as these users.
VOLUME_OWNERS = {"postgres-data": ("postgres", "700"), "redis-data": ("redis", "750")}
OWNERS_MARKER = STATE_DIR / "volume-owners.json"


def check_endpoint() -> str:
    """`python -m lab check`: the guard alone, starting nothing (no daemon answering means nothing to protect)."""
    if not engine_answers():
        return f"no Docker engine answers at {endpoint()}: nothing there the lab could touch"
    guard()
    return f"the Docker endpoint {endpoint()} holds nothing platform-like that the lab did not create"


def up(rebuild_image: bool = False) -> None:
    started = time.monotonic()
    ensure_docker()
    ensure_base_image(guard(), rebuild=rebuild_image)
    prepare_state_dirs()
    env = compose_env()
    ensure_volume_owners(env)
    print("[lab] starting the stack", flush=True)
    try:
        compose("up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), "--remove-orphans", env=env)
    except LabError as exc:
        # `--wait` gives up at once on a container Docker still marks unhealthy (left by an earlier lab or a
        # fault); polling gives it the time a start needs before the lab is called broken.
        print(f"[lab] {exc}; waiting for every service to be healthy", flush=True)
        wait_healthy()
    else:
        settle()
    seconds = time.monotonic() - started
    print(f"[lab] all services healthy in {seconds:.1f}s", flush=True)
    for line in after_up(seconds):
        print(f"[lab] {line}", flush=True)


def prepare_state_dirs() -> None:
    """The host directories the lab owns; the engines' one belongs to their uid."""
    for path in (STATE_DIR, LOG_DIR, BACKUP_DIR, ENGINE_STATE_DIR):
        path.mkdir(parents=True, exist_ok=True)
    stat = ENGINE_STATE_DIR.stat()
    if (stat.st_uid, stat.st_gid) != (ENGINE_UID, ENGINE_UID):
        try:
            os.chown(ENGINE_STATE_DIR, ENGINE_UID, ENGINE_UID)
        except PermissionError:  # not root: let any uid write there (sticky, like /tmp)
            ENGINE_STATE_DIR.chmod(0o1777)


def ensure_volume_owners(env: dict[str, str]) -> None:
    """Give each data volume to the user its service runs as.

    Cheap in the usual case: the owner of each volume's folder is compared with
    the uid remembered from the last chown (Docker runs on this machine; the lab
    starts it). Only a volume that is new, or was written by an older lab whose
    services ran as root, costs a `compose create` and a one-off chown container.
    """
    docker_client = client()
    names = {volume: f"{PROJECT}_{volume}" for volume in VOLUME_OWNERS}
    try:
        uids = json.loads(OWNERS_MARKER.read_text())
    except (OSError, ValueError):
        uids = {}

    def owned(volume: str) -> bool:
        try:
            mountpoint = docker_client.volumes.get(names[volume]).attrs["Mountpoint"]
            return os.stat(mountpoint).st_uid == uids.get(volume)
        except (docker.errors.NotFound, OSError):
            return False

    if all(owned(volume) for volume in VOLUME_OWNERS):
        return
    print("[lab] setting data volume ownership", flush=True)
    # Creates missing volumes (with compose's labels) and stops containers whose
    # configuration changed, so nothing writes while ownership changes.
    compose("create", "--remove-orphans", env=env, capture=True)
    script = " && ".join(f"chown -R {user}:{user} /v/{volume} && chmod {mode} /v/{volume} && "
                         f"echo {volume} $(id -u {user})" for volume, (user, mode) in VOLUME_OWNERS.items())
    out = docker_client.containers.run(
        image_tag(), ["sh", "-c", script], user="0", network_mode="none", remove=True,
        labels={LABEL: LABEL_VALUE},
        volumes={name: {"bind": f"/v/{volume}", "mode": "rw"} for volume, name in names.items()})
    uids = {volume: int(uid) for volume, uid in (line.split() for line in out.decode().splitlines())}
    OWNERS_MARKER.write_text(json.dumps(uids))


def down(volumes: bool = False) -> None:
    ensure_docker()
    guard()
    stop_process_engines()  # the lab's plain-process engines go with the stack they talk to
    release_port_holders()
    stop_sessions()
    args = ["down", "--remove-orphans", "--timeout", "5"] + (["--volumes"] if volumes else [])
    compose(*args, env=compose_env())
    forget_container_faults()


def redeploy(targets: list[str], wait: bool = True, start_delay_s: float = 0) -> str:
    """What a deploy does: `compose up -d --force-recreate` of the services (all when none are named), so each
    gets a new container; then, unless told not to, wait until every service is healthy and settled.

    `start_delay_s` makes the recreated engines take that long before they listen, as a real engine loading
    its state does (the next heal or `up` recreates them without it)."""
    guard()
    chosen = sorted({find(t).service for t in targets}) if targets else [svc.service for svc in services()]
    env = {**compose_env(), "NAUTILUS_LAB_START_DELAY_S": f"{start_delay_s:g}"}
    compose("up", "-d", "--force-recreate", "--no-deps", *chosen, env=env, capture=True)
    if wait:
        wait_healthy()
    return f"recreated {', '.join(chosen)}" + ("" if wait else " (not waiting for them to be healthy)")


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
    guard()
    prepare_state_dirs()
    env = compose_env()
    ensure_volume_owners(env)
    compose("up", "-d", "--quiet-pull", env=env, capture=True)
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [c.name for c in lab_containers()
                   if c.attrs["State"].get("Health", {}).get("Status", "healthy") != "healthy"
                   or c.status != "running"]
        if not pending:
            settle()
            return
        if time.monotonic() > deadline:
            raise LabError(f"not healthy after {timeout_s:.0f}s: {', '.join(sorted(pending))}")
        time.sleep(0.3)


PROCESS_START_MARGIN_S = 2.0


def settle_seconds() -> float:
    """The lab inventory's `min_uptime_s`: a container up for less is a fresh restart to the suite."""
    document = yaml.load((LAB_DIR / "inventory.yaml").read_text(), Loader=SAFE_LOADER) or {}
    return float((document.get("thresholds") or {}).get("min_uptime_s", 0))


def settle() -> None:
    """Wait until every lab container has run for `settle_seconds()`, so a healed lab is not a fresh restart."""
    # An engine counts its uptime from its own start, a moment after Docker's StartedAt (longer on a busy machine).
    wanted = settle_seconds() + PROCESS_START_MARGIN_S
    youngest = min((_up_for(c) for c in lab_containers() if c.status == "running"), default=wanted)
    if youngest < wanted:
        print(f"[lab] settling {wanted - youngest:.0f}s so no engine reads as freshly restarted", flush=True)
        time.sleep(wanted - youngest)
    wait_scraped()


def wait_scraped(timeout_s: float = 20) -> None:
    """Wait (bounded) until the lab's Prometheus has scraped every target since it or the engine started.

    A target not scraped yet reads "unknown" (or still "down" from before a restart): the suite's
    prometheus-targets-up would judge a lab that is merely fresh.
    """
    import requests
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            targets = requests.get("http://127.0.0.1:9090/api/v1/targets", timeout=3).json()["data"]["activeTargets"]
        except (requests.RequestException, ValueError, KeyError):
            return  # no Prometheus in this lab, or not answering: nothing to wait for
        if all(t.get("health") == "up" for t in targets):
            return
        time.sleep(1)


def _up_for(container) -> float:
    started = container.attrs["State"].get("StartedAt", "")
    head, _, frac = started.rstrip("Z").partition(".")
    try:
        since = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return 0.0
    return (datetime.datetime.now(datetime.timezone.utc) - since).total_seconds()


def require_running() -> None:
    if not lab_containers():
        raise LabError("the lab is not up: run `python -m lab up` first")
