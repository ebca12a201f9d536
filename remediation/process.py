"""Helpers for an engine that runs as a plain process (docker: false): diagnose-process and restart-process.

Neither asks Docker anything: the process is found as the checks find it (observation/processes.py: pid file,
systemd unit, port listener), its log is its log_file or its unit's journal, and a restart is the unit's
`systemctl restart` or the inventory's restart_command, run as an argv (no shell).
"""
from __future__ import annotations

import socket
import subprocess
import time
from collections import deque
from pathlib import Path

import psutil

from observation.errors import Unobservable
from observation.inventory import Engine, Inventory
from observation.processes import ProcessFacts, look, where_to_say

from .bundle import default_dir
from .context import Context
from .errors import RemediationError
from .sequence import Action, asks, carry_out, dry_run, numbered
from .targets import Target, resolve

CHECKOUT = Path(__file__).resolve().parent.parent  # a restart_command runs from here, as compose_command does
LOG_LINES = 30
LOG_TAIL_BYTES = 256 * 1024  # the end of the log file read for its last lines
COMMAND_TIMEOUT_S = 60
JOURNAL_TIMEOUT_S = 10
CPU_SAMPLE_S = 0.5


def last_log_lines(engine: Engine, count: int = LOG_LINES) -> tuple[str, list[str]]:
    """(where they came from, the engine's last `count` log lines): its log_file, else its unit's journal."""
    spec = engine.process
    if spec.log_file:
        path = Path(spec.log_file)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - LOG_TAIL_BYTES))
                text = handle.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"log file {path}", [f"(cannot be read: {exc.strerror or type(exc).__name__})"]
        return f"log file {path}", list(deque(text.splitlines(), maxlen=count))
    if spec.systemd_unit:
        argv = ["journalctl", "-u", spec.systemd_unit, "-n", str(count), "--no-pager", "-o", "short-iso"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=JOURNAL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"journal of {spec.systemd_unit}", [f"(journalctl failed: {type(exc).__name__})"]
        return f"journal of {spec.systemd_unit}", done.stdout.splitlines()[-count:]
    return "no log", [f"(the inventory names no process.log_file or process.systemd_unit for {engine.name})"]


def restart_argv(engine: Engine) -> list[str]:
    """How the engine is restarted: the inventory's restart_command, else its unit's `systemctl restart`.

    >>> from observation.inventory import Engine
    >>> restart_argv(Engine(name="risk", port=8200, docker=False, process={"systemd_unit": "risk.service"}))
    ['systemctl', 'restart', 'risk.service']
    """
    if engine.process.restart_command:
        return list(engine.process.restart_command)
    if engine.process.systemd_unit:
        return ["systemctl", "restart", engine.process.systemd_unit]
    raise RemediationError(f"restart-process: the inventory names no way to restart {engine.name}: set "
                           f"engines.{engine.name}.process.restart_command (an argv list) or .systemd_unit")


def process_target(inventory: Inventory, helper: str, argument: str | None) -> Engine:
    engine = resolve(inventory, helper, argument).engine
    if engine.docker:
        raise RemediationError(f"{helper}: {engine.name} runs in a container ({engine.container}), not as a plain "
                               f"process: use diagnose-startup or restart-engine")
    return engine


def _facts_or_reason(engine: Engine, inventory: Inventory) -> ProcessFacts | str:
    try:
        return look(engine, inventory)
    except Unobservable as exc:
        return str(exc)


def _cpu_pct(pid: int) -> str:
    try:
        process = psutil.Process(pid)
        process.cpu_percent(None)
        time.sleep(CPU_SAMPLE_S)
        return f"{process.cpu_percent(None):.1f} %"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "unknown"


def describe(engine: Engine, inventory: Inventory) -> list[str]:
    """What diagnose-process prints (and restart-process saves before acting)."""
    facts = _facts_or_reason(engine, inventory)
    lines = []
    if isinstance(facts, str):
        lines += [f"process: NOT FOUND: {facts}", f"hint: {where_to_say(engine)}"]
    else:
        lines += [f"process: {facts.line()}", f"command line: {' '.join(facts.cmdline)[:300]}",
                  f"memory (RSS): {facts.rss_bytes / 2**20:.1f} MiB; CPU over {CPU_SAMPLE_S:g} s: {_cpu_pct(facts.pid)}",
                  "its connections to Redis: " + (", ".join(sorted(facts.redis_addresses)) or "none")]
        if engine.port not in facts.listening:
            lines.append(f"warning: it does not listen on the engine's port {engine.port}")
    where, log_lines = last_log_lines(engine)
    lines.append(f"last {len(log_lines)} lines of the {where} (secrets masked):")
    lines += [f"  {line}" for line in log_lines]
    return lines


def diagnose_process(ctx: Context, argument: str | None, apply: bool = False) -> int:
    """pid, state, open ports, Redis connections, memory and CPU, and the last log lines of a process engine."""
    engine = process_target(ctx.inventory, "diagnose-process", argument)
    ctx.say(f"diagnose-process {engine.name} (a plain process on host {engine.host!r}; read-only: changes nothing)")
    for line in describe(engine, ctx.inventory):
        ctx.say(line)
    facts = _facts_or_reason(engine, ctx.inventory)
    if isinstance(facts, str) or engine.port not in facts.listening:
        how = " ".join(restart_argv(engine)) if engine.process.restart_command or engine.process.systemd_unit else None
        ctx.say("advice: the engine is not serving: read its last log lines above, then "
                + (f"{ctx.command('restart-process', engine.name)} (runs `{how}`)" if how else
                   f"set engines.{engine.name}.process.restart_command or .systemd_unit so restart-process can "
                   "start it"))
    return 0


def port_accepts(address: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def restart_process(ctx: Context, argument: str | None, apply: bool) -> int:
    """systemctl restart of the engine's unit, or the inventory's restart_command; then wait for its port."""
    engine = process_target(ctx.inventory, "restart-process", argument)
    argv = restart_argv(engine)
    address = ctx.inventory.host(engine.host).address
    facts = _facts_or_reason(engine, ctx.inventory)
    now = facts if isinstance(facts, str) else facts.line()
    folder = ctx.bundle_dir or default_dir("restart-process", Target(None, engine.host, engine=engine))
    plan = numbered([f"save the process diagnosis (diagnose-process {engine.name}) to {folder}/process.txt",
                     f"run `{' '.join(argv)}` (no shell; {COMMAND_TIMEOUT_S} s at most)",
                     f"wait up to {ctx.ready_timeout_s:g} s until {address}:{engine.port} accepts connections",
                     f"append the outcome to the audit log {ctx.audit_path}"])
    if not apply:
        return dry_run(ctx, f"restart-process {engine.name} (now: {now})", plan, asks(engine.name))
    action = Action("restart-process", engine.name, plan, confirm=engine.name,
                    question=f"restart-process will restart {engine.name} (now: {now}):")

    def act(_bundle) -> tuple[str, int]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "process.txt").write_text(ctx.redactor.redact_text("\n".join(describe(engine, ctx.inventory))) + "\n")
        ctx.say(f"diagnostics saved to {folder}")
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=CHECKOUT,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise RemediationError(f"restart-process: {argv[0]} is not on this machine") from None
        except subprocess.TimeoutExpired:
            raise RemediationError(f"restart-process: `{' '.join(argv)}` did not finish in {COMMAND_TIMEOUT_S} s") \
                from None
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split())[:200]
            return f"`{' '.join(argv)}` failed with exit status {done.returncode}: {said}", 1
        deadline = ctx.clock() + ctx.ready_timeout_s
        while ctx.clock() < deadline:
            if port_accepts(address, engine.port, ctx.inventory.timeouts.connect_s):
                return f"restarted {engine.name} (`{' '.join(argv)}`); {address}:{engine.port} accepts connections", 0
            ctx.sleep(0.5)
        return (f"ran `{' '.join(argv)}`, but {address}:{engine.port} accepts no connection after "
                f"{ctx.ready_timeout_s:g} s: {ctx.command('diagnose-process', engine.name)}"), 1

    return carry_out(ctx, action, act)
