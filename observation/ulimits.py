"""A container's resource limits (ulimits) as its process has them: the container's own (HostConfig.Ulimits), else
what the daemon's default-ulimits gave it, read from its main process's /proc/<pid>/limits on the host (the API
never shows the daemon's defaults). -1 is unlimited, as Docker writes it.
"""
from __future__ import annotations

from .errors import Unobservable, describe

UNLIMITED = -1
# The names Docker and the guide's daemon.json use -> the row of /proc/<pid>/limits.
PROC_ROWS = {"nofile": "Max open files", "memlock": "Max locked memory"}


def parse_proc_limits(text: str) -> dict[str, int]:
    """Soft limits by Docker's name from /proc/<pid>/limits; "unlimited" is -1.

    >>> parse_proc_limits("Limit                     Soft Limit           Hard Limit           Units\\n"
    ...                   "Max open files            1024                 524288               files\\n"
    ...                   "Max locked memory         unlimited            unlimited            bytes\\n")
    {'nofile': 1024, 'memlock': -1}
    """
    found = {}
    for line in text.splitlines():
        for name, row in PROC_ROWS.items():
            if line.startswith(row):
                soft = line[len(row):].split()[0]
                found[name] = UNLIMITED if soft == "unlimited" else int(soft)
    return found


def configured(attrs: dict) -> dict[str, int]:
    """The container's own soft limits, from HostConfig.Ulimits.

    >>> configured({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 4096, "Hard": 8192}]}})
    {'nofile': 4096}
    """
    return {u["Name"]: int(u["Soft"]) for u in (attrs.get("HostConfig") or {}).get("Ulimits") or []
            if u.get("Name") and u.get("Soft") is not None}


def reaches(value: int, minimum: int) -> bool:
    """Whether a limit is at least `minimum`; a minimum of 0 asks nothing, -1 asks for unlimited.

    >>> reaches(4096, 1048576), reaches(-1, -1), reaches(8388608, -1), reaches(-1, 1048576), reaches(1, 0)
    (False, True, False, True, True)
    """
    if minimum == 0 or value == UNLIMITED:
        return True
    return minimum != UNLIMITED and value >= minimum


def shown(value: int) -> str:
    return "unlimited" if value == UNLIMITED else str(value)


def effective(attrs: dict, names, read_file) -> tuple[dict[str, int], dict[str, str]]:
    """(soft limit by name, where each was read) for `names`: HostConfig.Ulimits first, else the main process's
    /proc/<pid>/limits through `read_file(path) -> str`; Unobservable when a limit can be read from neither."""
    own = configured(attrs)
    values, sources = {}, {}
    missing = [n for n in names if n not in own]
    for name in names:
        if name in own:
            values[name], sources[name] = own[name], "HostConfig.Ulimits"
    if missing:
        pid = (attrs.get("State") or {}).get("Pid") or 0
        if not pid:
            raise Unobservable(f"{', '.join(missing)} not set on the container and it has no running process to read "
                               "the daemon's default from")
        path = f"/proc/{pid}/limits"
        try:
            proc = parse_proc_limits(read_file(path))
        except Exception as exc:
            raise Unobservable(f"{', '.join(missing)} not set on the container (HostConfig.Ulimits), so the daemon's "
                               f"default-ulimits apply, and {path} could not be read: {describe(exc)}") from None
        for name in missing:
            if name not in proc:
                raise Unobservable(f"{path} has no {PROC_ROWS[name]!r} row")
            values[name], sources[name] = proc[name], f"{path} (the daemon's default-ulimits)"
    return values, sources
