"""The guide's emergency procedures as helpers: emergency restart, single-engine isolation and restore, rebuild.

Safe by default, like every helper: without `apply` they print the numbered
plan and change nothing; with it they ask (`ctx.confirm`), write the
diagnostics bundle, act through the Docker API and append one audit line.
What the guide's scripts do and these never do: `docker kill $(docker ps -q)`,
`docker container/network/volume prune`, `docker-compose down` (which removes
containers). Containers are only stopped and started (or, for rebuild,
recreated by Compose), so volumes, backups and data stay where they are.
PostgreSQL and Redis get the guide's 60 s to stop before Docker may kill them.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from observation.concurrent import in_parallel
from observation.docker_api import Docker, State
from observation.engines import health_samples
from observation.http import request
from observation.jsonpath import lookup
from observation.networks import ISOLATION_DIR, isolation_marker, networks_of
from observation.ports import probe_ports
from observation.redis_bus import connect_redis
from observation.stats import cpu_percent, memory_use
from observation.targets import engine_url
from observation.targets import ports as port_targets

from . import compose, windows
from .bundle import CONTENTS, default_dir, render
from .context import Context
from .errors import FAILURES, RemediationError, Unobservable
from .networks import connect
from .readiness import wait_until_ready
from .sequence import Action, asks, carry_out, dry_run, failure, numbered
from .targets import Target, platform_containers, resolve

INFRA_STOP_S = 60  # the guide's `timeout 60 docker-compose down`: PostgreSQL and Redis are never killed before
APP_STOP_S = 10  # engines, backend, frontend: Docker's and Compose's default (the guide's `down --timeout 10`)
VERIFY_S = 15  # pg_isready, Redis PING and the backend's /health are retried this long after "healthy"
ISOLATION_LOG_LINES = 100  # the guide's isolation report: `docker logs --tail 100`
NEVER = "nothing is killed, removed or pruned; volumes and backups are not touched"


# -- Docker calls the Docker wrapper does not have yet -------------------------------------------

def _api(docker: Docker, what: str, name: str, method: str, *args, **kwargs) -> Any:
    """One low-level API call with the wrapper's timeouts and one-line failures."""
    return docker._call(what, name, getattr(docker.api, method), *args, **kwargs)


def stop(docker: Docker, name: str, timeout_s: int) -> None:
    """`docker stop -t N`: SIGTERM, then Docker kills only after N s (the HTTP timeout grows by N)."""
    _api(docker, f"stop {name}", name, "stop", name, timeout=timeout_s)


def exec_in(docker: Docker, name: str, command: list[str]) -> tuple[int | None, str]:
    """`docker exec NAME COMMAND`: its exit code and output (bounded by the API timeout)."""
    created = _api(docker, f"exec in {name}", name, "exec_create", name, command)
    output = _api(docker, f"exec in {name}", name, "exec_start", created["Id"])
    code = _api(docker, f"exec in {name}", name, "exec_inspect", created["Id"]).get("ExitCode")
    return code, (output.decode(errors="replace") if isinstance(output, bytes) else str(output or "")).strip()


# -- emergency-restart ----------------------------------------------------------------------------

@dataclass
class Phase:
    title: str
    targets: list[Target]
    stop_s: int


def phases(ctx: Context) -> list[Phase]:
    """The guide's start order: infrastructure, backend, engines, frontend (and every other platform service)."""
    inv = ctx.inventory
    every = platform_containers(inv)
    infra = [every[c] for c in (inv.postgres.container, inv.redis.container) if c in every]
    backend = inv.services.get("backend")
    back = [every[backend.container]] if backend and backend.container in every else []
    engines = sorted((t for t in every.values() if t.engine), key=lambda t: t.engine.port)
    taken = {t.container for t in infra + back + engines}
    rest = sorted((t for t in every.values() if t.container not in taken), key=lambda t: t.container)
    found = [Phase("infrastructure (PostgreSQL, Redis)", infra, INFRA_STOP_S), Phase("backend", back, APP_STOP_S),
             Phase(f"engines ({len(engines)}, all at once)", engines, APP_STOP_S),
             Phase("frontend and the other platform services", rest, APP_STOP_S)]
    return [p for p in found if p.targets]


