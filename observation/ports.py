"""TCP probes of the platform's ports, all at once."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from .concurrent import in_parallel
from .errors import short_reason
from .targets import PortTarget


@dataclass
class PortProbe:
    open: bool
    elapsed_ms: float
    error: str | None = None


def probe_port(address: str, port: int, timeout_s: float) -> PortProbe:
    started = time.perf_counter()
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            pass
    except OSError as exc:
        return PortProbe(False, round((time.perf_counter() - started) * 1000, 1), short_reason(exc))
    return PortProbe(True, round((time.perf_counter() - started) * 1000, 1))


def probe_ports(targets: list[PortTarget], timeout_s: float) -> dict[tuple[str, int], PortProbe]:
    """A TCP connect to every target at the same time; keyed by (host, port)."""
    probes = in_parallel(lambda t: probe_port(t.address, t.port, timeout_s), targets)
    return {(t.host, t.port): p for t, p in zip(targets, probes)}
