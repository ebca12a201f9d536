"""Which Docker networks a container is on, read from its `docker inspect`; and where isolate-engine leaves its marker.

One reading for the check that judges a container's network (checks/test_containers.py) and the helpers that
take a container off its networks and put it back (remediation/procedures.py, remediation/networks.py).
"""
from __future__ import annotations

from pathlib import Path

from .paths import OUT_DIR

ISOLATION_DIR = OUT_DIR / "isolation"  # isolate-engine's markers, one per engine, until restore-engine removes it
UNLEAVABLE = ("host", "none")  # Docker's own modes, not networks a container joins or leaves


def networks_of(attrs: dict) -> dict[str, dict]:
    """The networks a container is on, with what reconnecting needs (aliases, fixed addresses, links).

    >>> networks_of({"Id": "f95d94e65a67aa", "NetworkSettings": {"Networks": {"n": {"Aliases": ["x", "f95d94e65a67"]},
    ...              "host": {}}}})
    {'n': {'aliases': ['x'], 'ipv4_address': None, 'ipv6_address': None, 'links': None}}
    """
    found = {}
    for name, net in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
        if name in UNLEAVABLE:
            continue
        ipam = net.get("IPAMConfig") or {}
        # Docker adds the short container id as an alias by itself; it is not given back when reconnecting.
        found[name] = {"aliases": [a for a in net.get("Aliases") or [] if not (attrs.get("Id") or "").startswith(a)],
                       "ipv4_address": ipam.get("IPv4Address") or None, "ipv6_address": ipam.get("IPv6Address") or None,
                       "links": net.get("Links") or None}
    return found


def network_names(attrs: dict) -> list[str]:
    """Every network mode and network the container is on, Docker's own modes included (`host`, `none`).

    >>> network_names({"NetworkSettings": {"Networks": {"b": {}, "a": {}}}}), network_names({})
    (['a', 'b'], [])
    """
    return sorted((attrs.get("NetworkSettings") or {}).get("Networks") or {})


def compose_service(attrs: dict) -> str | None:
    """The Compose service a container was made for (its label): the name other containers reach it by.

    >>> compose_service({"Config": {"Labels": {"com.docker.compose.service": "risk-engine"}}}), compose_service({})
    ('risk-engine', None)
    """
    return ((attrs.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.service") or None


def isolation_marker(engine: str, folder: Path | None = None) -> Path:
    """Where isolate-engine writes the marker of `engine` (restore-engine removes it)."""
    return (folder or ISOLATION_DIR) / f"{engine}.json"
