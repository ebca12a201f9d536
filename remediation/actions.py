"""The helpers that change something (start, restart) and the table of every helper.

Each takes the context, its argument and whether to act, prints through
`ctx.say` and returns an exit status: 0 done (or nothing to do), 1 acted but
the container did not become ready. Without `apply` it prints the numbered
plan and changes nothing. With `apply`, a disruptive helper asks
`ctx.confirm` and writes the diagnostics bundle before acting; every applied
action, successful or not, appends one line to the audit log.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from observation.docker_api import Docker, State

from . import audit, fitting, maintenance, procedures, windows
from .bundle import CONTENTS, default_dir, write_bundle
from .context import Context
from .diagnose import diagnose_engine, diagnose_startup
from .errors import FAILURES
from .messagebus import check_messagebus
from .ports import free_port
from .targets import Target, resolve

RESTART_STOP_TIMEOUT_S = 10  # docker restart -t 10: this long to stop gracefully, then killed
# The guide's graceful stop: PostgreSQL gets 60 s to checkpoint and close, Redis 30 s to write its snapshot.
POSTGRES_STOP_TIMEOUT_S = 60
REDIS_STOP_TIMEOUT_S = 30
POLL_S = 1


def numbered(steps: list[str]) -> list[str]:
    """
    >>> numbered(["restart it", "wait"])
    ['1. restart it', '2. wait']
    """
    return [f"{i}. {step}" for i, step in enumerate(steps, 1)]


def wait_until_ready(ctx: Context, docker: Docker, name: str) -> tuple[bool, str]:
    """Poll the container until it is running (and healthy, when it has a health check), at most ctx.ready_timeout_s."""
    started = ctx.clock()
    while True:
        attrs = docker.inspect(name)
        state, elapsed = State.of(attrs), ctx.clock() - started
        if state.ready:
            how = "running and healthy" if state.health else "running (no health check)"
            return True, f"{name} is {how} after {elapsed:.1f} s"
        policy = ((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
        stopped_for_good = state.status in ("exited", "dead") and policy == "no"
        if stopped_for_good or elapsed >= ctx.ready_timeout_s:
            return False, (f"{name} is not ready after {elapsed:.0f} s: {state.line()}; "
                           f"next: python -m remediation diagnose-startup {name}")
        ctx.sleep(min(POLL_S, max(0.0, ctx.ready_timeout_s - elapsed)))


def _wait_step(ctx: Context, state: State, name: str) -> str:
    until = "running and healthy" if state.health else "running"
    return f"wait up to {ctx.ready_timeout_s:.0f} s (checking every {POLL_S} s) until {name} is {until}"


def _dry_run(ctx: Context, header: str, plan: list[str], confirm_note: str = "") -> int:
    ctx.say(f"dry run of {header}; with --apply it would:")
    ctx.say_endpoints()
    for line in plan:
        ctx.say(line)
    ctx.say(f"dry run: nothing changed; add --apply to do it{confirm_note}")
    return 0


def _apply(ctx: Context, helper: str, target: Target, act: Callable[[], None], done: str,
           bundle_dir: Path | None = None) -> int:
    """Bundle (when given), act, wait, and audit whatever happened."""
    bundle = None
    try:
        if bundle_dir:
            bundle = write_bundle(ctx, helper, target, bundle_dir)
            ctx.say(f"diagnostics saved to {bundle}")
        act()
        ctx.say(done)
        ready, outcome = wait_until_ready(ctx, ctx.docker(target.host), target.container)
    except BaseException as exc:  # Ctrl-C included: whatever was started is on record
        _audit(ctx, helper, target, f"failed: {exc if isinstance(exc, FAILURES) else type(exc).__name__}",
               bundle)
        raise
    ctx.say(outcome)
    _audit(ctx, helper, target, outcome, bundle)
    ctx.say(f"audit: one line appended to {ctx.audit_path}")
    return 0 if ready else 1


def _audit(ctx: Context, helper: str, target: Target, outcome: str, bundle: Path | None) -> None:
    audit.append(ctx.audit_path, audit.record(helper, target.container, ctx.redactor.redact_text(outcome), bundle))


def start_container(ctx: Context, argument: str | None, apply: bool) -> int:
    target = resolve(ctx.inventory, "start-container", argument)
    name, docker = target.container, ctx.docker(target.host)
    state = State.of(docker.inspect(name))
    if state.status == "running":
        ctx.say(f"{name} is already running ({state.line()}); nothing to do")
        return 0
    if state.status in ("paused", "restarting"):
        why = ("is paused: it needs `docker unpause`, which this helper does not do" if state.status == "paused" else
               "is restarting under its restart policy (a crash loop?): starting it again would not help")
        ctx.say(f"{name} {why}; nothing changed; diagnose: python -m remediation diagnose-startup {name}")
        return 1
    plan = numbered([f"start {name} through the Docker API (POST /containers/{name}/start, as `docker start {name}`)",
                     _wait_step(ctx, state, name), f"append the outcome to the audit log {ctx.audit_path}"])
    if not apply:
        return _dry_run(ctx, f"start-container {name} (now {state.line()})", plan)
    audit.ensure_writable(ctx.audit_path)
    return _apply(ctx, "start-container", target, lambda: docker.start(name), f"started {name} (docker start)")


def stop_timeout_s(inventory, container: str) -> int:
    """How long a restart lets the container stop gracefully before Docker kills it.

    >>> from observation.inventory import load_inventory
    >>> inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    >>> [stop_timeout_s(inv, c) for c in ("nautilus-postgres", "nautilus-redis", "nautilus-risk-engine")]
    [60, 30, 10]
    """
    return {inventory.postgres.container: POSTGRES_STOP_TIMEOUT_S,
            inventory.redis.container: REDIS_STOP_TIMEOUT_S}.get(container, RESTART_STOP_TIMEOUT_S)


def restart(ctx: Context, helper: str, argument: str | None, apply: bool) -> int:
    """restart-container, restart-engine, restart-redis and restart-postgres."""
    target = resolve(ctx.inventory, helper, argument)
    name, docker = target.container, ctx.docker(target.host)
    stop_s = stop_timeout_s(ctx.inventory, name)
    state = State.of(docker.inspect(name))
    bundle_dir = ctx.bundle_dir or default_dir(helper, target)
    plan = numbered([
        f"save the pre-restart diagnostics to {bundle_dir}/: {CONTENTS}",
        f"restart {name} through the Docker API (POST /containers/{name}/restart?t={stop_s}, as "
        f"`docker restart -t {stop_s} {name}`): {stop_s} s to stop gracefully (the guide's), then it is killed",
        _wait_step(ctx, state, name),
        f"append the outcome to the audit log {ctx.audit_path}"])
    header = f"{helper} {name} (now {state.line()}) on Docker host {target.host!r}"
    if not apply:
        return _dry_run(ctx, header, plan, " (you will be asked to type the container name)")
    audit.ensure_writable(ctx.audit_path)
    ctx.confirm(name, [f"{helper} will restart {name} (now {state.line()}) on Docker host {target.host!r}:"] + plan)
    return _apply(ctx, helper, target, lambda: docker.restart(name, timeout=stop_s),
                  f"restarted {name} (docker restart -t {stop_s})", bundle_dir)


def _restarter(helper: str) -> Callable[[Context, str | None, bool], int]:
    return lambda ctx, argument, apply: restart(ctx, helper, argument, apply)


ACTIONS: dict[str, Callable[[Context, str | None, bool], int]] = {
    "start-container": start_container,
    "restart-container": _restarter("restart-container"),
    "restart-engine": _restarter("restart-engine"),
    "restart-redis": _restarter("restart-redis"),
    "restart-postgres": _restarter("restart-postgres"),
    "diagnose-startup": diagnose_startup,
    "diagnose-engine": diagnose_engine,
    "check-messagebus": check_messagebus,
    "free-port": free_port,
    # -- helpers that fit a diagnosis (container and database states) --
    # Looked up at call time: fitting uses this module's _apply, _dry_run and numbered.
    "unpause-container": lambda ctx, argument, apply: fitting.unpause_container(ctx, argument, apply),
    "create-container": lambda ctx, argument, apply: fitting.create_container(ctx, argument, apply),
    "diagnose-memory": lambda ctx, argument, apply: fitting.diagnose_memory(ctx, argument, apply),
    "postgres-sessions": lambda ctx, argument, apply: fitting.postgres_sessions(ctx, argument, apply),
    # -- the guide's procedures (emergency restart, isolation, rebuild) --
    # Looked up at call time: procedures uses this module's wait_until_ready and numbered.
    "emergency-restart": lambda ctx, argument, apply: procedures.emergency_restart(ctx, argument, apply),
    "isolate-engine": lambda ctx, argument, apply: procedures.isolate_engine(ctx, argument, apply),
    "restore-engine": lambda ctx, argument, apply: procedures.restore_engine(ctx, argument, apply),
    "rebuild-engine": lambda ctx, argument, apply: procedures.rebuild_engine(ctx, argument, apply),
    "maintenance": windows.maintenance,
    # -- maintenance (the confined ones are run by --remediate) --
    "vacuum-analyze": maintenance.vacuum_analyze,
    "redis-rewrite-aof": maintenance.redis_rewrite_aof,
    "rotate-logs": maintenance.rotate_logs,
    "docker-cleanup": maintenance.docker_cleanup,
}
