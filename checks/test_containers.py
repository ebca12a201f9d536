"""Every platform container exists, runs, is healthy per Docker and is not restart-looping."""
from __future__ import annotations

from datetime import datetime, timezone

from fixtures.spec import EMERGENCY, check

from .guide import FULL_HEALTH, STARTUP


def inspected(container, container_states, verdict) -> dict:
    """The container's `docker inspect`; fails the check when it does not exist."""
    __tracebackhide__ = True
    attrs = container_states.get(container.name, container.host)
    verdict.expect(attrs is not None, expected=f"container {container.name} to exist on {container.host}",
                   seen="no such container (docker ps -a does not list it)")
    state = attrs["State"]
    verdict.evidence("state", {k: state.get(k) for k in ("Status", "Running", "Restarting", "ExitCode",
                                                          "Error", "StartedAt", "FinishedAt", "OOMKilled")}
                     | {"RestartCount": attrs.get("RestartCount"), "Health": (state.get("Health") or {}).get("Status")})
    return attrs


@check("container-exists", "Platform container exists", tiers=EMERGENCY, severity="critical", guide=STARTUP,
       remedy="start-container")
def test_container_exists(container, container_states, verdict):
    inspected(container, container_states, verdict)


@check("container-running", "Platform container is running", tiers=EMERGENCY, severity="critical", guide=STARTUP,
       remedy="start-container")
def test_container_running(container, container_states, verdict):
    state = inspected(container, container_states, verdict)["State"]
    verdict.expect(state["Status"] == "running",
                   expected="status running",
                   seen=f"status {state['Status']} (exit code {state.get('ExitCode')}"
                        f"{', OOM-killed' if state.get('OOMKilled') else ''}{', ' + state['Error'] if state.get('Error') else ''})")


@check("container-healthy", "Docker reports the container healthy", tiers=EMERGENCY, severity="critical",
       guide=FULL_HEALTH, remedy="restart-container")
def test_container_healthy(container, container_states, verdict):
    state = inspected(container, container_states, verdict)["State"]
    verdict.expect(state["Status"] == "running", expected="a running container reported healthy",
                   seen=f"status {state['Status']}, so no health at all")
    health = state.get("Health")
    verdict.expect(health is not None, expected="a Docker health check reporting healthy",
                   seen="no health check configured for this container (add one to the compose file)")
    last = (health.get("Log") or [{}])[-1]
    verdict.expect(health["Status"] == "healthy", expected="Docker health status healthy",
                   seen=f"{health['Status']} after {health.get('FailingStreak', 0)} failing probes"
                        f" (last probe exit {last.get('ExitCode')}: {str(last.get('Output', '')).strip()[:200]!r})")


@check("container-not-restart-looping", "Container is not in a restart loop", tiers=EMERGENCY, severity="critical",
       guide=STARTUP, remedy="diagnose-startup")
def test_container_not_restart_looping(container, container_states, inventory, verdict):
    attrs = inspected(container, container_states, verdict)
    state, restarts = attrs["State"], attrs.get("RestartCount", 0)
    limit = inventory.thresholds.restart_loop_count
    verdict.expect(not state.get("Restarting"), expected="not restarting",
                   seen=f"Docker is restarting it (restart #{restarts}, last exit code {state.get('ExitCode')})")
    up_s = seconds_since(state.get("StartedAt"))
    # Many restarts long ago with a stable run since is history, not a loop.
    looping = restarts >= limit and up_s is not None and up_s < 300
    verdict.expect(not looping, expected=f"fewer than {limit} restarts or a stable run of 5 minutes",
                   seen=f"{restarts} restarts, up only {up_s:.0f}s" if up_s is not None else f"{restarts} restarts")


def seconds_since(stamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds since a Docker timestamp (nanosecond precision); None for Docker's zero time.

    >>> seconds_since("2025-08-01T10:00:00.123456789Z", datetime(2025, 8, 1, 10, 1, tzinfo=timezone.utc))
    59.876544
    >>> seconds_since("0001-01-01T00:00:00Z") is None
    True
    """
    if not stamp or stamp.startswith("0001-"):
        return None
    head, _, frac = stamp.rstrip("Z").partition(".")
    started = datetime.fromisoformat(head + ("." + frac[:6] if frac else "")).replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - started).total_seconds()
