"""The helpers that start and restart containers.

Each takes the context, its argument and whether to act, prints through
`ctx.say` and returns an exit status: 0 done (or nothing to do), 1 acted but
the container did not become ready. The dry run, confirmation, bundle and
audit are remediation/sequence.py's.
"""
from __future__ import annotations

from observation.docker_api import State

from .bundle import CONTENTS, default_dir
from .context import Context
from .readiness import started_and_ready, wait_step
from .sequence import Action, asks, carry_out, dry_run, numbered
from .targets import resolve

RESTART_STOP_TIMEOUT_S = 10  # docker restart -t 10: this long to stop gracefully, then killed
# The guide's graceful stop: PostgreSQL gets 60 s to checkpoint and close, Redis 30 s to write its snapshot.
POSTGRES_STOP_TIMEOUT_S = 60
REDIS_STOP_TIMEOUT_S = 30


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
        ctx.say(f"{name} {why}; nothing changed; diagnose: {ctx.command('diagnose-startup', name)}")
        return 1
    plan = numbered([f"start {name} through the Docker API (POST /containers/{name}/start, as `docker start {name}`)",
                     wait_step(ctx, state, name), f"append the outcome to the audit log {ctx.audit_path}"])
    if not apply:
        return dry_run(ctx, f"start-container {name} (now {state.line()})", plan)
    return carry_out(ctx, Action("start-container", name, plan), lambda bundle: started_and_ready(
        ctx, docker, name, lambda: docker.start(name), f"started {name} (docker start)"))


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
        wait_step(ctx, state, name),
        f"append the outcome to the audit log {ctx.audit_path}"])
    if not apply:
        return dry_run(ctx, f"{helper} {name} (now {state.line()}) on Docker host {target.host!r}", plan,
                       asks("the container name"))
    action = Action(helper, name, plan, confirm=name, bundle=(target, bundle_dir),
                    question=f"{helper} will restart {name} (now {state.line()}) on Docker host {target.host!r}:")
    return carry_out(ctx, action, lambda bundle: started_and_ready(
        ctx, docker, name, lambda: docker.restart(name, timeout=stop_s),
        f"restarted {name} (docker restart -t {stop_s})"))


# One function per helper name, as the helper table (remediation/registry.py) names them.

def restart_container(ctx: Context, argument: str | None, apply: bool) -> int:
    return restart(ctx, "restart-container", argument, apply)


def restart_engine(ctx: Context, argument: str | None, apply: bool) -> int:
    return restart(ctx, "restart-engine", argument, apply)


def restart_redis(ctx: Context, argument: str | None, apply: bool) -> int:
    return restart(ctx, "restart-redis", argument, apply)


def restart_postgres(ctx: Context, argument: str | None, apply: bool) -> int:
    return restart(ctx, "restart-postgres", argument, apply)
