"""Helpers that fit a diagnosis: what a check saw chooses them (fixtures/verdict.py `remedy`).

- unpause-container: a paused container (start-container refuses it). Safe: `docker unpause`.
- create-container: a container that does not exist, created again from the deployment's Compose
  project (`compose up -d --no-deps SERVICE`); named volumes are reused, never removed. Safe.
- diagnose-memory: an OOM-killed container: its memory against its limit and how fast it grows.
  Read-only: restarting blindly would only start the next kill.
- postgres-sessions: PostgreSQL out of connections: who holds them (application, client, state, idle
  time), and with --apply it ends sessions idle longer than a limit. Disruptive: asks, saves the
  diagnostics bundle, audits. The idle limit is $NAUTILUS_SESSIONS_IDLE_MIN minutes (default 5; the CLI has no
  per-helper options). With every slot taken, a normal user cannot connect, this helper included:
  PostgreSQL keeps superuser_reserved_connections (3 by default) for superusers, so run it with an
  inventory naming a superuser (the lab's user `nautilus` is one, so on the lab it gets in).

Like every helper: without `apply` they print the plan and change nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psycopg

from observation.docker_api import Docker, State
from observation.errors import ContainerMissing
from observation.postgres import APPLICATION_NAME as SUITE_APPLICATION
from observation.stats import MIB, Usage, growth_mb_per_min, memory_level

from . import compose
from .bundle import CONTENTS, default_dir
from .context import Context
from .diagnose import limits_line
from .errors import FAILURES, RemediationError
from .readiness import started_and_ready, wait_step
from .sequence import Action, asks, carry_out, dry_run, numbered
from .targets import resolve

# -- unpause-container -----------------------------------------------------------------------------


def unpause_container(ctx: Context, argument: str | None, apply: bool) -> int:
    target = resolve(ctx.inventory, "unpause-container", argument)
    name, docker = target.container, ctx.docker(target.host)
    state = State.of(docker.inspect(name))
    if state.status != "paused":
        other = (f"start it: {ctx.command('start-container', name)}" if state.status in ("exited", "created")
                 else "")
        ctx.say(f"{name} is not paused ({state.line()}); nothing to do" + (f"; {other}" if other else ""))
        return 0
    plan = numbered([
        f"unpause {name} through the Docker API (POST /containers/{name}/unpause, as `docker unpause {name}`): "
        "its processes resume where they were frozen",
        wait_step(ctx, state, name), f"append the outcome to the audit log {ctx.audit_path}"])
    if not apply:
        return dry_run(ctx, f"unpause-container {name} (now {state.line()})", plan)
    return carry_out(ctx, Action("unpause-container", name, plan), lambda bundle: started_and_ready(
        ctx, docker, name, lambda: docker.unpause(name), f"unpaused {name} (docker unpause)"))


# -- create-container ------------------------------------------------------------------------------


def project_files(ctx: Context, docker: Docker) -> tuple[list[str], str | None]:
    """The compose files (and working dir) of the deployment: the inventory's compose_file, else the labels
    Compose put on another container of the same project (a missing container has no labels of its own)."""
    if ctx.inventory.compose_file:
        return [ctx.inventory.compose_file], None
    for summary in docker.containers():
        labels = summary.get("Labels") or {}
        if labels.get("com.docker.compose.project") == ctx.inventory.compose_project:
            files = [f for f in (labels.get("com.docker.compose.project.config_files") or "").split(",") if f]
            if files:
                return files, labels.get("com.docker.compose.project.working_dir")
    raise RemediationError(f"no container of Compose project {ctx.inventory.compose_project!r} is left to say where "
                           "its compose file is, and the inventory names no compose_file; set compose_file, or "
                           "create it by hand: docker compose up -d --no-deps SERVICE")


def service_of(config: dict, name: str) -> str | None:
    """The Compose service whose container is `name`: its container_name, else `nautilus-<service>`.

    >>> service_of({"services": {"frontend": {"container_name": "nautilus-frontend"}}}, "nautilus-frontend")
    'frontend'
    >>> service_of({"services": {"web": {}}}, "nautilus-web"), service_of({"services": {}}, "x")
    ('web', None)
    """
    services = config.get("services") or {}
    for service, spec in services.items():
        if (spec or {}).get("container_name") == name:
            return service
    guess = name.removeprefix(f"{config.get('name') or 'nautilus'}-").removeprefix("nautilus-")
    return guess if guess in services and not (services[guess] or {}).get("container_name") else None


def create_container(ctx: Context, argument: str | None, apply: bool) -> int:
    target = resolve(ctx.inventory, "create-container", argument)
    name, docker = target.container, ctx.docker(target.host)
    try:
        state = State.of(docker.inspect(name))
    except ContainerMissing:
        state = None
    if state is not None:
        ctx.say(f"{name} exists ({state.line()}); nothing to create"
                + (f"; start it: {ctx.command('start-container', name)}" if state.status != "running" else ""))
        return 0
    files, working_dir = project_files(ctx, docker)
    config = compose.config(ctx, compose.ComposeService(ctx.inventory.compose_project, files, working_dir, ""))
    service = service_of(config, name)
    if service is None:
        raise RemediationError(f"no service of {', '.join(files)} creates a container named {name}; nothing changed")
    where = compose.ComposeService(ctx.inventory.compose_project, files, working_dir, service)
    command = " ".join(where.argv(ctx.inventory.compose_command, "up", "-d", "--no-deps", service))
    plan = numbered([
        f"create {name} from service {service} of {', '.join(files)}: {command} (only this service: --no-deps; "
        "no other container is recreated; named volumes are reused, never removed)",
        f"wait up to {ctx.ready_timeout_s:.0f} s until {name} is running (and healthy, when it has a health check)",
        f"append the outcome to the audit log {ctx.audit_path}"])
    if not apply:
        return dry_run(ctx, f"create-container {name} (now missing on Docker host {target.host!r})", plan)
    return carry_out(ctx, Action("create-container", name, plan), lambda bundle: started_and_ready(
        ctx, docker, name, lambda: compose.run(ctx, where, "up", "-d", "--no-deps", service),
        f"created {name} (compose up -d --no-deps {service})"))


# -- diagnose-memory -------------------------------------------------------------------------------

SAMPLES = 4  # readings of docker stats ...
SAMPLE_GAP_S = 2.0  # ... this far apart: a growth rate over 6 s, enough to see a leak that kills in minutes


def diagnose_memory(ctx: Context, argument: str | None, apply: bool = False) -> int:
    """Memory against the limit, its growth over a few seconds, and the OOM kill Docker recorded."""
    target = resolve(ctx.inventory, "diagnose-memory", argument)
    name, docker = target.container, ctx.docker(target.host)
    attrs = docker.inspect(name)
    state, host_config = State.of(attrs), attrs.get("HostConfig") or {}
    limits = (target.engine.limits(ctx.inventory.thresholds) if target.engine else ctx.inventory.thresholds)
    ctx.say(f"diagnose-memory {name} on Docker host {target.host!r} (read-only: changes nothing)")
    ctx.say(f"state: {state.line()}; started {state.started_at or '-'}, last stopped {state.finished_at or '-'}")
    ctx.say(f"limits: {limits_line(host_config)}")
    if state.oom_killed:
        ctx.say(f"OOM kill: Docker records that the kernel killed {name} for exceeding its memory limit when it last "
                f"stopped ({state.finished_at}); its restart policy brought it back ({state.restarts} restarts)")
    readings = []
    if state.status == "running":
        for i in range(SAMPLES):
            try:
                readings.append(Usage.of(docker.stats(name), ctx.clock()))
            except FAILURES as exc:
                ctx.say(f"stats: not sampled ({exc})")
                break
            if i < SAMPLES - 1:
                ctx.sleep(SAMPLE_GAP_S)
    else:
        ctx.say("memory: not sampled (the container is not running)")
    readings = [u for u in readings if u.memory_used is not None]
    growth = growth_mb_per_min(readings[0], readings[-1]) if len(readings) > 1 else None
    for line in memory_findings(readings, growth, limits.memory_high_pct, limits.memory_warning_pct,
                                limits.memory_critical_pct, limits.memory_growth_max_mb_per_min, state.oom_killed):
        ctx.say(line)
    return 0


def memory_findings(readings: list[Usage], growth: float | None, high_pct: float, warning_pct: float,
                    critical_pct: float, growth_max: float, oom_killed: bool) -> list[str]:
    """What the readings say, and the advice that fits (never a restart for its own sake).

    >>> u = Usage.of({"memory_stats": {"usage": 230 * MIB, "limit": 256 * MIB}}, 0.0)
    >>> for line in memory_findings([u], 40.0, 70, 80, 90, 10, True): print(line)
    memory: 230 MiB of 256 MiB (89.8 %; WARNING; warning at 80 %, critical at 90 %)
    growth: +40.0 MiB/min over the sampled seconds (more than 10 MiB/min: a leak) - at this rate the limit is reached in about 0.7 min
    advice: it is growing toward its limit: find the leak (its logs, heap profile; the helper diagnose-engine for an engine); a restart only resets the clock to the next kill
    advice: until it is fixed, raise mem_limit in the compose file for headroom
    """
    lines = []
    last = readings[-1] if readings else None
    if last and last.memory_pct is not None:
        level = memory_level(last.memory_pct, high_pct, warning_pct, critical_pct)
        lines.append(f"memory: {last.memory_used / MIB:.0f} MiB of {last.memory_limit / MIB:.0f} MiB "
                     f"({last.memory_pct} %; {level}; warning at {warning_pct:g} %, critical at {critical_pct:g} %)")
    leaking = growth is not None and growth > growth_max
    if growth is not None:
        eta = ""
        if growth > 0 and last and last.memory_limit:
            eta = (f" - at this rate the limit is reached in about "
                   f"{(last.memory_limit - last.memory_used) / MIB / growth:.1f} min")
        lines.append(f"growth: {growth:+.1f} MiB/min over the sampled seconds "
                     f"({'more' if leaking else 'not more'} than {growth_max:g} MiB/min{': a leak' if leaking else ''})"
                     + (eta if leaking else ""))
    near = last is not None and last.memory_pct is not None and last.memory_pct > warning_pct
    if leaking:
        lines.append("advice: it is growing toward its limit: find the leak (its logs, heap profile; the helper "
                     "diagnose-engine for an engine); a restart only resets the clock to the next kill")
    elif oom_killed and not near:
        lines.append("advice: it uses little memory now and is not growing: the kill came from a burst (a large "
                     "request or batch); read its logs around the time it stopped, and size the limit for that peak")
    if near or leaking:
        lines.append("advice: until it is fixed, raise mem_limit in the compose file for headroom")
    if not lines:
        lines.append("memory: no reading")
    return lines


# -- postgres-sessions -----------------------------------------------------------------------------

HELPER_APPLICATION = "nautilus-remediation"
IDLE_MIN_ENV = "NAUTILUS_SESSIONS_IDLE_MIN"
IDLE_MIN_DEFAULT = 5.0  # minutes: a session idle this long is ended by --apply

SESSIONS_SQL = """
SELECT coalesce(nullif(application_name, ''), '(none)') AS application, coalesce(host(client_addr), 'local socket'),
       usename, coalesce(state, '?'), count(*), max(extract(epoch FROM now() - state_change))
FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 1"""
# Ends only idle client sessions: never the suite's, never this helper's, never PostgreSQL's own processes.
IDLE_SQL = """
SELECT pid, coalesce(nullif(application_name, ''), '(none)'), coalesce(host(client_addr), 'local socket'), usename,
       extract(epoch FROM now() - state_change)
FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'idle' AND pid <> pg_backend_pid()
  AND coalesce(application_name, '') NOT IN (%s, %s) AND now() - state_change > make_interval(secs => %s)
ORDER BY state_change"""


@dataclass(frozen=True)
class Group:
    application: str
    client: str
    user: str
    state: str
    count: int
    idle_s: float | None

    def line(self) -> str:
        longest = f", longest in this state {self.idle_s / 60:.1f} min" if self.idle_s is not None else ""
        return f"{self.count:5}  {self.application} from {self.client} as {self.user}, {self.state}{longest}"


def idle_limit_min(environ=os.environ) -> float:
    """The idle limit in minutes: $NAUTILUS_SESSIONS_IDLE_MIN, else 5 (the CLI has no per-helper options).

    >>> idle_limit_min({}), idle_limit_min({"NAUTILUS_SESSIONS_IDLE_MIN": "0.5"})
    (5.0, 0.5)
    """
    raw = environ.get(IDLE_MIN_ENV)
    try:
        value = float(raw) if raw else IDLE_MIN_DEFAULT
    except ValueError:
        raise RemediationError(f"{IDLE_MIN_ENV}={raw!r} is not a number of minutes") from None
    if value < 0:
        raise RemediationError(f"{IDLE_MIN_ENV} must be 0 or more minutes (got {raw})")
    return value


def connect(ctx: Context) -> Any:
    """A session of our own; with every slot taken only a superuser gets in (superuser_reserved_connections)."""
    spec, timeouts = ctx.inventory.postgres, ctx.inventory.timeouts
    try:
        return psycopg.connect(host=spec.host, port=spec.port, dbname=spec.dbname, user=spec.user,
                               password=ctx.inventory.secrets.needed("postgres"),
                               connect_timeout=max(1, round(timeouts.connect_s)), autocommit=True,
                               application_name=HELPER_APPLICATION,
                               options=f"-c statement_timeout={int(timeouts.read_s * 1000)}")
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise RemediationError(f"cannot connect to PostgreSQL at {spec.host}:{spec.port} as {spec.user!r} ({detail}); "
                               "with every slot taken only a superuser connects (superuser_reserved_connections): "
                               "run this helper with an inventory naming a superuser") from None


def postgres_sessions(ctx: Context, argument: str | None, apply: bool) -> int:
    """Who holds PostgreSQL's connections; with --apply, end the sessions idle longer than the limit."""
    target = resolve(ctx.inventory, "postgres-sessions", argument)
    limit_min = idle_limit_min()
    conn = connect(ctx)
    try:
        settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                     "('max_connections', 'superuser_reserved_connections')").fetchall())
        groups = [Group(*row[:4], int(row[4]), float(row[5]) if row[5] is not None else None)
                  for row in conn.execute(SESSIONS_SQL).fetchall()]
        idle = conn.execute(IDLE_SQL, (SUITE_APPLICATION, HELPER_APPLICATION, limit_min * 60)).fetchall()
        total = sum(g.count for g in groups) + 1
        ctx.say(f"postgres-sessions on {ctx.inventory.postgres.host}:{ctx.inventory.postgres.port}: {total} client "
                f"sessions (this one included) of max_connections {settings.get('max_connections')}, "
                f"{settings.get('superuser_reserved_connections')} of them reserved for superusers")
        ctx.say("count  application from client as user, state")
        for group in groups:
            ctx.say(group.line())
        ctx.say(f"idle longer than {limit_min:g} min ({IDLE_MIN_ENV}; default {IDLE_MIN_DEFAULT:g}): {len(idle)} "
                f"session(s), the suite's ({SUITE_APPLICATION}) and PostgreSQL's own processes left out")
        by_holder: dict[tuple[str, str], int] = {}
        for _, app, client, _, _ in idle:
            by_holder[(app, client)] = by_holder.get((app, client), 0) + 1
        for (app, client), count in sorted(by_holder.items(), key=lambda kv: -kv[1]):
            ctx.say(f"  {count:5}  {app} from {client}")
        if not idle:
            ctx.say("nothing to end; if the slots are still taken, the holders above are busy: find out why "
                    "(the application's pool size), or raise max_connections")
            return 0
        bundle_dir = ctx.bundle_dir or default_dir("postgres-sessions", target)
        plan = numbered([
            f"save the diagnostics to {bundle_dir}/: {CONTENTS}",
            f"end the {len(idle)} session(s) idle longer than {limit_min:g} min with pg_terminate_backend (their "
            "clients see the connection closed and reconnect; no transaction is open in an idle session)",
            f"append the outcome to the audit log {ctx.audit_path}"])
        if not apply:
            return dry_run(ctx, "postgres-sessions", plan, asks(target.container))

        def act(bundle) -> tuple[str, int]:
            ended = [pid for pid, *_ in idle
                     if conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]]
            return f"ended {len(ended)} of {len(idle)} idle session(s) (pids {', '.join(map(str, ended))})", 0
        action = Action("postgres-sessions", target.container, plan, confirm=target.container,
                        bundle=(target, bundle_dir),
                        question=f"postgres-sessions will end {len(idle)} idle session(s):")
        return carry_out(ctx, action, act)
    finally:
        conn.close()
