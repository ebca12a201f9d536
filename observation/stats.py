"""Container resource usage read from `docker stats` samples, computed the way the `docker stats` command does.

The checks (through fixtures/resource_samples.py) and the remediation helpers
(diagnose-engine) share these rules, so both report the same figures.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .concurrent import in_parallel
from .errors import Unobservable, Unobserved

MIB = 2**20


def cpu_percent(stats: dict) -> float:
    """CPU % as `docker stats` computes it: 100 is one full core, so it may exceed 100 with several CPUs.

    >>> cpu_percent({"cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
    ...              "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000}})
    40.0
    """
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = _cpus(cpu)
    return round(100.0 * used / system * cpus, 1) if system > 0 and used >= 0 else 0.0


def _cpus(cpu: dict) -> int:
    """The CPUs a sample's CPU % is relative to: `online_cpus`, else one per `percpu_usage` counter (old daemons)."""
    return cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1


def memory_use(stats: dict) -> tuple[int, int] | None:
    """(bytes used without the inactive page cache, limit), as `docker stats` shows them; None when not sampled.

    Like the docker CLI: cgroup v1 reports `total_inactive_file`, v2 `inactive_file`; a cgroup v1 figure not below
    the usage is passed over for the other.

    >>> memory_use({"memory_stats": {"usage": 300, "limit": 1000, "stats": {"inactive_file": 100}}})
    (200, 1000)
    >>> memory_use({"memory_stats": {"usage": 300, "limit": 1000, "stats": {"total_inactive_file": 50,
    ...                                                                     "inactive_file": 10}}})
    (250, 1000)
    >>> memory_use({"memory_stats": {}}) is None
    True
    """
    memory = stats.get("memory_stats") or {}
    if not memory.get("limit") or "usage" not in memory:
        return None
    detail = memory.get("stats") or {}
    usage = memory["usage"]
    if "total_inactive_file" in detail and detail["total_inactive_file"] < usage:
        return usage - detail["total_inactive_file"], memory["limit"]
    cache = detail.get("inactive_file", 0)
    return usage - (cache if cache < usage else 0), memory["limit"]


def network_bytes(stats: dict) -> tuple[int, int]:
    """(received, sent) bytes over all the container's interfaces since it started.

    >>> network_bytes({"networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 5}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}}})
    (11, 7)
    """
    nets = (stats.get("networks") or {}).values()
    return sum(n.get("rx_bytes", 0) for n in nets), sum(n.get("tx_bytes", 0) for n in nets)


def block_io_bytes(stats: dict) -> tuple[int, int]:
    """(read, written) bytes of block IO since the container started (cgroup v1 `Read`, v2 `read`).

    >>> block_io_bytes({"blkio_stats": {"io_service_bytes_recursive": [
    ...     {"op": "Read", "value": 4096}, {"op": "Write", "value": 100}, {"op": "write", "value": 1},
    ...     {"op": "Total", "value": 4197}]}})
    (4096, 101)
    """
    entries = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    read = sum(e.get("value", 0) for e in entries if str(e.get("op", "")).lower() == "read")
    write = sum(e.get("value", 0) for e in entries if str(e.get("op", "")).lower() == "write")
    return read, write


@dataclass(frozen=True)
class Usage:
    """One container's usage in one `docker stats` sample."""

    cpu_pct: float
    online_cpus: int
    memory_used: int | None
    memory_limit: int | None
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    taken_at: float  # time.monotonic() when the sample arrived

    @classmethod
    def of(cls, stats: dict, taken_at: float = 0.0) -> Usage:
        """
        >>> u = Usage.of({"memory_stats": {"usage": 300 * MIB, "limit": 400 * MIB}, "cpu_stats": {"online_cpus": 2}})
        >>> u.memory_pct, u.memory_used_mb, u.cpu_pct
        (75.0, 300.0, 0.0)
        """
        memory = memory_use(stats)
        rx, tx = network_bytes(stats)
        read, write = block_io_bytes(stats)
        return cls(cpu_pct=cpu_percent(stats), online_cpus=_cpus(stats.get("cpu_stats") or {}),
                   memory_used=memory[0] if memory else None, memory_limit=memory[1] if memory else None,
                   net_rx=rx, net_tx=tx, block_read=read, block_write=write, taken_at=taken_at)

    @property
    def memory_pct(self) -> float | None:
        if self.memory_used is None or not self.memory_limit:
            return None
        return round(100.0 * self.memory_used / self.memory_limit, 1)

    @property
    def memory_used_mb(self) -> float | None:
        return None if self.memory_used is None else round(self.memory_used / MIB, 1)

    def evidence(self) -> dict:
        return {"cpu_percent": self.cpu_pct, "online_cpus": self.online_cpus,
                "memory_used_mib": self.memory_used_mb,
                "memory_limit_mib": None if self.memory_limit is None else round(self.memory_limit / MIB, 1),
                "memory_percent": self.memory_pct,
                "network_rx_mib": round(self.net_rx / MIB, 2), "network_tx_mib": round(self.net_tx / MIB, 2),
                "block_read_mib": round(self.block_read / MIB, 2), "block_write_mib": round(self.block_write / MIB, 2)}


def memory_level(pct: float, high: float, warning: float, critical: float) -> str:
    """The guide's words for a memory percentage.

    >>> [memory_level(p, 70, 80, 90) for p in (50, 75, 85, 95)]
    ['OK', 'HIGH', 'WARNING', 'CRITICAL']
    """
    return "CRITICAL" if pct > critical else "WARNING" if pct > warning else "HIGH" if pct > high else "OK"


def cpu_level(pct: float, moderate: float, critical: float) -> str:
    """
    >>> [cpu_level(p, 50, 80) for p in (10, 60, 90)]
    ['OK', 'MODERATE', 'HIGH']
    """
    return "HIGH" if pct > critical else "MODERATE" if pct > moderate else "OK"


def growth_mb_per_min(first: Usage, second: Usage) -> float | None:
    """Memory growth between two samples of one container, in MiB per minute; None without both readings.

    >>> a = Usage.of({"memory_stats": {"usage": 100 * MIB, "limit": 1}}, taken_at=10.0)
    >>> b = Usage.of({"memory_stats": {"usage": 110 * MIB, "limit": 1}}, taken_at=40.0)
    >>> growth_mb_per_min(a, b)
    20.0
    """
    if first.memory_used is None or second.memory_used is None or second.taken_at <= first.taken_at:
        return None
    return round((second.memory_used - first.memory_used) / MIB / ((second.taken_at - first.taken_at) / 60), 2)


def sample_usage(targets: Iterable, stats_of: Callable[[object], dict],
                 clock: Callable[[], float] = time.monotonic) -> list[Usage | Unobserved]:
    """One `docker stats` sample of every target, all at once; `stats_of(target)` raises Unobservable to say why not."""
    def one(target) -> Usage | Unobserved:
        try:
            stats = stats_of(target)
        except Unobservable as exc:
            return Unobserved(str(exc))
        usage = Usage.of(stats, clock())
        if usage.memory_limit is None:  # the daemon answers a stopped container with empty stats
            return Unobserved("docker stats returned no memory figures (the container stopped while sampled?)")
        return usage
    return in_parallel(one, targets)
