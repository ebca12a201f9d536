"""Every platform container exists, runs, is healthy per Docker, is not restart-looping, and is set up to stay so.

All read the one `docker inspect` sample (container_states); the restart
history adds what the previous run saw.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

import pytest

from fixtures.spec import DAILY, EMERGENCY, WEEKLY, check
from observation.container_facts import (
    data_mount,
    explain_exit,
    is_root,
    limits_of,
    log_rotation,
)
from observation.networks import isolation_marker, network_names
from observation.restart_history import Seen, changes

from .guide import (
    BEST_PRACTICES,
    CONTAINER_ERRORS,
    DOCKER_TUNING,
    ENGINE_ERRORS,
    FULL_HEALTH,
    ISOLATION,
    STARTUP,
)


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
       remedy="start-container",
       needs=("docker-daemon-answers",))
def test_container_exists(container, container_states, verdict):
    if container_states.get(container.name, container.host) is None:
        verdict.remedy("create-container", container.name)  # start-container cannot start what does not exist
    inspected(container, container_states, verdict)


@check("container-running", "Platform container is running", tiers=EMERGENCY, severity="critical", guide=STARTUP,
       remedy="start-container",
       needs=("container-exists", "container-not-restart-looping"))  # a loop is the cause, "not running" its effect
def test_container_running(container, container_states, inventory, port_probes, verdict):
    state = inspected(container, container_states, verdict)["State"]
    held = choose_start_fix(container, state, inventory, port_probes, verdict)
    status = (f"status {state['Status']} (exit code {state.get('ExitCode')}"
              f"{', OOM-killed' if state.get('OOMKilled') else ''}{', ' + state['Error'] if state.get('Error') else ''})")
    # Another process on its port is the cause: the container could not take the port back if started.
    verdict.expect(state["Status"] == "running", expected="status running",
                   seen=f"{held}, while the container is {status}" if held else status)


def published_port(container, inventory) -> int | None:
    """The platform port the inventory gives this container (an engine's or a service's)."""
    if getattr(container, "engine", None) and container.engine in inventory.engines:
        return inventory.engines[container.engine].port
    return next((s.port for s in inventory.services.values() if s.container == container.name), None)


def choose_start_fix(container, state: dict, inventory, port_probes, verdict) -> str:
    """The fix that fits why it is not running: paused -> unpause; a restart loop -> its diagnosis; stopped while
    another process answers on its port -> who holds the port (starting it could not bind); else start-container.
    Returns what holds its port, in words, when that is the cause; else ""."""
    status = state.get("Status")
    if status == "paused":
        verdict.remedy("unpause-container", container.name)  # start-container refuses a paused container
    elif status == "restarting":
        verdict.remedy("diagnose-startup", container.name)
    elif status in ("exited", "created", "dead"):
        port = published_port(container, inventory)
        probe = port_probes.get((container.host, port)) if port else None
        if probe is not None and probe.open:
            verdict.remedy("free-port", str(port))
            return f"port {port} is held by another process (it accepts connections)"
    return ""


@check("container-healthy", "Docker reports the container healthy", tiers=EMERGENCY, severity="critical",
       guide=FULL_HEALTH, remedy="restart-container",
       needs=("container-running",))
def test_container_healthy(container, container_states, verdict):
    state = inspected(container, container_states, verdict)["State"]
    verdict.expect(state["Status"] == "running", expected="a running container reported healthy",
                   seen=f"status {state['Status']}, so no health at all")
    health = state.get("Health")
    if health is None:
        verdict.advise("add a healthcheck: to the compose service and recreate the container")
    verdict.expect(health is not None, expected="a Docker health check reporting healthy",
                   seen="no health check configured for this container")
    last = (health.get("Log") or [{}])[-1]
    verdict.expect(health["Status"] == "healthy", expected="Docker health status healthy",
                   seen=f"{health['Status']} after {health.get('FailingStreak', 0)} failing probes"
                        f" (last probe exit {last.get('ExitCode')}: {str(last.get('Output', '')).strip()[:200]!r})")


@check("container-on-platform-network", "Container is attached to the platform network", tiers=EMERGENCY,
       severity="critical", guide=ISOLATION, remedy="reconnect-network",
       needs=("container-running",))  # a stopped container keeps its networks; started, it is judged
def test_container_on_platform_network(container, container_states, inventory, verdict):
    attrs = inspected(container, container_states, verdict)
    network, on = inventory.platform_network, network_names(attrs)
    engine = getattr(container, "engine", None)
    marker = isolation_marker(engine) if engine else None
    if network not in on and marker is not None and marker.exists():
        # isolate-engine took it off on purpose; restore-engine puts it back and removes the marker.
        verdict.in_maintenance(f"{engine} in maintenance: isolated by isolate-engine (marker {marker})")
    verdict.evidence("networks", on)
    verdict.expect(network in on, expected=f"attached to the platform network {network}",
                   seen=f"on {', '.join(on)} only" if on else "on no network at all: nothing reaches it, and it "
                        "reaches neither Redis nor PostgreSQL")


@check("container-not-restart-looping", "Container is not in a restart loop", tiers=EMERGENCY, severity="critical",
       guide=STARTUP, remedy="diagnose-startup",
       needs=("container-exists",))
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


@check("container-not-oom-killed", "Container was not killed for running out of memory", tiers=DAILY,
       severity="critical", guide=ENGINE_ERRORS, remedy="diagnose-memory",
       needs=("container-exists",))
def test_container_not_oom_killed(container, container_states, verdict):
    attrs = inspected(container, container_states, verdict)
    state, memory = attrs["State"], (attrs.get("HostConfig") or {}).get("Memory") or 0
    limit = f"{memory / 2**20:.0f} MiB" if memory else "no limit"
    # Docker keeps OOMKilled after a policy restart but resets ExitCode to 0, so say which exit it was.
    since = (f"Docker restarted it at {state.get('StartedAt')} (restart #{attrs.get('RestartCount') or 0})"
             if state.get("Status") == "running" else f"now {state.get('Status')}, exit code {state.get('ExitCode')}")
    verdict.expect(not state.get("OOMKilled"), expected="State.OOMKilled false",
                   seen=f"OOM-killed when it last stopped ({state.get('FinishedAt')}, memory limit {limit}); {since}")


@check("container-exit-code", "Container's last exit code is 0", tiers=DAILY, severity="normal",
       guide=CONTAINER_ERRORS, remedy="diagnose-startup",
       needs=("container-exists",))
def test_container_exit_code(container, container_states, verdict):
    state = inspected(container, container_states, verdict)["State"]
    code = state.get("ExitCode") or 0
    verdict.measured("exit_code", code)
    error = f"; State.Error: {state['Error']}" if state.get("Error") else ""
    verdict.expect(code == 0, expected="exit code 0",
                   seen=f"exit code {code}: {explain_exit(code, bool(state.get('OOMKilled')))} "
                        f"(status {state.get('Status')}, finished {state.get('FinishedAt')}){error}")


@check("container-restart-count", "Container restarted fewer times than the limit", tiers=DAILY, severity="normal",
       guide=STARTUP, remedy="diagnose-startup",
       needs=("container-exists",))
def test_container_restart_count(container, container_states, inventory, verdict):
    attrs = inspected(container, container_states, verdict)
    restarts, limit = attrs.get("RestartCount") or 0, limits_of(container, inventory).restart_count_max
    verdict.measured("restart_count", restarts)
    verdict.expect(restarts < limit, expected=f"fewer than {limit} restarts by Docker",
                   seen=f"{restarts} restarts since the container was created (last exit code "
                        f"{attrs['State'].get('ExitCode')}, started {attrs['State'].get('StartedAt')})")


@check("container-restarts-since-last-run", "Container has not restarted since the previous run", tiers=DAILY,
       severity="normal", guide=STARTUP, remedy="diagnose-startup",
       needs=("container-exists",))
def test_container_restarts_since_last_run(container, container_states, restart_history, deploys, verdict):
    now = Seen.of(inspected(container, container_states, verdict))
    restart_history.record(container.host, container.name, now)  # this run is the next one's reference
    before = verdict.observed(restart_history.before(container.host, container.name))
    if before is None:
        pytest.skip(f"first run: no earlier run recorded {container.name} in {restart_history.path}; "
                    "the next run compares with this one")
    verdict.evidence("previous_run", asdict(before))
    found = changes(before, now)
    deploy = deploys.get((container.host, container.name))
    if deploy and not found:
        verdict.deploy(deploy)  # recreated (compose up of a new image, a redeploy): information, not a restart
        return
    verdict.expect(not found, expected=f"no restart since the previous run ({before.checked_at})",
                   seen="; ".join(found))


@check("container-healthcheck-configured", "Container has a Docker health check", tiers=DAILY, severity="normal",
       guide=DOCKER_TUNING,
       needs=("container-exists",))
def test_container_healthcheck_configured(container, container_states, verdict):
    attrs = inspected(container, container_states, verdict)
    test = ((attrs.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    verdict.evidence("healthcheck", (attrs.get("Config") or {}).get("Healthcheck"))
    ok = bool(test) and test[0] != "NONE"
    if not ok:
        verdict.advise("add a healthcheck: to the compose service and recreate the container")
    verdict.expect(ok, expected="a health check (Config.Healthcheck)",
                   seen="health check disabled (NONE)" if test else "no health check in the image or the compose file")


RESTARTING_POLICIES = ("unless-stopped", "always", "on-failure")


@check("container-restart-policy", "Container restarts by itself after a crash", tiers=DAILY, severity="normal",
       guide=DOCKER_TUNING,
       needs=("container-exists",))
def test_container_restart_policy(container, container_states, verdict):
    policy = (inspected(container, container_states, verdict).get("HostConfig") or {}).get("RestartPolicy") or {}
    ok = policy.get("Name") in RESTARTING_POLICIES
    if not ok:
        verdict.advise("set restart: unless-stopped on the service in the compose file and recreate the container")
    verdict.expect(ok, expected=f"a restart policy in {RESTARTING_POLICIES}",
                   seen=f"restart policy {policy.get('Name') or 'no'!r}")


@check("container-memory-limit", "Container has a memory limit", tiers=DAILY, severity="normal", guide=STARTUP,
       needs=("container-exists",))
def test_container_memory_limit(container, container_states, verdict):
    memory = (inspected(container, container_states, verdict).get("HostConfig") or {}).get("Memory") or 0
    verdict.measured("memory_limit_mib", round(memory / 2**20))
    if not memory:
        verdict.advise("set mem_limit on the service in the compose file and recreate the container")
    verdict.expect(memory > 0, expected="a memory limit (HostConfig.Memory > 0)",
                   seen="no memory limit: one leak can starve the whole host")


@check("container-non-root", "Container does not run as root", tiers=WEEKLY, severity="normal",
       guide=BEST_PRACTICES,
       needs=("container-exists",))
def test_container_non_root(container, container_states, verdict):
    user = (inspected(container, container_states, verdict).get("Config") or {}).get("User") or ""
    if is_root(user):
        verdict.advise("set user: on the service in the compose file, or USER in the image")
    verdict.expect(not is_root(user), expected="a non-root Config.User",
                   seen=f"user {user or '(unset, so root)'!r}")


@check("container-data-on-volumes", "PostgreSQL and Redis keep their data on a volume", tiers=WEEKLY,
       severity="critical", guide=DOCKER_TUNING, applies=lambda container: container.data_dir is not None,
       needs=("container-exists",))
def test_container_data_on_volumes(container, container_states, verdict):
    mounts = inspected(container, container_states, verdict).get("Mounts") or []
    data_dir = container.data_dir
    verdict.evidence("mounts", [{k: m.get(k) for k in ("Type", "Name", "Source", "Destination")} for m in mounts])
    found = data_mount(mounts, data_dir)
    others = ", ".join(f"{m.get('Type')} on {m.get('Destination')}" for m in mounts) or "no mounts"
    if found is None:
        verdict.advise(f"mount a named volume on {data_dir} in the compose file (copy the data out before the "
                       "container is recreated)")
    verdict.expect(found is not None, expected=f"a volume (or bind mount) holding {data_dir}",
                   seen=f"{others}: the data lives in the container and is lost when it is recreated")


@check("container-log-rotation", "Container logs rotate", tiers=WEEKLY, severity="normal", guide=DOCKER_TUNING,
       needs=("container-exists",))
def test_container_log_rotation(container, container_states, verdict):
    config = (inspected(container, container_states, verdict).get("HostConfig") or {}).get("LogConfig") or {}
    verdict.evidence("log_config", config)
    rotates, how = log_rotation(config)
    if not rotates:
        verdict.advise("set logging: {driver: json-file, options: {max-size: 10m, max-file: \"3\"}} on the service in "
                       "the compose file")
    verdict.expect(rotates, expected="a log driver that keeps logs and rotates them (json-file or local with "
                                     "max-size, or journald/syslog/...)", seen=how)
