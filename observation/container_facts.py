"""Facts read from one container's `docker inspect`: what its exit code means, its user, its data mount, its log driver."""
from __future__ import annotations

import re

from .inventory import Inventory, Thresholds


def limits_of(container, inventory: Inventory) -> Thresholds:
    """The thresholds for a container target: its engine's overrides applied, else the inventory's."""
    engine = inventory.engines.get(container.engine) if getattr(container, "engine", None) else None
    return engine.limits(inventory.thresholds) if engine else inventory.thresholds


# What an exit code says; 137 is told apart by State.OOMKilled (see explain_exit).
EXIT_CODES = {
    125: "a Docker daemon error: the container could not be run (check `docker version` and the daemon's log)",
    126: "the command could not be executed (not executable, or a permission problem)",
    127: "the command was not found in the image",
    137: "killed by a signal (docker kill, a stop timeout, or the kernel)",
    139: "a segmentation fault (SIGSEGV) in the process",
    143: "terminated by SIGTERM (a stop: docker stop, compose stop or down)",
}


def explain_exit(code: int, oom_killed: bool) -> str:
    """The guide's reading of an exit code; an out-of-memory kill only when Docker says OOMKilled.

    >>> explain_exit(137, True)
    'killed by the kernel for running out of memory (OOMKilled): raise the memory limit or find the leak'
    >>> explain_exit(137, False)
    'killed by a signal (docker kill, a stop timeout, or the kernel)'
    >>> explain_exit(1, False)
    'an application error (the process exited with 1; its log says why)'
    >>> explain_exit(3, False)
    'an application error (the process exited with 3; its log says why)'
    """
    if code == 137 and oom_killed:
        return "killed by the kernel for running out of memory (OOMKilled): raise the memory limit or find the leak"
    return EXIT_CODES.get(code, f"an application error (the process exited with {code}; its log says why)")


def is_root(user: str | None) -> bool:
    """Whether a `Config.User` runs as root: unset, `root`, uid 0, with or without a group.

    >>> [is_root(u) for u in ("", None, "root", "0", "0:0", "root:1000", "10001:10001", "postgres", "1000:0")]
    [True, True, True, True, True, True, False, False, False]
    """
    uid = (user or "").split(":", 1)[0].strip()
    return uid in ("", "root", "0")


def data_mount(mounts: list[dict] | None, data_dir: str) -> dict | None:
    """The persistent mount (volume or bind) holding `data_dir`, at it or above it; None when the data is in the container.

    >>> data_mount([{"Type": "volume", "Name": "pg", "Destination": "/var/lib/postgresql/data"}],
    ...            "/var/lib/postgresql/data")["Name"]
    'pg'
    >>> data_mount([{"Type": "tmpfs", "Destination": "/data"}], "/data") is None
    True
    >>> data_mount([{"Type": "volume", "Destination": "/var/lib/postgresql"}], "/var/lib/postgresql/data")["Type"]
    'volume'
    >>> data_mount([{"Type": "volume", "Destination": "/data2"}], "/data") is None
    True
    """
    target = data_dir.rstrip("/") + "/"
    holding = [m for m in mounts or [] if m.get("Type") in ("volume", "bind")
               and target.startswith(str(m.get("Destination", "")).rstrip("/") + "/")]
    return max(holding, key=lambda m: len(m.get("Destination", "")), default=None)


# Drivers that hand the lines to another system, which rotates or ships them.
ROTATING_ELSEWHERE = ("journald", "syslog", "fluentd", "gelf", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)b?\s*$", re.IGNORECASE)


def size_mb(text: str) -> float | None:
    """A Docker log size (`10m`, `512k`, `1g`, bytes) in MiB; None when unreadable.

    >>> size_mb("10m"), size_mb("512k"), size_mb("1g"), size_mb("x")
    (10.0, 0.5, 1024.0, None)
    """
    found = _SIZE.match(str(text))
    if not found:
        return None
    scale = {"": 2**-20, "k": 2**-10, "m": 1, "g": 2**10}[found.group(2).lower()]
    return float(found.group(1)) * scale


def log_rotation(log_config: dict | None) -> tuple[bool, str]:
    """(rotates, how), from HostConfig.LogConfig.

    >>> log_rotation({"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}})
    (True, 'json-file rotates at 10m, keeping 3 files (at most 30 MiB)')
    >>> log_rotation({"Type": "json-file", "Config": {}})
    (False, 'json-file without max-size: the log grows until the disk is full')
    >>> log_rotation({"Type": "local", "Config": {}})
    (True, "local rotates at Docker's default 20m, keeping 5 files (at most 100 MiB)")
    >>> log_rotation({"Type": "journald", "Config": {}})
    (True, 'journald: lines go to journald, which rotates them')
    >>> log_rotation({"Type": "none", "Config": {}})[0]
    False
    """
    driver = (log_config or {}).get("Type") or "json-file"
    options = (log_config or {}).get("Config") or {}
    if driver in ("json-file", "local"):
        # The local driver rotates by default (20m x 5); json-file keeps everything unless told.
        default_size, default_files = ("20m", "5") if driver == "local" else (None, "1")
        size, files = options.get("max-size") or default_size, options.get("max-file") or default_files
        if not size:
            return False, f"{driver} without max-size: the log grows until the disk is full"
        cap = size_mb(size)
        bound = f" (at most {cap * int(files):g} MiB)" if cap is not None and str(files).isdigit() else ""
        said = size if options.get("max-size") else f"Docker's default {size}"
        return True, f"{driver} rotates at {said}, keeping {files} file{'s' if str(files) != '1' else ''}{bound}"
    if driver == "none":
        return False, "driver none: no log is kept, so neither docker logs nor the log checks can see anything"
    return True, f"{driver}: lines go to {driver}, which rotates them" if driver in ROTATING_ELSEWHERE else \
        f"{driver}: a logging plugin, rotation is its business"
