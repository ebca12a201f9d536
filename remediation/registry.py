"""The one table of remediation helpers: each name, its function and what a person needs to know before running it.

The CLI (`list`, `HELPER --help`, dispatch), the checks (which helper fits, what
its argument names) and `pytest --remediate` (which helpers may run unattended)
all read this table. It imports nothing heavy: a helper's function is named as
`module:function` and imported when it runs, so `list` and `--help` answer
without the Docker, PostgreSQL or Redis client libraries, and no helper module
needs to import another to find it.

>>> command_for("restart-redis", "ignored") == render(["restart-redis"])
True
>>> [h for h in HELPERS if HELPERS[h].group == "look first"]
['diagnose-startup', 'diagnose-engine', 'diagnose-memory', 'check-messagebus', 'free-port', 'diagnose-process']
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Sequence

from .invocation import helper_argv, render

KINDS = ("read-only", "safe", "disruptive", "unconfined")
GROUPS = ("look first", "act")
KIND_MEANING = {
    "read-only": "only looks; --apply changes nothing",
    "safe": "a dry run without --apply; with it, acts at once (it changes nothing that cannot be undone and asks "
            "no question)",
    "disruptive": "a dry run without --apply; with it, asks you to type the name of what it acts on (--yes "
                  "confirms), saves a diagnostics bundle, acts, and appends one line to the audit log",
    "unconfined": "a dry run without --apply; with it, acts on what the platform may not own, so it asks a "
                  "person (--yes confirms) and appends one line to the audit log",
}
TARGETS = {
    "engine": "an engine name of the inventory (risk, analytics, ...)",
    "container": "a platform container, or an engine or service name (risk, backend, nautilus-redis)",
    "port": "a TCP port number",
    "table": "optional: a table (schema.name) of the platform's database",
    "target": "optional: an engine or service name; none lists the open windows",
}


@dataclass(frozen=True)
class Helper:
    name: str
    summary: str
    kind: str  # one of KINDS
    target: str | None  # what the argument names (a key of TARGETS), or None: it takes none
    reads: str
    changes: str
    example: str  # the arguments of an example invocation, after the name
    function: str  # "module:function" taking (ctx, argument, apply) and returning the exit status
    unattended: bool = False  # `pytest --remediate` may run it with --apply (safe, and only on the platform's own)
    state: bool = False  # reads or writes the run state (maintenance windows): its command carries --state-dir

    def __post_init__(self):
        assert self.kind in KINDS and (self.target is None or self.target in TARGETS), self.name

    @property
    def run(self) -> Callable:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def disruptive(self) -> bool:
        return self.kind == "disruptive"

    @property
    def read_only(self) -> bool:
        return self.kind == "read-only"

    @property
    def confined(self) -> bool:
        """--apply changes only the platform's own (containers, database, Redis, log_dir)."""
        return self.kind != "unconfined"

    @property
    def needs_a_person(self) -> bool:
        """--apply asks at a terminal (or takes --yes), and refuses with neither.

        >>> HELPERS["restart-redis"].needs_a_person, HELPERS["docker-cleanup"].needs_a_person
        (True, True)
        >>> HELPERS["rotate-logs"].needs_a_person
        False
        """
        return self.kind in ("disruptive", "unconfined")

    @property
    def group(self) -> str:
        """`look first` (read-only diagnoses) or `act`."""
        return "look first" if self.read_only else "act"


def _h(name, summary, kind, target, reads, changes, example, function, unattended=False, state=False) -> Helper:
    return Helper(name, summary, kind, target, reads, changes, example, function, unattended, state)


_BUNDLE = "a diagnostics bundle under reports/out/bundles/ first"
_AUDIT = "; one line in the audit log"

