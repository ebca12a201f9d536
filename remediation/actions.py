"""The helpers. Each takes the context, its target and whether to act, and returns lines to print.

Read-only helpers just look. The others describe what they would do unless
`apply` is true; the disruptive ones also get the operator's confirmation
(handled by the CLI) and write a diagnostics bundle before acting.
"""
from __future__ import annotations

import pwd
import re
import time
from pathlib import Path

import redis
import requests

from .bundle import write_bundle
from .context import Context, RemediationError
from .registry import HELPERS

KNOWN_STARTUP_ERRORS = {
    "ImportError: cannot import name 'MessagePriority'":
        "the guide's factor-engine import error: rebuild the image without cache "
        "(docker compose build --no-cache factor-engine), then start it",
    "unexpected keyword argument 'client_id'":
        "the guide's MessageBusConfig error: fix the engine's MessageBusConfig arguments and rebuild",
    "address already in use": "the port is taken: python -m remediation free-port <port>",
}


def resolve_container(ctx: Context, helper: str, target: str | None) -> str:
    """The container a helper acts on, from an engine name, a container name or nothing."""
    kind = HELPERS[helper].target
    inv = ctx.inventory
    if helper == "restart-redis":
        return inv.redis.container
    if helper == "restart-postgres":
        return inv.postgres.container
    known = {e.name: e.container for e in inv.engines.values()}
    if kind == "engine":
        if target not in known:
            raise RemediationError(f"unknown engine {target!r}; known: {', '.join(sorted(known))}")
        return known[target]
    containers = set(known.values()) | {s.container for s in inv.services.values() if s.container}
    name = known.get(target, target)
    if name not in containers:
        raise RemediationError(f"unknown container {target!r}; known: {', '.join(sorted(containers))}")
    return name


