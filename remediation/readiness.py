"""Waiting for a container a helper started: until it is running (and healthy, when it has a health check)."""
from __future__ import annotations

from observation.docker_api import Docker, State

from .context import Context

POLL_S = 1


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
                           f"next: {ctx.command('diagnose-startup', name)}")
        ctx.sleep(min(POLL_S, max(0.0, ctx.ready_timeout_s - elapsed)))


def wait_step(ctx: Context, state: State, name: str) -> str:
    """The plan's line for that wait."""
    until = "running and healthy" if state.health else "running"
    return f"wait up to {ctx.ready_timeout_s:.0f} s (checking every {POLL_S} s) until {name} is {until}"


def started_and_ready(ctx: Context, docker: Docker, name: str, act, done: str) -> tuple[str, int]:
    """Act (start, unpause, restart, create), say so, wait: the outcome and 0, or 1 when it did not get ready."""
    act()
    ctx.say(done)
    ready, outcome = wait_until_ready(ctx, docker, name)
    return outcome, 0 if ready else 1