HELPERS: dict[str, Helper] = {h.name: h for h in (
    # -- look first: read-only diagnoses --
    _h("diagnose-startup", "the guide's start-up diagnosis: exit code, error, logs, limits, dependencies",
       "read-only", "container", "docker inspect and the last 50 log lines of the container, the state of "
       "PostgreSQL and Redis", "nothing", "diagnose-startup risk", "remediation.diagnose:diagnose_startup"),
    _h("diagnose-engine", "an engine's health, stats and recent error/slow log lines", "read-only", "engine",
       "the engine's /health (timed), one docker stats sample, its last hour of logs", "nothing",
       "diagnose-engine risk", "remediation.diagnose:diagnose_engine"),
    _h("diagnose-memory", "a container's memory against its limit, its growth, and its OOM kill", "read-only",
       "container", "docker inspect and four docker stats samples 2 s apart", "nothing", "diagnose-memory risk",
       "remediation.fitting:diagnose_memory"),
    _h("check-messagebus", "Redis state, the engine's bus client and heartbeat, network", "read-only", "engine",
       "Redis PING, INFO, CLIENT LIST and the engine's heartbeat key; the engine's /health; docker inspect",
       "nothing", "check-messagebus risk", "remediation.messagebus:check_messagebus"),
    _h("free-port", "say which process or container holds a port (never kills)", "read-only", "port",
       "/proc/net/tcp{,6} and /proc/*/fd (or ss), the containers publishing the port", "nothing (never kills)",
       "free-port 8200", "remediation.ports:free_port"),
    _h("diagnose-process", "a plain-process engine (docker: false): pid, state, open ports, Redis connections, "
       "memory, CPU and its last log lines (never asks Docker)", "read-only", "engine",
       "the process (pid file, systemd unit or port listener; psutil), its log_file or its unit's journal",
       "nothing", "diagnose-process risk", "remediation.process:diagnose_process"),
    # -- act: containers --
    _h("start-container", "start a stopped platform container (docker start)", "safe", "container",
       "the container's state", "starts the container, waits until it is running (healthy)" + _AUDIT,
       "start-container risk", "remediation.actions:start_container"),
    _h("unpause-container", "unpause a paused platform container (docker unpause), wait until healthy", "safe",
       "container", "the container's state", "unpauses the container, waits until it is healthy" + _AUDIT,
       "unpause-container risk", "remediation.fitting:unpause_container"),
    _h("create-container", "create a missing platform container from the deployment's Compose project "
       "(compose up -d --no-deps SERVICE; volumes reused, never removed)", "safe", "container",
       "the compose file (inventory compose_file, else the project's labels) and `compose config`",
       "creates that one service's container (volumes reused, never removed)" + _AUDIT,
       "create-container frontend", "remediation.fitting:create_container"),
    _h("restart-container", "restart a platform container after saving its diagnostics", "disruptive",
       "container", "the container's state; the bundle: every platform container, engine /health, host",
       f"{_BUNDLE}, then restarts the container (graceful stop), waits until healthy" + _AUDIT,
       "restart-container backend", "remediation.actions:restart_container"),
    _h("restart-engine", "restart an engine's container after saving its diagnostics", "disruptive", "engine",
       "the container's state; the bundle: every platform container, engine /health, host",
       f"{_BUNDLE}, then restarts the engine's container, waits until healthy" + _AUDIT,
       "restart-engine risk", "remediation.actions:restart_engine"),
    _h("restart-process", "restart a plain-process engine (docker: false): its systemd unit, or the inventory's "
       "process.restart_command (never asks Docker)", "disruptive", "engine",
       "the process and its last log lines",
       "saves the process diagnosis under reports/out/bundles/ first, then runs `systemctl restart UNIT` or the "
       "restart_command, waits until its port accepts connections" + _AUDIT,
       "restart-process risk", "remediation.process:restart_process"),
    _h("restart-redis", "restart the Redis container after saving its diagnostics", "disruptive", None,
       "the container's state; the bundle", f"{_BUNDLE}, then restarts Redis (30 s to stop gracefully)" + _AUDIT,
       "restart-redis", "remediation.actions:restart_redis"),
    _h("restart-postgres", "restart the PostgreSQL container after saving its diagnostics", "disruptive", None,
       "the container's state; the bundle",
       f"{_BUNDLE}, then restarts PostgreSQL (60 s to stop gracefully)" + _AUDIT,
       "restart-postgres", "remediation.actions:restart_postgres"),
    _h("postgres-sessions", "who holds PostgreSQL's connections; --apply ends sessions idle longer than "
       "$NAUTILUS_SESSIONS_IDLE_MIN (default 5) minutes", "disruptive", None,
       "pg_stat_activity and pg_settings (as the inventory's user)",
       f"{_BUNDLE}, then ends the client sessions idle longer than the limit (never the suite's)" + _AUDIT,
       "postgres-sessions", "remediation.fitting:postgres_sessions"),
    # -- act: the guide's procedures --
    _h("emergency-restart", "the guide's emergency restart in phases: infrastructure, backend, engines, "
       "frontend, then validation (no kill, no prune)", "disruptive", None,
       "every platform container's state; then pg_isready, Redis PING, ports and every engine's /health",
       f"{_BUNDLE}, then stops and starts every platform container in phases" + _AUDIT,
       "emergency-restart", "remediation.procedures:emergency_restart"),
    _h("isolate-engine", "the guide's isolation: report, stop the engine, take it off its networks, marker",
       "disruptive", "engine", "the container, one stats sample, its last 100 log lines, /health",
       f"{_BUNDLE}, then stops the engine, disconnects it from its networks, writes a marker and opens a "
       "maintenance window" + _AUDIT, "isolate-engine risk", "remediation.procedures:isolate_engine", state=True),
    _h("restore-engine", "undo isolate-engine: back on its networks, started, healthy, marker removed",
       "disruptive", "engine", "the isolation marker, the container's state",
       f"{_BUNDLE}, then reconnects the engine, starts it, removes the marker and closes its window" + _AUDIT,
       "restore-engine risk", "remediation.procedures:restore_engine", state=True),
    _h("reconnect-network", "put a platform container back on the platform network (docker network connect, "
       "its Compose service as alias)", "disruptive", "container",
       "the container's networks and Compose service label (docker inspect); the bundle",
       f"{_BUNDLE}, then connects the container to the inventory's platform_network" + _AUDIT,
       "reconnect-network risk", "remediation.networks:reconnect_network"),
    _h("rebuild-engine", "the guide's restart-loop fix: stop, rebuild without cache (if it has a build), "
       "recreate", "disruptive", "engine", "the container's Compose labels and `compose config`",
       f"{_BUNDLE}, then stops the engine, rebuilds its image without cache, recreates its container" + _AUDIT,
       "rebuild-engine factor", "remediation.procedures:rebuild_engine"),
    _h("maintenance", "open (--for 2h --reason TEXT), close (--end) or list maintenance windows: the "
       "target's checks say 'in maintenance' instead of failing or paging", "safe", "target",
       "maintenance.json in the state dir (--state-dir, the inventory's state_dir, else reports/out/state)",
       "opens or closes one window in maintenance.json (nothing of the platform)" + _AUDIT,
       "maintenance risk --for 2h --reason 'index rebuild'", "remediation.windows:maintenance", state=True),
    # -- act: maintenance. None stops a service or loses the platform's data; the confined ones ask nothing and
    # `--remediate` runs them; docker-cleanup removes what may be another team's, so a person confirms it. --
    _h("vacuum-analyze", "VACUUM ANALYZE the tables the checks flag, else the database (never FULL: reads and "
       "writes go on)", "safe", "table", "pg_stat_user_tables (dead rows, last vacuum)",
       "runs VACUUM (ANALYZE) on those tables, bounded by statement and lock timeouts" + _AUDIT,
       "vacuum-analyze", "remediation.maintenance:vacuum_analyze", unattended=True),
    _h("redis-rewrite-aof", "BGREWRITEAOF when AOF is on (Redis keeps serving), wait for it, report its status",
       "safe", None, "INFO persistence", "starts one BGREWRITEAOF and waits for it" + _AUDIT,
       "redis-rewrite-aof", "remediation.maintenance:redis_rewrite_aof", unattended=True),
    _h("rotate-logs", "gzip old *.log in log_dir atomically, delete expired ones (never symlinks, subfolders or "
       "backups)", "safe", None, "the files directly in the inventory's log_dir",
       "gzips old *.log (the log goes only once its .gz verifies), deletes expired *.log/*.log.gz" + _AUDIT,
       "rotate-logs", "remediation.maintenance:rotate_logs", unattended=True),
    _h("docker-cleanup", "remove stopped non-platform containers and untagged unused images, each listed with its "
       "owner labels, and the platform's unused networks (asks: they may be another team's; never volumes, never "
       "platform containers)", "unconfined",
       None, "docker system df (containers, images, build cache, their owner labels), the platform's networks",
       "removes stopped non-platform containers, untagged unused images and the platform's networks no container "
       "uses, prunes unused build cache; never volumes, never bridge/host/none" + _AUDIT, "docker-cleanup",
       "remediation.maintenance:docker_cleanup"),
)}