def _names(targets: list[Target]) -> str:
    return ", ".join(t.container for t in targets)


def emergency_plan(ctx: Context, order: list[Phase], bundle_dir: Path) -> list[str]:
    inv = ctx.inventory
    steps = [f"save the pre-restart diagnostics to {bundle_dir}/: {CONTENTS}"]
    for phase in reversed(order):
        steps.append(f"stop {phase.title}: {_names(phase.targets)} (POST /containers/NAME/stop?t={phase.stop_s}, as "
                     f"`docker stop -t {phase.stop_s}`: {phase.stop_s} s to stop gracefully before Docker kills)")
    for number, phase in enumerate(order, 1):
        step = (f"phase {number}, {phase.title}: start {_names(phase.targets)} (docker start), wait up to "
                f"{ctx.ready_timeout_s:.0f} s until running and healthy")
        if phase.stop_s == INFRA_STOP_S:
            step += (f"; verify `pg_isready` inside {inv.postgres.container} (docker exec) and a Redis PING at "
                     f"{inv.redis.host}:{inv.redis.port}, each retried for {VERIFY_S} s")
        elif _backend_url(ctx) and any(t.container == inv.services["backend"].container for t in phase.targets):
            step += f"; verify GET {_backend_url(ctx)} answers 200 within {VERIFY_S} s"
        steps.append(step)
    steps.append(f"post-restart validation: a TCP connect to every platform port and every engine's /health, "
                 f"written to {bundle_dir}/post-restart-validation.json and printed")
    steps.append(f"append the outcome to the audit log {ctx.audit_path}")
    return numbered(steps) + [f"a phase that fails stops the procedure (exit 1) and says what is left down; "
                                   f"{NEVER}"]


def emergency_restart(ctx: Context, argument: str | None, apply: bool) -> int:
    """The guide's "Complete System Restart (Emergency)", without its kill and prunes."""
    if argument:
        raise RemediationError(f"emergency-restart: takes no target (got {argument!r}); it restarts the platform")
    order = phases(ctx)
    everything = [t for p in order for t in p.targets]
    states = _states(ctx, everything)  # refuses when a container is missing, before anything changes
    label = Target("platform", ctx.inventory.hosts[0].name)
    bundle_dir = ctx.bundle_dir or default_dir("emergency-restart", label)
    plan = emergency_plan(ctx, order, bundle_dir)
    running = sum(s.status == "running" for s in states.values())
    header = f"emergency-restart of {len(everything)} platform containers ({running} running now)"
    project = ctx.inventory.compose_project
    if not apply:
        return dry_run(ctx, header, plan, asks(repr(project)))

    def act(bundle: Path) -> tuple[str, int]:
        started = ctx.clock()
        outcome, code = _restart_in_phases(ctx, order, bundle)
        return outcome + f" ({ctx.clock() - started:.0f} s)", code
    action = Action("emergency-restart", "platform", plan, confirm=project, bundle=(label, bundle_dir),
                    question=f"emergency-restart will stop and start every platform container of {project!r}:",
                    left_as=lambda exc: f"{failure(exc)}; left down: {_left_down(ctx, everything)}")
    return carry_out(ctx, action, act)


def _restart_in_phases(ctx: Context, order: list[Phase], bundle: Path) -> tuple[str, int]:
    for phase in reversed(order):
        ctx.say(f"stopping {phase.title}: {_names(phase.targets)} ({phase.stop_s} s each to stop gracefully)")
        in_parallel(lambda t, s=phase.stop_s: stop(ctx.docker(t.host), t.container, s), phase.targets)
    everything = [t for p in order for t in p.targets]
    for number, phase in enumerate(order, 1):
        ctx.say(f"phase {number}, {phase.title}: starting {_names(phase.targets)}")
        problem = _start_phase(ctx, phase)
        if problem:
            return (f"emergency-restart stopped at phase {number} ({phase.title}): {problem}; "
                    f"left down: {_left_down(ctx, everything)}"), 1
    bad = validate(ctx, bundle)
    if bad:
        return f"emergency-restart done, but the post-restart validation failed: {'; '.join(bad)}", 1
    return f"emergency-restart done: {len(everything)} containers restarted in {len(order)} phases, all validated", 0


