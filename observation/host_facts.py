"""Host facts (disk, memory, load) read through testinfra, and Docker's own disk figures; free of pytest.

The host is any object with testinfra's `check_output(cmd, *args)` and
`file(path).content_string`, so the same code reads this machine or an ssh host.
Parsing is separate from reading, so the maths is tested on recorded text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .concurrent import in_parallel
from .errors import Unobservable, Unobserved, describe

GIB = 1024 ** 3


@dataclass(frozen=True)
class DiskUsage:
    path: str
    mount: str
    size_kb: int
    used_kb: int
    avail_kb: int

    @property
    def used_pct(self) -> float:
        """Used share of what ordinary users can have, as df's Use% (reserved blocks do not count as free)."""
        usable = self.used_kb + self.avail_kb
        return round(100 * self.used_kb / usable, 1) if usable else 0.0


def parse_df(path: str, text: str) -> DiskUsage:
    """`df -P -k PATH` output -> DiskUsage.

    >>> out = "Filesystem 1024-blocks Used Available Capacity Mounted on\\n/dev/vda 263174148 23580000 79000000 23% /\\n"
    >>> u = parse_df("/", out); (u.mount, u.used_pct)
    ('/', 23.0)
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError(f"df printed no filesystem line for {path}: {text.strip()[:200]!r}")
    parts = lines[-1].split()
    if len(parts) < 6:
        raise ValueError(f"df line for {path} has {len(parts)} fields: {lines[-1]!r}")
    # The mount point is the last column and may contain spaces.
    size_kb, used_kb, avail_kb = (int(p) for p in parts[1:4])
    return DiskUsage(path, " ".join(parts[5:]), size_kb, used_kb, avail_kb)


@dataclass(frozen=True)
class Memory:
    total_kb: int
    available_kb: int

    @property
    def available_pct(self) -> float:
        return round(100 * self.available_kb / self.total_kb, 1) if self.total_kb else 0.0


def parse_meminfo(text: str) -> Memory:
    """/proc/meminfo -> Memory (MemAvailable is the kernel's estimate of what can be had without swapping).

    >>> parse_meminfo("MemTotal: 1000 kB\\nMemFree: 50 kB\\nMemAvailable: 250 kB\\n").available_pct
    25.0
    """
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if rest.split():
            values[key.strip()] = int(rest.split()[0])
    if "MemTotal" not in values or "MemAvailable" not in values:
        raise ValueError("/proc/meminfo has no MemTotal or MemAvailable (kernel older than 3.14?)")
    return Memory(values["MemTotal"], values["MemAvailable"])


@dataclass(frozen=True)
class Load:
    one: float
    five: float
    fifteen: float
    cpus: int

    @property
    def per_cpu(self) -> float:
        # The 5-minute figure: a 1-minute spike (a backup, a build, a test run) is not a host in trouble.
        return round(self.five / self.cpus, 2)


def parse_load(loadavg: str, cpus: str) -> Load:
    """/proc/loadavg and `getconf _NPROCESSORS_ONLN` -> Load.

    >>> parse_load("3.00 1.50 0.75 2/483 17740\\n", "2\\n").per_cpu
    0.75
    """
    one, five, fifteen = (float(v) for v in loadavg.split()[:3])
    count = int(cpus.strip())
    if count < 1:
        raise ValueError(f"CPU count {count}")
    return Load(one, five, fifteen, count)


@dataclass(frozen=True)
class Reclaimable:
    """What `docker system df` says could be freed, without touching volumes (they hold data)."""

    images: int
    containers: int
    build_cache: int
    volumes_not_counted: int  # shown, never suggested for pruning

    @property
    def total(self) -> int:
        return self.images + self.containers + self.build_cache

    def as_gb(self) -> dict[str, float]:
        return {k: round(v / GIB, 2) for k, v in (("images", self.images), ("stopped_containers", self.containers),
                                                   ("build_cache", self.build_cache), ("total", self.total))}


_ACTIVE = ("running", "paused", "restarting")


def reclaimable(df: dict) -> Reclaimable:
    """Reclaimable bytes as the docker CLI computes them for `docker system df`.

    Images: all layers minus those of images some container uses; containers:
    writable layers of containers that are not running; build cache: entries
    neither in use nor shared.

    >>> df = {"LayersSize": 1000, "Images": [{"Containers": 1, "Size": 600, "SharedSize": 0},
    ...                                       {"Containers": 0, "Size": 400, "SharedSize": 0}],
    ...       "Containers": [{"State": "exited", "SizeRw": 50}, {"State": "running", "SizeRw": 70}],
    ...       "BuildCache": [{"Size": 30, "InUse": False, "Shared": False}, {"Size": 9, "InUse": True}],
    ...       "Volumes": [{"UsageData": {"Size": 500, "RefCount": 0}}]}
    >>> r = reclaimable(df); (r.images, r.containers, r.build_cache, r.volumes_not_counted, r.total)
    (400, 50, 30, 500, 480)
    """
    used = 0
    for image in df.get("Images") or []:
        size, shared = image.get("Size", image.get("VirtualSize", -1)), image.get("SharedSize", 0)
        if image.get("Containers", 0) and size != -1 and shared != -1:
            used += size - shared
    layers = df.get("LayersSize") or 0
    containers = sum(c.get("SizeRw") or 0 for c in df.get("Containers") or [] if c.get("State") not in _ACTIVE)
    cache = sum(b.get("Size") or 0 for b in df.get("BuildCache") or [] if not b.get("InUse") and not b.get("Shared"))
    volumes = sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in df.get("Volumes") or []
                  if (v.get("UsageData") or {}).get("RefCount", 1) == 0)
    return Reclaimable(max(layers - used, 0), containers, cache, volumes)


@dataclass
class HostFacts:
    """One host's sample; a field that could not be read is an `Unobserved` saying why."""

    name: str
    disk_root: DiskUsage | Unobserved
    disk_docker_root: DiskUsage | Unobserved
    memory: Memory | Unobserved
    load: Load | Unobserved
    docker_info: dict | Unobserved


def _read(what: str, fn) -> Any:
    """fn() or Unobserved naming what could not be read."""
    try:
        return fn()
    except Unobservable as exc:
        return Unobserved(str(exc))
    except Exception as exc:  # testinfra raises AssertionError on a failed command, parsers ValueError
        return Unobserved(f"cannot read {what}: {describe(exc)}")


def disk_of(host, path: str) -> DiskUsage:
    return parse_df(path, host.check_output("df -P -k %s", path))


def sample_host(name: str, host, docker) -> HostFacts:
    """Everything this module judges about one host, read concurrently.

    `host`: a testinfra host; `docker`: an observation.docker_api.Docker, or an Unobserved when its daemon is down.
    """
    info = docker if isinstance(docker, Unobserved) else _read("docker info", docker.info)
    root_dir = info.get("DockerRootDir") if isinstance(info, dict) else None
    jobs = {
        "disk_root": lambda: _read("disk usage of /", lambda: disk_of(host, "/")),
        "disk_docker_root": lambda: (_read(f"disk usage of {root_dir}", lambda: disk_of(host, root_dir)) if root_dir
                                     else Unobserved(f"Docker's data root is unknown ({getattr(info, 'reason', 'no DockerRootDir in docker info')})")),
        "memory": lambda: _read("/proc/meminfo", lambda: parse_meminfo(host.file("/proc/meminfo").content_string)),
        "load": lambda: _read("the load average", lambda: parse_load(host.file("/proc/loadavg").content_string,
                                                                     host.check_output("getconf _NPROCESSORS_ONLN"))),
    }
    values = dict(zip(jobs, in_parallel(lambda job: job(), jobs.values())))
    return HostFacts(name, docker_info=info, **values)


def docker_disk_usage(docker) -> dict | Unobserved:
    """`docker system df` (the daemon walks every layer: taken once, only when a check needs it)."""
    return docker if isinstance(docker, Unobserved) else _read("docker system df", docker.disk_usage)
