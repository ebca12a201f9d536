"""Read-only diagnoses: why a container will not start (diagnose-startup), how an engine is doing (diagnose-engine).

They only look (Docker inspect, logs and stats; an HTTP GET) and print what
they saw, secrets masked, with the guide's advice as text. Nothing here
changes anything.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from observation.container_facts import explain_exit
from observation.docker_api import State
from observation.engines import health_samples
from observation.jsonpath import MISSING, lookup
from observation.known_errors import by_id, startup_errors
from observation.logs import ERRORS, SLOW
from observation.slow_answers import timing
from observation.stats import cpu_percent, memory_use
from observation.targets import engine_url

from .context import Context
from .errors import FAILURES, ContainerMissing
from .registry import command_for
from .targets import platform_containers, resolve

LOG_LINES = 50

# The guide's greps, shared with the log checks (observation/logs.py).
ERROR_LINE = ERRORS
SLOW_LINE = SLOW


# -- diagnose-startup -----------------------------------------------------------

def diagnose_startup(ctx: Context, argument: str | None, apply: bool = False) -> int:
    """The guide's "Container Won't Start": exit code, error, OOM, restarts, logs, limits, dependencies."""
    target = resolve(ctx.inventory, "diagnose-startup", argument)
    name, docker = target.container, ctx.docker(target.host)
    attrs = docker.inspect(name)
    logs = docker.logs(name, tail=LOG_LINES)
    state, host_config = State.of(attrs), attrs.get("HostConfig") or {}
    policy = host_config.get("RestartPolicy") or {}
    ctx.say(f"diagnose-startup {name} on Docker host {target.host!r} (read-only: changes nothing)")
    ctx.say(f"state: {state.line()}")
    ctx.say(f"exit code: {state.exit_code}")
    ctx.say(f"error (State.Error): {state.error or 'none'}")
    ctx.say(f"OOM-killed: {'yes' if state.oom_killed else 'no'}")
    ctx.say(f"restart count: {state.restarts} (restart policy: {policy.get('Name') or 'no'})")
    ctx.say(f"started {state.started_at or '-'}, finished {state.finished_at or '-'}")
    ctx.say(f"limits: {limits_line(host_config)}")
    dependencies = {spec.container: dependency_state(ctx, spec.container)
                    for spec in (ctx.inventory.postgres, ctx.inventory.redis)}
    ctx.say("dependencies: " + "; ".join(f"{dep} {seen}" for dep, seen in dependencies.items()))
    for line in startup_advice(logs, state, compose_service(attrs, name), name, dependencies, ctx.command):
        ctx.say(line)
    lines = logs.splitlines()[-LOG_LINES:]
    ctx.say(f"last {len(lines)} log lines (secrets masked):" if lines else "logs: empty")
    for line in lines:
        ctx.say(f"  | {line}")
    return 0


def dependency_state(ctx: Context, container: str) -> str:
    try:
        target = platform_containers(ctx.inventory)[container]
        return State.of(ctx.docker(target.host).inspect(container)).line()
    except ContainerMissing:
        return "missing"
    except FAILURES as exc:
        return f"unknown ({exc})"


def compose_service(attrs: dict, name: str) -> str:
    """The Compose service behind a container, for the guide's `docker compose` commands.

    >>> compose_service({"Config": {"Labels": {"com.docker.compose.service": "factor-engine"}}}, "x")
    'factor-engine'
    >>> compose_service({}, "nautilus-factor-engine")
    'factor-engine'
    """
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return labels.get("com.docker.compose.service") or name.removeprefix("nautilus-")


def limits_line(host_config: dict) -> str:
    """
    >>> limits_line({"Memory": 536870912, "NanoCpus": 1500000000})
    'memory 512 MiB, CPUs 1.5'
    >>> limits_line({"Memory": 0, "CpuQuota": 50000, "CpuPeriod": 100000})
    'memory no limit, CPUs 0.5 (CpuQuota 50000 of CpuPeriod 100000)'
    """
    memory = host_config.get("Memory") or 0
    text = f"memory {memory // 2**20} MiB" if memory else "memory no limit"
    if host_config.get("NanoCpus"):
        text += f", CPUs {host_config['NanoCpus'] / 1e9:g}"
    elif host_config.get("CpuQuota", 0) > 0:
        period = host_config.get("CpuPeriod") or 100000
        text += f", CPUs {host_config['CpuQuota'] / period:g} (CpuQuota {host_config['CpuQuota']} of CpuPeriod {period})"
    else:
        text += ", CPUs no limit"
    return text


