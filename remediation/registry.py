"""Names of the remediation helpers and the exact command that runs each.

>>> command_for("restart-engine", "risk")
'python -m remediation restart-engine risk'
>>> command_for("restart-redis")
'python -m remediation restart-redis'
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HelperInfo:
    name: str
    summary: str
    disruptive: bool
    target: str | None  # what the argument names: engine, container, port, or nothing
    read_only: bool = False  # only looks; needs no --apply

    @property
    def kind(self) -> str:
        """`disruptive` (asks, saves diagnostics, then acts), `safe` (acts on --apply) or `read-only`.

        >>> HELPERS["restart-redis"].kind, HELPERS["start-container"].kind, HELPERS["free-port"].kind
        ('disruptive', 'safe', 'read-only')
        """
        return "disruptive" if self.disruptive else "read-only" if self.read_only else "safe"


HELPERS: dict[str, HelperInfo] = {h.name: h for h in (
    HelperInfo("start-container", "start a stopped platform container (docker start)", False, "container"),
    HelperInfo("restart-container", "restart a platform container after saving its diagnostics", True, "container"),
    HelperInfo("restart-engine", "restart an engine's container after saving its diagnostics", True, "engine"),
    HelperInfo("diagnose-startup", "the guide's start-up diagnosis: exit code, error, logs, limits, dependencies", False, "container", read_only=True),
    HelperInfo("diagnose-engine", "an engine's health, stats and recent error/slow log lines", False, "engine", read_only=True),
    HelperInfo("check-messagebus", "Redis state, the engine's bus client and heartbeat, network", False, "engine", read_only=True),
    HelperInfo("free-port", "say which process or container holds a port (never kills)", False, "port", read_only=True),
    HelperInfo("restart-redis", "restart the Redis container after saving its diagnostics", True, None),
    HelperInfo("restart-postgres", "restart the PostgreSQL container after saving its diagnostics", True, None),
    # -- helpers that fit a diagnosis (container and database states) --
    HelperInfo("unpause-container", "unpause a paused platform container (docker unpause), wait until healthy",
               False, "container"),
    HelperInfo("create-container", "create a missing platform container from the deployment's Compose project "
               "(compose up -d --no-deps SERVICE; volumes reused, never removed)", False, "container"),
    HelperInfo("diagnose-memory", "a container's memory against its limit, its growth, and its OOM kill",
               False, "container", read_only=True),
    HelperInfo("postgres-sessions", "who holds PostgreSQL's connections; --apply ends sessions idle longer than "
               "$NAUTILUS_SESSIONS_IDLE_MIN (default 5) minutes", True, None),
    # -- the guide's procedures (emergency restart, isolation, rebuild) --
    HelperInfo("emergency-restart", "the guide's emergency restart in phases: infrastructure, backend, engines, "
               "frontend, then validation (no kill, no prune)", True, None),
    HelperInfo("isolate-engine", "the guide's isolation: report, stop the engine, take it off its networks, marker",
               True, "engine"),
    HelperInfo("restore-engine", "undo isolate-engine: back on its networks, started, healthy, marker removed", True,
               "engine"),
    HelperInfo("rebuild-engine", "the guide's restart-loop fix: stop, rebuild without cache (if it has a build), "
               "recreate", True, "engine"),
    # -- maintenance (safe: run by --remediate) --
    # Safe: none stops a service or loses data (see remediation/maintenance.py), so --apply asks nothing.
    HelperInfo("vacuum-analyze", "VACUUM ANALYZE the tables the checks flag, else the database (never FULL: "
               "reads and writes go on)", False, "table"),
    HelperInfo("redis-rewrite-aof", "BGREWRITEAOF when AOF is on (Redis keeps serving), wait for it, report "
               "its status", False, None),
    HelperInfo("rotate-logs", "gzip old *.log in log_dir atomically, delete expired ones (never symlinks, "
               "subfolders or backups)", False, None),
    HelperInfo("docker-cleanup", "remove stopped non-platform containers and untagged unused images (never "
               "volumes, never platform containers)", False, None),
)}


def command_for(name: str, target: str | None = None) -> str:
    info = HELPERS[name]
    return "python -m remediation " + name + (f" {target}" if info.target and target else "")
