"""The lab acts only on what it created.

Every container, network and volume the lab makes carries `LABEL`. Before any
step that changes something (`up`, `heal`, `fault`, `down`, a backup, the lab
tests), `refuse_foreign` looks at the Docker endpoint for objects that look
like the platform's and lack that label: a container with a lab or guide name,
anything of the lab's or the platform's likely Compose project, a volume or
network named like the lab's. One is enough to refuse, naming them: a host
that runs the real platform must never be touched by the lab.

Docker names are global to a daemon and the lab publishes the platform's ports,
so the lab cannot run beside the platform on one daemon under other names:
the way out is another Docker host (a machine or VM without the platform).
"""
from __future__ import annotations

from dataclasses import dataclass

import docker

from . import LABEL, LABEL_VALUE, PLATFORM_PROJECT, PROJECT, LabError
from .topology import compose_document, services

# The guide's container names that the lab does not run: a platform container by any of them is not ours either.
GUIDE_ONLY_CONTAINERS = ("nautilus-grafana",)


class NotOurs(LabError):
    """Objects that look like the platform's exist without the lab's label: the lab refuses to act."""


@dataclass(frozen=True)
class Foreign:
    kind: str  # container, volume, network
    name: str
    why: str

    def line(self) -> str:
        return f"{self.kind} {self.name} ({self.why})"


def owned(labels: dict | None) -> bool:
    return (labels or {}).get(LABEL) == LABEL_VALUE


def _project_names(document: dict, section: str) -> set[str]:
    """`<project>_<key>` for the lab's own project and the platform's likely one (its directory name)."""
    keys = set(document.get(section) or {})
    return {f"{project}_{key}" for project in (PROJECT, PLATFORM_PROJECT) for key in keys}


def _why(name: str, labels: dict, names: set[str]) -> str | None:
    project = labels.get("com.docker.compose.project")
    if project in (PROJECT, PLATFORM_PROJECT):
        return f"of Compose project {project!r}"
    if name in names:
        return "named like the lab's"
    return None


def foreign_objects(client: docker.DockerClient) -> list[Foreign]:
    """Containers, volumes and networks that look like the platform's or the lab's but lack the lab's label."""
    document, api = compose_document(), client.api
    container_names = {svc.container for svc in services()} | set(GUIDE_ONLY_CONTAINERS)
    listed = {
        "container": [((c.get("Names") or ["/?"])[0].lstrip("/"), c.get("Labels")) for c in api.containers(all=True)],
        "volume": [(v["Name"], v.get("Labels")) for v in api.volumes().get("Volumes") or []],
        "network": [(n["Name"], n.get("Labels")) for n in api.networks()],
    }
    names = {"container": container_names, "volume": _project_names(document, "volumes"),
             "network": _project_names(document, "networks")}
    found = []
    for kind, items in listed.items():
        for name, labels in items:
            why = None if owned(labels) else _why(name, labels or {}, names[kind])
            if why:
                found.append(Foreign(kind, name, why))
    return found


def refuse_foreign(client: docker.DockerClient, endpoint: str) -> None:
    """Raise NotOurs, in one line, when the endpoint holds platform-looking objects the lab did not create."""
    found = foreign_objects(client)
    if not found:
        return
    shown = "; ".join(f.line() for f in found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")
    raise NotOurs(f"refusing to act: the Docker endpoint {endpoint} holds objects the lab did not create "
                  f"(no {LABEL} label): {shown}. This looks like a host running the platform; the lab is for machines "
                  "without it: run the lab on another Docker host (another machine or VM, or DOCKER_HOST pointing "
                  "at another daemon) and nothing here is touched")


def owned_container(client: docker.DockerClient, name: str):
    """The lab's container called `name`; refused (NotOurs) when a container of that name is not the lab's."""
    container = client.containers.get(name)
    if not owned(container.labels):
        raise NotOurs(f"refusing to act on container {name}: it has no {LABEL} label, so the lab did not create it")
    return container