def startup_advice(logs: str, state: State, service: str, name: str, dependencies: dict[str, str],
                   command: Callable[[str, str | None], str] = command_for) -> list[str]:
    """What the guide says to do about what was found; advice only, never done here.

    `command(helper, argument)` writes a helper's command line (the run's, with its inventory).

    >>> for line in startup_advice("ImportError: cannot import name 'MessagePriority' from 'x'", State.of({}),
    ...                            "factor-engine", "nautilus-factor-engine", {}):
    ...     print(line)
    known cause: the guide's factor-engine import error ("ImportError: cannot import name 'MessagePriority'" in the logs)
    fix (the guide's; advice only, nothing was done): rebuild the image without cache, then start it: docker compose build --no-cache factor-engine && docker compose up -d factor-engine
    """
    advice = []
    # The guide's Knowledge Base, one list with the check log-known-errors (observation/known_errors.yaml).
    known = [entry for entry in startup_errors() if entry.in_text(logs)]
    for entry in known:
        advice.append(f'known cause: the guide\'s {entry.summary or entry.id} ("{entry.error}" in the logs)')
    if known:
        advice.append("fix (the guide's; advice only, nothing was done): rebuild the image without cache, then start "
                      f"it: docker compose build --no-cache {service} && docker compose up -d {service}")
        if state.ready:
            advice.append(f"note: {name} is running now; those lines are from an earlier start")
    if state.oom_killed:
        advice.append("advice: killed by the kernel for exceeding its memory limit (State.OOMKilled): see its memory "
                      f"against the limit and its growth: {command('diagnose-memory', name)}; then find "
                      "the leak or raise the memory limit in the compose file")
    elif state.exit_code == 137:
        # 137 is 128 + SIGKILL: an OOM kill only when Docker says so; otherwise more memory would not help.
        advice.append(f"exit code 137: {explain_exit(137, False)}; Docker reports no OOM kill, so this is no memory "
                      "problem: look for who stopped or killed it (docker events, a stop that ran out of time)")
    if state.exit_code == 125:
        advice.append("advice: exit code 125 is a Docker daemon error: check `docker version` and the daemon's log")
    port_in_use = by_id()["port-in-use"]
    if port_in_use.in_text(logs) or port_in_use.in_line(state.error):
        advice.append(f"advice: a port of {name} is taken: {command('free-port', 'PORT')} (its port number for PORT) says who holds it")
    for dependency, seen in dependencies.items():
        if not seen.startswith("running"):
            advice.append(f"advice: dependency {dependency} is {seen.split(',')[0]}: "
                          f"{command('start-container', dependency)}")
    if not advice:
        advice.append("advice (the guide's common solutions): raise the memory limit if out of memory; check that "
                      "its ports are free; check its environment variables; rebuild the image: "
                      f"docker compose build {service}")
    return advice


# -- diagnose-engine ------------------------------------------------------------

def diagnose_engine(ctx: Context, argument: str | None, apply: bool = False) -> int:
    """Timed /health, one stats sample and the last hour's error and slow lines, taken at once."""
    target = resolve(ctx.inventory, "diagnose-engine", argument)
    engine, name, docker = target.engine, target.container, ctx.docker(target.host)
    limits = engine.limits(ctx.inventory.thresholds)
    url = engine_url(ctx.inventory, engine, engine.health_path)
    state = State.of(docker.inspect(name))
    with ThreadPoolExecutor(max_workers=3) as pool:
        # The check's own sampling: a slow answer is asked again and judged by the median of the tries.
        health = pool.submit(lambda: health_samples(ctx.inventory, [engine])[engine.name])
        stats = pool.submit(docker.stats, name) if state.status == "running" else None
        logs = pool.submit(docker.logs, name, since=int(time.time()) - 3600)
    ctx.say(f"diagnose-engine {engine.name} ({name} on Docker host {target.host!r}; read-only: changes nothing)")
    reply = health.result()
    status, elapsed_ms, body, error = reply.status, reply.elapsed_ms, reply.body, reply.error
    if error:
        ctx.say(f"health: GET {url} -> {error} after {elapsed_ms:.0f} ms")
    else:
        verdict = ("CRITICAL" if elapsed_ms > limits.response_critical_ms else
                   "SLOW" if elapsed_ms > limits.response_slow_ms else "OK")
        ctx.say(f"health: GET {url} -> HTTP {status} in {timing(reply)} ({verdict}; slow above "
                f"{limits.response_slow_ms:g} ms, critical above {limits.response_critical_ms:g} ms)")
        shown = json.dumps(ctx.redactor.redact(body)) if not isinstance(body, str) else body
        ctx.say(f"health body: {shown[:2000]}")
        field = lookup(body, engine.health.status) if isinstance(body, dict) else MISSING
        healthy = field in engine.health.healthy_values
        ctx.say(f"status field {engine.health.status!r}: "
                + ("missing" if field is MISSING else f"{field!r} ({'healthy' if healthy else 'NOT healthy'})"))
    ctx.say(f"container: {state.line()}")
    if stats is None:
        ctx.say("stats: not sampled (the container is not running)")
    else:
        try:
            ctx.say("stats: " + stats_line(stats.result(), limits.cpu_warning_pct, limits.memory_warning_pct))
        except FAILURES as exc:
            ctx.say(f"stats: not sampled ({exc})")
    lines = logs.result().splitlines()
    errors = [line for line in lines if ERROR_LINE.search(line)]
    slow = [line for line in lines if SLOW_LINE.search(line)]
    ctx.say(f"logs of the last hour ({len(lines)} lines): {len(errors)} error/exception/failed lines, "
            f"{len(slow)} slow/timeout/blocking lines")
    for label, found in (("error", errors), ("slow", slow)):
        for line in found[-3:]:
            ctx.say(f"  latest {label}: {line[:300]}")
    if error or (status is not None and status >= 500):
        ctx.say(f"next: {ctx.command('diagnose-startup', name)}; if it stays down: "
                f"{ctx.command('restart-engine', engine.name)}")
    return 0


def stats_line(stats: dict, cpu_warning_pct: float, memory_warning_pct: float) -> str:
    text = f"CPU {cpu_percent(stats):.1f} % (warning at {cpu_warning_pct:g} %)"
    memory = memory_use(stats)
    if memory:
        used, limit = memory
        text += (f", memory {used / 2**20:.0f} MiB of {limit / 2**20:.0f} MiB ({100 * used / limit:.1f} %; "
                 f"warning at {memory_warning_pct:g} %)")
    return text
