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
    # What --apply changes is the platform's own (its containers, database, Redis, log_dir). Only confined
    # helpers run unattended (`pytest --remediate`); an unconfined one may take what another team owns, so
    # its --apply needs a person, like a disruptive one.
    confined: bool = True

    @property
    def needs_a_person(self) -> bool:
        """--apply asks at a terminal (or takes --yes), and refuses with neither.

        >>> HELPERS["restart-redis"].needs_a_person, HELPERS["docker-cleanup"].needs_a_person
        (True, True)
        >>> HELPERS["rotate-logs"].needs_a_person
        False
        """
        return self.disruptive or not self.confined

    @property
    def kind(self) -> str:
        """`disruptive` (asks, saves diagnostics, then acts), `unconfined` (asks, then acts on what the
        platform does not own), `safe` (acts on --apply) or `read-only`.

        >>> [HELPERS[h].kind for h in ("restart-redis", "docker-cleanup", "start-container", "free-port")]
        ['disruptive', 'unconfined', 'safe', 'read-only']
        """
        return ("disruptive" if self.disruptive else "read-only" if self.read_only
                else "unconfined" if not self.confined else "safe")


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
    HelperInfo("maintenance", "open (--for 2h --reason TEXT), close (--end) or list maintenance windows: the "
               "target's checks say 'in maintenance' instead of failing or paging", False, "target"),
    # -- maintenance (the confined ones are run by --remediate) --
    # None stops a service or loses the platform's data (see remediation/maintenance.py), so the confined
    # ones ask nothing; docker-cleanup removes what may be another team's, so a person confirms it.
    HelperInfo("vacuum-analyze", "VACUUM ANALYZE the tables the checks flag, else the database (never FULL: "
               "reads and writes go on)", False, "table"),
    HelperInfo("redis-rewrite-aof", "BGREWRITEAOF when AOF is on (Redis keeps serving), wait for it, report "
               "its status", False, None),
    HelperInfo("rotate-logs", "gzip old *.log in log_dir atomically, delete expired ones (never symlinks, "
               "subfolders or backups)", False, None),
    HelperInfo("docker-cleanup", "remove stopped non-platform containers and untagged unused images, each "
               "listed with its owner labels (asks: they may be another team's; never volumes, never platform "
               "containers)", False, None, confined=False),
)}


def command_for(name: str, target: str | None = None) -> str:
    info = HELPERS[name]
    return "python -m remediation " + name + (f" {target}" if info.target and target else "")