def wait_until_ready(ctx: Context, name: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        container = ctx.container(name)
        health = container.attrs["State"].get("Health", {}).get("Status")
        if container.status == "running" and health in (None, "healthy"):
            return f"{name} is running" + (" and healthy" if health else "")
        if time.monotonic() > deadline:
            return f"{name} is {container.status}" + (f" ({health})" if health else "") + f" after {timeout_s:.0f}s"
        time.sleep(1)


def start_container(ctx: Context, target: str, apply: bool) -> list[str]:
    name = resolve_container(ctx, "start-container", target)
    container = ctx.container(name)
    if container.status == "running":
        return [f"{name} is already running; nothing to do"]
    if not apply:
        return [f"1. docker start {name} (it is {container.status} now)", "2. wait up to 60 s until running/healthy",
                "dry run: nothing changed; add --apply to do it"]
    container.start()
    outcome = wait_until_ready(ctx, name)
    ctx.audit("start-container", name, outcome)
    return [f"started {name}", outcome]


def restart(ctx: Context, helper: str, target: str | None, apply: bool) -> list[str]:
    name = resolve_container(ctx, helper, target)
    ctx.container(name)  # refuses a container that does not exist before promising anything
    if not apply:
        return [f"1. write a diagnostics bundle (container states, last 50 log lines, engine health) under reports/out/bundles/",
                f"2. docker restart {name} (10 s to stop gracefully)", "3. wait up to 60 s until running/healthy",
                "dry run: nothing changed; add --apply to do it (you will be asked to confirm)"]
    bundle = write_bundle(ctx, helper, name)
    ctx.container(name).restart(timeout=10)
    outcome = wait_until_ready(ctx, name)
    ctx.audit(helper, name, outcome, bundle)
    return [f"diagnostics saved to {bundle}", f"restarted {name}", outcome]


def diagnose_startup(ctx: Context, target: str, apply: bool) -> list[str]:
    name = resolve_container(ctx, "diagnose-startup", target)
    attrs = ctx.container(name).attrs
    state, host = attrs["State"], attrs["HostConfig"]
    logs = ctx.redactor.redact_text(ctx.container(name).logs(tail=50).decode(errors="replace"))
    lines = [f"{name}: status {state['Status']}, exit code {state.get('ExitCode')}, restarts {attrs.get('RestartCount')}"
             f"{', OOM-killed' if state.get('OOMKilled') else ''}",
             f"error: {state.get('Error') or 'none'}",
             f"limits: memory {host.get('Memory') or 'none'} bytes, CPU quota {host.get('CpuQuota') or 'none'}"]
    for dep in (ctx.inventory.postgres.container, ctx.inventory.redis.container):
        try:
            lines.append(f"dependency {dep}: {ctx.container(dep).status}")
        except RemediationError:
            lines.append(f"dependency {dep}: missing")
    lines += [f"known cause: {advice}" for text, advice in KNOWN_STARTUP_ERRORS.items() if text in logs]
    lines += ["last log lines:"] + ["  " + line for line in logs.splitlines()[-20:]]
    return lines


def diagnose_engine(ctx: Context, target: str, apply: bool) -> list[str]:
    name = resolve_container(ctx, "diagnose-engine", target)
    engine = ctx.inventory.engines[target]
    url = f"http://{ctx.inventory.host(engine.host).address}:{engine.port}{engine.health_path}"
    started = time.perf_counter()
    try:
        reply = requests.get(url, timeout=5)
        lines = [f"GET {url}: HTTP {reply.status_code} in {(time.perf_counter() - started) * 1000:.0f} ms: "
                 f"{ctx.redactor.redact_text(reply.text[:300])}"]
    except requests.RequestException as exc:
        lines = [f"GET {url}: no answer ({type(exc).__name__})"]
    container = ctx.container(name)
    if container.status == "running":
        stats = container.stats(stream=False)
        memory = stats.get("memory_stats", {})
        if memory.get("limit"):
            lines.append(f"memory {memory.get('usage', 0) / 2**20:.0f} MiB of {memory['limit'] / 2**20:.0f} MiB "
                         f"({100 * memory.get('usage', 0) / memory['limit']:.0f} %)")
    hour = container.logs(since=int(time.time()) - 3600).decode(errors="replace").lower().splitlines()
    errors = sum(bool(re.search(r"error|exception|failed", line)) for line in hour)
    slow = sum(bool(re.search(r"slow|timeout|blocking", line)) for line in hour)
    lines.append(f"last hour of logs: {errors} error/exception/failed lines, {slow} slow/timeout/blocking lines")
    return lines


def check_messagebus(ctx: Context, target: str, apply: bool) -> list[str]:
    resolve_container(ctx, "check-messagebus", target)
    engine, spec = ctx.inventory.engines[target], ctx.inventory.redis
    client = redis.Redis(host=spec.host, port=spec.port, password=ctx.inventory.secrets.redis_password,
                         socket_timeout=3, socket_connect_timeout=3, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        return [f"Redis at {spec.host}:{spec.port} does not answer ({type(exc).__name__}): "
                f"python -m remediation restart-redis", f"then: docker logs {spec.container}"]
    names = {c.get("name") for c in client.client_list()}
    lines = [f"Redis answers; {client.info('clients')['connected_clients']} clients connected",
             f"client {engine.bus.client_name}: {'present' if engine.bus.client_name in names else 'ABSENT'}"]
    if engine.bus.heartbeat_key:
        beat = client.get(engine.bus.heartbeat_key)
        lines.append(f"heartbeat {engine.bus.heartbeat_key}: "
                     + (f"{time.time() - float(beat):.1f}s old" if beat else "absent"))
    lines.append(f"next: docker network inspect {ctx.inventory.compose_project}_{ctx.inventory.compose_project}-network; "
                 f"if the engine stays off the bus: python -m remediation restart-engine {target}")
    return lines


def free_port(ctx: Context, target: str, apply: bool) -> list[str]:
    if not target or not target.isdigit():
        raise RemediationError(f"free-port takes a port number, not {target!r}")
    port = int(target)
    lines = []
    for container in ctx.docker().containers.list():
        published = container.attrs["HostConfig"].get("PortBindings") or {}
        if any(b.get("HostPort") == str(port) for bindings in published.values() for b in bindings or []):
            lines.append(f"port {port} is published by container {container.name} ({container.status})")
    for pid, command in listeners(port):
        lines.append(f"port {port} is held by process {pid}: {command}")
    if not lines:
        return [f"nothing listens on port {port}: the service that should is down; start it "
                "(python -m remediation start-container <container>)"]
    return lines + ["nothing was killed: stop the owner deliberately, or change the port mapping in the compose file"]


def listeners(port: int, proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """Processes listening on a TCP port, from /proc (no lsof needed)."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        inodes |= listening_inodes((proc / table).read_text() if (proc / table).exists() else "", port)
    found = []
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            if any(f"socket:[{inode}]" == str(link.readlink()) for link in fd_dir.iterdir() for inode in inodes):
                command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                found.append((int(fd_dir.parent.name), f"{command[:300]} (user {_user(fd_dir.parent.stat().st_uid)})"))
        except OSError:
            continue
    return found


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def listening_inodes(table: str, port: int) -> set[str]:
    """Socket inodes in LISTEN state (0A) on `port`, from a /proc/net/tcp table.

    >>> listening_inodes("  sl  local_address rem_address st\\n   0: 0100007F:2008 00000000:0000 0A "
    ...                  "00000000:00000000 00:00000000 00000000 0 0 4242 1", 8200)
    {'4242'}
    """
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


ACTIONS = {
    "start-container": start_container,
    "restart-container": lambda ctx, target, apply: restart(ctx, "restart-container", target, apply),
    "restart-engine": lambda ctx, target, apply: restart(ctx, "restart-engine", target, apply),
    "restart-redis": lambda ctx, target, apply: restart(ctx, "restart-redis", target, apply),
    "restart-postgres": lambda ctx, target, apply: restart(ctx, "restart-postgres", target, apply),
    "diagnose-startup": diagnose_startup,
    "diagnose-engine": diagnose_engine,
    "check-messagebus": check_messagebus,
    "free-port": free_port,
}