def _start_phase(ctx: Context, phase: Phase) -> str | None:
    """Start the phase's containers at once and wait for them; the first problem, or None."""
    in_parallel(lambda t: ctx.docker(t.host).start(t.container), phase.targets)
    waits = in_parallel(lambda t: wait_until_ready(ctx, ctx.docker(t.host), t.container), phase.targets)
    for _ready, line in waits:
        ctx.say(line)
    failed = [line for ready, line in waits if not ready]
    if failed:
        return failed[0]
    names = {t.container for t in phase.targets}
    if ctx.inventory.postgres.container in names:
        return _retry(ctx, lambda: _pg_isready(ctx)) or _retry(ctx, lambda: _redis_ping(ctx))
    backend = ctx.inventory.services.get("backend")
    if backend and backend.container in names and _backend_url(ctx):
        return _retry(ctx, lambda: _backend_health(ctx))
    return None


def _retry(ctx: Context, probe: Callable[[], tuple[bool, str]]) -> str | None:
    """Probe until it passes or VERIFY_S is up; says the outcome; the last failure, or None."""
    started = ctx.clock()
    while True:
        ok, line = probe()
        if ok or ctx.clock() - started >= VERIFY_S:
            ctx.say(line)
            return None if ok else line
        ctx.sleep(1)


def _pg_isready(ctx: Context) -> tuple[bool, str]:
    pg = ctx.inventory.postgres
    command = ["pg_isready", "-h", "127.0.0.1", "-p", str(pg.internal_port), "-U", pg.user, "-d", pg.dbname, "-t", "5"]
    try:
        code, output = exec_in(ctx.docker(platform_containers(ctx.inventory)[pg.container].host), pg.container,
                               command)
    except FAILURES as exc:
        return False, f"pg_isready in {pg.container} could not run: {exc}"
    said = output.splitlines()[-1] if output else "no output"
    return code == 0, f"pg_isready in {pg.container}: exit {code} ({said})"


def _redis_ping(ctx: Context) -> tuple[bool, str]:
    spec = ctx.inventory.redis
    try:
        connect_redis(ctx.inventory).close()  # PINGs with the inventory's connect and read timeouts
    except Unobservable as exc:
        return False, f"Redis PING failed: {exc}"
    return True, f"Redis PING at {spec.host}:{spec.port}: PONG"


def _backend_url(ctx: Context) -> str | None:
    inv, backend = ctx.inventory, ctx.inventory.services.get("backend")
    if not backend or not backend.health_path:
        return None
    return f"http://{inv.host(backend.host).address}:{backend.port}{backend.health_path}"


def _backend_health(ctx: Context) -> tuple[bool, str]:
    url, timeouts = _backend_url(ctx), ctx.inventory.timeouts
    sample = request(None, url, connect_timeout_s=timeouts.connect_s, read_timeout_s=timeouts.read_s)
    seen = f"HTTP {sample.status}" if sample.status else sample.error
    return sample.status == 200, f"backend {url}: {seen}"


