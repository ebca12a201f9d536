"""Every platform container exists, runs, is healthy per Docker and is not restart-looping."""
from __future__ import annotations

from datetime import datetime, timezone

from checks.catalog import check


def _state(container_states, container, verdict) -> dict:
    __tracebackhide__ = True
    attrs = container_states.get(container.name, container.host)
    verdict.expect(attrs is not None, expected=f"container {container.name} to exist on {container.host}",
                   seen="no such container (docker ps -a does not list it)")
    state = attrs["State"]
    verdict.evidence("state", {k: state.get(k) for k in ("Status", "Running", "Restarting", "ExitCode",
                                                          "Error", "StartedAt", "FinishedAt", "OOMKilled")}
                     | {"RestartCount": attrs.get("RestartCount"), "Health": (state.get("Health") or {}).get("Status")})
    return attrs


@check("container-exists")
def test_container_exists(container, container_states, verdict):
    _state(container_states, container, verdict)


@check("container-running")
def test_container_running(container, container_states, verdict):
    state = _state(container_states, container, verdict)["State"]
    verdict.expect(state["Status"] == "running",
                   expected="status running",
                   seen=f"status {state['Status']} (exit code {state.get('ExitCode')}"
                        f"{', OOM-killed' if state.get('OOMKilled') else ''}{', ' + state['Error'] if state.get('Error') else ''})")


@check("container-healthy")
def test_container_healthy(container, container_states, verdict):
    state = _state(container_states, container, verdict)["State"]
    verdict.expect(state["Status"] == "running", expected="a running container reported healthy",
                   seen=f"status {state['Status']}, so no health at all")
    health = state.get("Health")
    verdict.expect(health is not None, expected="a Docker health check reporting healthy",
                   seen="no health check configured for this container (add one to the compose file)")
    last = (health.get("Log") or [{}])[-1]
    verdict.expect(health["Status"] == "healthy", expected="Docker health status healthy",
                   seen=f"{health['Status']} after {health.get('FailingStreak', 0)} failing probes"
                        f" (last probe exit {last.get('ExitCode')}: {str(last.get('Output', '')).strip()[:200]!r})")


@check("container-not-restart-looping")
def test_container_not_restart_looping(container, container_states, inventory, verdict):
    attrs = _state(container_states, container, verdict)
    state, restarts = attrs["State"], attrs.get("RestartCount", 0)
    limit = inventory.thresholds.restart_loop_count
    verdict.expect(not state.get("Restarting"), expected="not restarting",
                   seen=f"Docker is restarting it (restart #{restarts}, last exit code {state.get('ExitCode')})")
    up_s = _seconds_since(state.get("StartedAt"))
    # Many restarts long ago with a stable run since is history, not a loop.
    looping = restarts >= limit and up_s is not None and up_s < 300
    verdict.expect(not looping, expected=f"fewer than {limit} restarts or a stable run of 5 minutes",
                   seen=f"{restarts} restarts, up only {up_s:.0f}s" if up_s is not None else f"{restarts} restarts")


def _seconds_since(stamp: str | None) -> float | None:
    if not stamp or stamp.startswith("0001-"):
        return None
    # Docker writes nanoseconds; datetime takes microseconds.
    head, _, frac = stamp.rstrip("Z").partition(".")
    started = datetime.fromisoformat(head + ("." + frac[:6] if frac else "")).replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - started).total_seconds()
