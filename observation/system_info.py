"""The guide's system information (hostname, OS, kernel, Docker and Compose versions, Docker networks), read from
what a run has already sampled: nothing to judge, shown where a report says what was checked."""
from __future__ import annotations

from collections.abc import Iterable

NOT_READ = "not read in this run"


def describe_system(docker_info: dict | None, platform_containers: Iterable[dict]) -> tuple[tuple[str, str], ...]:
    """(label, value) rows from `docker info` of the platform's host and `docker inspect` of its containers.

    Compose's version is the one that created the containers (their com.docker.compose.version label), which is
    what the deployment runs, whatever Compose this machine may have.

    >>> describe_system({"Name": "trade-1", "OperatingSystem": "Debian GNU/Linux 12", "KernelVersion": "6.1.0",
    ...                  "ServerVersion": "26.1.5"},
    ...                 [{"Config": {"Labels": {"com.docker.compose.version": "2.30.3"}},
    ...                   "NetworkSettings": {"Networks": {"nautilus_default": {}}}}])
    (('Hostname', 'trade-1'), ('OS', 'Debian GNU/Linux 12'), ('Kernel', '6.1.0'), ('Docker', '26.1.5'), ('Compose', '2.30.3'), ('Docker networks', 'nautilus_default'))
    >>> describe_system(None, [])[0]
    ('Hostname', 'not read in this run')
    """
    info = docker_info or {}
    containers = list(platform_containers)
    composes = sorted({((c.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.version") or ""
                       for c in containers} - {""})
    networks = sorted({name for c in containers for name in ((c.get("NetworkSettings") or {}).get("Networks") or {})})
    rows = {
        "Hostname": info.get("Name"),
        "OS": info.get("OperatingSystem"),
        "Kernel": info.get("KernelVersion"),
        "Docker": info.get("ServerVersion"),
        # Several versions mean containers created by different Compose releases: each is named.
        "Compose": ", ".join(composes) if composes else ("none: not created by Compose" if containers else None),
        "Docker networks": ", ".join(networks) if networks else None,
    }
    return tuple((label, value or NOT_READ) for label, value in rows.items())