def close_match(name: str) -> str | None:
    """The helper a mistyped name most likely meant.

    >>> close_match("restart-engin"), close_match("xyz")
    ('restart-engine', None)
    """
    import difflib
    found = difflib.get_close_matches(name, list(HELPERS) + ["list"], n=1, cutoff=0.6)
    return found[0] if found else None


def argv_for(name: str, argument: str | int | None = None, *, inventory: str | None = None,
             state_dir: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """One helper's arguments as a run prints them: its argument only when it takes one, the inventory always
    (when there is one), the state dir only for a helper that reads the run state.

    >>> argv_for("restart-redis", "x", inventory="/i.yaml", state_dir="/s")
    ['restart-redis', '--inventory=/i.yaml']
    >>> argv_for("maintenance", "risk", state_dir="/s")
    ['maintenance', 'risk', '--state-dir=/s']
    """
    helper = HELPERS[name]
    argument = None if helper.target is None or argument in (None, "") else str(argument)
    return helper_argv(name, argument, inventory=inventory, state_dir=state_dir if helper.state else None,
                       extra=extra)


def command_for(name: str, target: str | int | None = None, **paths) -> str:
    """The printed command of one helper (see remediation/invocation.py); paths: inventory=, state_dir=."""
    return render(argv_for(name, target, **paths))