def validate(ctx: Context, bundle: Path) -> list[str]:
    """The guide's post-restart validation: ports and engine /health, written to the bundle and printed."""
    inv = ctx.inventory
    targets = port_targets(inv, None)[0]
    engines = inv.engine_list()
    probes = probe_ports(targets, inv.timeouts.connect_s)
    health = health_samples(inv, engines)
    lines, bad, report = [], [], {"ports": {}, "engines": {}}
    for t in targets:
        probe = probes[(t.host, t.port)]
        report["ports"][f"{t.port}@{t.host}"] = {"owner": t.owner, "open": probe.open, "error": probe.error}
        lines.append(f"port {t.port} ({t.owner}): " + ("open" if probe.open else f"CLOSED ({probe.error})"))
        if not probe.open:
            bad.append(f"port {t.port} ({t.owner}) closed")
    for engine in engines:
        sample, fields = health[engine.name], engine.health
        body = sample.json or {}
        status = lookup(body, fields.status)
        # An engine whose /health has no bus flag (inventory messagebus: false) is judged on its status alone.
        bus = f", messagebus {lookup(body, fields.messagebus)!r}" if fields.reports("messagebus") else ""
        healthy = sample.status == 200 and status in fields.healthy_values
        report["engines"][engine.name] = {**sample.evidence(), "healthy": healthy}
        seen = f"HTTP {sample.status}, status {status!r}{bus}" if sample.status else sample.error
        lines.append(f"{engine.name} engine {engine_url(inv, engine, engine.health_path)}: "
                     + ("healthy" if healthy else "NOT HEALTHY") + f" ({seen})")
        if not healthy:
            bad.append(f"{engine.name} engine not healthy ({seen})")
    report["validated_at"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    (bundle / "post-restart-validation.json").write_text(render(report, ctx.redactor))
    (bundle / "post-restart-validation.log").write_text(render("\n".join(lines) + "\n", ctx.redactor))
    ctx.say(f"post-restart validation (saved to {bundle}/post-restart-validation.json):")
    for line in lines:
        ctx.say(f"  {line}")
    return bad


def _states(ctx: Context, targets: list[Target]) -> dict[str, State]:
    def one(t: Target):
        try:
            return State.of(ctx.docker(t.host).inspect(t.container))
        except FAILURES as exc:
            return exc
    found = dict(zip([t.container for t in targets], in_parallel(one, targets)))
    missing = [name for name, s in found.items() if isinstance(s, BaseException)]
    if missing:
        raise RemediationError(f"cannot restart the platform: {found[missing[0]]}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                               + "; create missing containers first (docker compose up -d SERVICE); nothing changed")
    return found


def _left_down(ctx: Context, targets: list[Target]) -> str:
    try:
        states = in_parallel(lambda t: State.of(ctx.docker(t.host).inspect(t.container)), targets)
    except FAILURES as exc:
        return f"unknown ({exc})"
    down = [t.container for t, s in zip(targets, states) if s.status != "running"]
    return ", ".join(down) or "nothing"


# -- isolate-engine / restore-engine --------------------------------------------------------------

def marker_path(engine: str) -> Path:
    return isolation_marker(engine, ISOLATION_DIR)


def read_marker(engine: str) -> dict | None:
    try:
        return json.loads(marker_path(engine).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RemediationError(f"the isolation marker {marker_path(engine)} cannot be read ({exc}); "
                               "fix or remove it by hand") from None


def isolation_report(ctx: Context, docker: Docker, name: str, target: Target) -> str:
    """The guide's isolation report: container state, one stats sample, the last 100 log lines, /health."""
    attrs = docker.inspect(name)
    state = State.of(attrs)
    stats, logs, health = in_parallel(lambda f: f(), [
        lambda: _or_error(lambda: docker.stats(name)) if state.status == "running" else "not running: no stats",
        lambda: _or_error(lambda: docker.logs(name, tail=ISOLATION_LOG_LINES)),
        lambda: request(None, engine_url(ctx.inventory, target.engine, target.engine.health_path),
                        connect_timeout_s=ctx.inventory.timeouts.connect_s,
                        read_timeout_s=ctx.inventory.timeouts.read_s).evidence()])
    usage = _usage(stats) if isinstance(stats, dict) else stats
    return "\n".join([
        "=== Engine Isolation Report ===", f"Engine: {target.engine.name}", f"Container: {name}",
        f"Timestamp: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        "", f"Container Status: {state.line()}", "", f"Resource Usage: {usage}",
        "", f"Health Check: {json.dumps(health)}", "", f"Recent Logs (last {ISOLATION_LOG_LINES} lines):", logs, ""])


def _usage(stats: dict) -> str:
    """One `docker stats --no-stream` line.

    >>> _usage({"memory_stats": {"usage": 300 << 20, "limit": 1000 << 20, "stats": {}}})
    'CPU 0.0 %, memory 300.0 MiB of 1000.0 MiB (30.0 %)'
    """
    memory = memory_use(stats)
    used = (f"{memory[0] / 2**20:.1f} MiB of {memory[1] / 2**20:.1f} MiB ({100 * memory[0] / memory[1]:.1f} %)"
            if memory and memory[1] else "not sampled")
    return f"CPU {cpu_percent(stats):.1f} %, memory {used}"


def _or_error(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except FAILURES as exc:
        return f"unavailable: {exc}"


def isolate_engine(ctx: Context, argument: str | None, apply: bool) -> int:
    """The guide's "Single Engine Isolation (Emergency)": report, stop, disconnect, marker."""
    target = resolve(ctx.inventory, "isolate-engine", argument)
    name, docker, engine = target.container, ctx.docker(target.host), target.engine.name
    restore = ctx.command("restore-engine", engine)
    existing = read_marker(engine)
    if existing:
        raise RemediationError(f"{engine} is already isolated (since {existing.get('isolated_at')}, marker "
                               f"{marker_path(engine)}); restore it with {restore}")
    attrs = docker.inspect(name)
    state, networks = State.of(attrs), networks_of(attrs)
    bundle_dir = ctx.bundle_dir or default_dir("isolate-engine", target)
    plan = numbered([
        f"save the pre-restart diagnostics and the guide's isolation report (state, one stats sample, last "
        f"{ISOLATION_LOG_LINES} log lines, /health) to {bundle_dir}/",
        f"stop {name} gracefully (docker stop -t {APP_STOP_S})",
        f"disconnect it from {', '.join(networks) or 'no network (it is on none)'} (docker network disconnect)",
        f"write the isolation marker {marker_path(engine)} (engine, time, networks) for restore-engine",
        f"open a maintenance window for {engine} until restore-engine closes it, so its checks say "
        "'in maintenance' instead of paging",
        f"append the outcome to the audit log {ctx.audit_path}"])
    header = f"isolate-engine {engine} ({name}, now {state.line()}) on Docker host {target.host!r}"
    if not apply:
        return dry_run(ctx, header, plan, asks(name))

    def act(bundle: Path) -> tuple[str, int]:
        (bundle / "isolation-report.log").write_text(render(isolation_report(ctx, docker, name, target),
                                                            ctx.redactor))
        ctx.say(f"isolation report saved to {bundle}/isolation-report.log")
        stop(docker, name, APP_STOP_S)
        ctx.say(f"stopped {name} (docker stop -t {APP_STOP_S})")
        marker = {"engine": engine, "container": name, "docker_host": target.host,
                  "isolated_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "networks": networks, "bundle": str(bundle)}
        ISOLATION_DIR.mkdir(parents=True, exist_ok=True)
        marker_path(engine).write_text(json.dumps(marker, indent=2) + "\n")  # before disconnecting: restorable
        for network in networks:
            _api(docker, f"disconnect {name} from {network}", name, "disconnect_container_from_network", name,
                 network)
            ctx.say(f"disconnected {name} from {network}")
        window = windows.open_window(
            ctx, f"engine:{engine}", f"isolated by isolate-engine at {marker['isolated_at']} (restore with "
            f"{restore})", "isolate-engine", until=None)
        ctx.say(f"{engine} {window.line()}")
        ctx.say(f"restore with: {restore}")
        return f"{name} isolated: stopped and on no network; marker {marker_path(engine)}", 0
    action = Action("isolate-engine", name, plan, confirm=name, bundle=(target, bundle_dir),
                    question=f"isolate-engine will stop {name} and take it off its networks:")
    return carry_out(ctx, action, act)


def restore_engine(ctx: Context, argument: str | None, apply: bool) -> int:
    """Undo isolate-engine: reconnect to the networks the marker names, start, wait until healthy, remove the marker."""
    target = resolve(ctx.inventory, "restore-engine", argument)
    name, docker, engine = target.container, ctx.docker(target.host), target.engine.name
    marker = read_marker(engine)
    if not marker:
        raise RemediationError(f"{engine} is not isolated (no marker {marker_path(engine)}); nothing to restore; "
                               f"to start it: {ctx.command('start-container', name)}")
    state = State.of(docker.inspect(name))
    on_now = set(networks_of(docker.inspect(name)))
    missing = {n: spec for n, spec in marker.get("networks", {}).items() if n not in on_now}
    bundle_dir = ctx.bundle_dir or default_dir("restore-engine", target)
    plan = numbered([
        f"save the pre-restart diagnostics to {bundle_dir}/: {CONTENTS}",
        f"reconnect {name} to {', '.join(missing) or 'nothing (already on its networks)'} with its aliases "
        "(docker network connect)",
        f"start {name} (docker start) and wait up to {ctx.ready_timeout_s:.0f} s until running and healthy",
        f"remove the isolation marker {marker_path(engine)} and close {engine}'s maintenance window",
        f"append the outcome to the audit log {ctx.audit_path}"])
    header = f"restore-engine {engine} ({name}, now {state.line()}, isolated at {marker.get('isolated_at')})"
    if not apply:
        return dry_run(ctx, header, plan, asks(name))

    def act(bundle: Path) -> tuple[str, int]:
        for network, spec in missing.items():
            connect(docker, name, network, spec)
            ctx.say(f"reconnected {name} to {network}")
        if state.status != "running":
            docker.start(name)
            ctx.say(f"started {name} (docker start)")
        ready, outcome = wait_until_ready(ctx, docker, name)
        if ready:
            marker_path(engine).unlink(missing_ok=True)
            ctx.say(f"removed the isolation marker {marker_path(engine)}")
            if windows.close_window(ctx, f"engine:{engine}", "restore-engine"):
                ctx.say(f"closed the maintenance window of {engine}: its checks judge it again")
        return outcome, 0 if ready else 1
    action = Action("restore-engine", name, plan, confirm=name, bundle=(target, bundle_dir),
                    question=f"restore-engine will put {name} back on its networks and start it:")
    return carry_out(ctx, action, act)


# -- rebuild-engine -------------------------------------------------------------------------------

def rebuild_engine(ctx: Context, argument: str | None, apply: bool) -> int:
    """The guide's factor-engine fix: stop, rebuild without cache (when it has a build), recreate, wait healthy."""
    target = resolve(ctx.inventory, "rebuild-engine", argument)
    name, docker = target.container, ctx.docker(target.host)
    attrs = docker.inspect(name)
    state, where = State.of(attrs), compose.compose_service(ctx, attrs, name)
    build = compose.has_build(ctx, where)
    bundle_dir = ctx.bundle_dir or default_dir("rebuild-engine", target)
    compose_line = " ".join(where.argv(ctx.inventory.compose_command))
    steps = [f"save the pre-restart diagnostics to {bundle_dir}/: {CONTENTS}",
             f"stop {name} gracefully (docker stop -t {APP_STOP_S})"]
    steps.append(f"rebuild its image: {compose_line} build --no-cache {where.service}" if build else
                 f"no rebuild: service {where.service} has no build section (its image is built elsewhere), "
                 "so rebuild = recreate")
    steps += [f"recreate the container: {compose_line} up -d --force-recreate --no-deps {where.service}",
              f"wait up to {ctx.ready_timeout_s:.0f} s until {name} is running and healthy",
              f"append the outcome to the audit log {ctx.audit_path}"]
    plan = numbered(steps)
    header = f"rebuild-engine {target.engine.name} ({name}, now {state.line()}) on Docker host {target.host!r}"
    if not apply:
        return dry_run(ctx, header, plan, asks(name))

    def act(bundle: Path) -> tuple[str, int]:
        stop(docker, name, APP_STOP_S)
        ctx.say(f"stopped {name} (docker stop -t {APP_STOP_S})")
        if build:
            compose.run(ctx, where, "build", "--no-cache", where.service)
            ctx.say(f"rebuilt the image of {where.service} without cache")
        else:
            ctx.say(f"{where.service} has no build section: rebuild = recreate")
        compose.run(ctx, where, "up", "-d", "--force-recreate", "--no-deps", where.service)
        ctx.say(f"recreated {name} (compose up -d --force-recreate --no-deps {where.service})")
        ready, outcome = wait_until_ready(ctx, docker, name)
        return outcome, 0 if ready else 1
    action = Action("rebuild-engine", name, plan, confirm=name, bundle=(target, bundle_dir),
                    question=f"rebuild-engine will stop, {'rebuild, ' if build else ''}and recreate {name}:")
    return carry_out(ctx, action, act)
