"""Engines that run as plain processes (docker: false): which process is the engine, and what it holds.

The process is found the way an operator would: the pid file the inventory names, else the systemd unit's
MainPID, else whatever listens on the engine's port on this machine. Only this machine's processes can be
seen; an engine on another host is recognised on the bus by its client_address instead.

Its Redis connections are the TCP connections of the process (and its children) to Redis: their local
address is the `addr` Redis shows for them in CLIENT LIST, so no engine support is needed.

>>> local_address("127.0.0.1", 40001), local_address("::1", 40001)
('127.0.0.1:40001', '[::1]:40001')
"""
from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .errors import Unobservable
from .inventory import Engine, Inventory

SYSTEMCTL_TIMEOUT_S = 5
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}


@dataclass(frozen=True)
class ProcessFacts:
    """One look at an engine's process: what it is and what it holds."""

    pid: int
    how: str  # how it was recognised: "pid file /run/x.pid", "systemd unit x.service", "listener on port 8100"
    name: str
    status: str
    cmdline: tuple[str, ...]
    listening: tuple[int, ...] = ()  # TCP ports it listens on
    redis_addresses: frozenset[str] = field(default_factory=frozenset)  # ip:port of its connections to Redis
    rss_bytes: int = 0
    cpu_pct: float | None = None  # None until measured over an interval

    def line(self) -> str:
        ports = ", ".join(map(str, self.listening)) or "none"
        return f"pid {self.pid} ({self.how}): {self.name} {self.status}, listening on {ports}"


def local_address(ip: str, port: int) -> str:
    """An address as Redis writes it in CLIENT LIST (IPv6 in brackets)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def where_to_say(engine: Engine) -> str:
    """The one line that tells an operator how to point the suite at the engine's process."""
    return (f"tell the inventory where {engine.name} runs: engines.{engine.name}.process.pid_file or "
            f".systemd_unit on this machine, or engines.{engine.name}.bus.client_address when it runs on another")


def on_this_machine(inventory: Inventory, engine: Engine) -> bool:
    """Whether the engine's host is this machine (its processes can be looked at here)."""
    host = inventory.host(engine.host)
    return host.ssh is None and host.address in LOCAL_HOSTS | _own_addresses()


def _own_addresses() -> set[str]:
    found = set()
    for addresses in psutil.net_if_addrs().values():
        found.update(a.address.split("%")[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6))
    return found


def _pid_from_file(path: str) -> int:
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise Unobservable(f"pid file {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not text.isdigit():
        raise Unobservable(f"pid file {path} holds no pid ({text[:20]!r})")
    return int(text)


def _pid_of_unit(unit: str) -> int:
    try:
        done = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit], capture_output=True,
                              text=True, timeout=SYSTEMCTL_TIMEOUT_S)
    except FileNotFoundError:
        raise Unobservable(f"systemd unit {unit}: systemctl is not on this machine") from None
    except subprocess.TimeoutExpired:
        raise Unobservable(f"systemd unit {unit}: systemctl did not answer in {SYSTEMCTL_TIMEOUT_S} s") from None
    text = done.stdout.strip()
    if done.returncode != 0 or not text.isdigit():
        raise Unobservable(f"systemd unit {unit}: systemctl show failed ({(done.stderr or text).strip()[:120]})")
    if text == "0":
        raise Unobservable(f"systemd unit {unit} has no main process (stopped or failed)")
    return int(text)


def _pid_listening(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def find_pid(engine: Engine) -> tuple[int, str]:
    """The engine's pid and how it was found, or Unobservable saying why not (the fix: where_to_say)."""
    spec = engine.process
    if spec.pid_file:
        return _pid_from_file(spec.pid_file), f"pid file {spec.pid_file}"
    if spec.systemd_unit:
        return _pid_of_unit(spec.systemd_unit), f"systemd unit {spec.systemd_unit}"
    pid = _pid_listening(engine.port)
    if pid is None:
        raise Unobservable(f"no process listens on port {engine.port} on this machine (or it is not ours to see)")
    return pid, f"the listener on port {engine.port}"


def _redis_endpoints(inventory: Inventory) -> set[tuple[str, int]]:
    """Where the engine's Redis may be, as (ip, port) a socket's remote end shows."""
    spec = inventory.redis
    ports = {spec.port}
    hosts = {spec.host, spec.internal_host}
    ips = set()
    for host in hosts:
        try:
            ips.update(info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
        except (socket.gaierror, UnicodeError):
            continue
    return {(ip, port) for ip in ips for port in ports}


def _same_ip(a: str, b: str) -> bool:
    try:
        left, right = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return a == b
    left = getattr(left, "ipv4_mapped", None) or left
    right = getattr(right, "ipv4_mapped", None) or right
    return left == right


def look(engine: Engine, inventory: Inventory) -> ProcessFacts:
    """The engine's process now, or Unobservable with the one line that says how to point the suite at it."""
    if not on_this_machine(inventory, engine):
        raise Unobservable(f"{engine.name} runs on host {engine.host}, not this machine: its process cannot be "
                           "looked at from here", fix=where_to_say(engine))
    try:
        pid, how = find_pid(engine)
        process = psutil.Process(pid)
        with process.oneshot():
            name, status, cmdline = process.name(), process.status(), tuple(process.cmdline())
            rss = process.memory_info().rss
        family = [process] + process.children(recursive=True)
    except Unobservable as exc:
        raise Unobservable(f"{engine.name}'s process not found: {exc}", fix=where_to_say(engine)) from None
    except psutil.NoSuchProcess:
        raise Unobservable(f"{engine.name}'s process not found: pid {pid} ({how}) is not running",
                           fix=where_to_say(engine)) from None
    except psutil.AccessDenied:
        raise Unobservable(f"{engine.name}'s process (pid {pid}) cannot be read by the suite's user: run the "
                           "suite as that user or as root") from None
    redis = _redis_endpoints(inventory)
    listening, addresses = set(), set()
    for member in family:
        try:
            conns = member.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN and conn.laddr:
                listening.add(conn.laddr.port)
            elif conn.raddr and any(conn.raddr.port == port and _same_ip(conn.raddr.ip, ip) for ip, port in redis):
                addresses.add(local_address(conn.laddr.ip, conn.laddr.port))
    return ProcessFacts(pid, how, name, status, cmdline, tuple(sorted(listening)), frozenset(addresses), rss)


@dataclass(frozen=True)
class ProcessUsage:
    """Memory and CPU of an engine's process with its children, as docker stats gives a container's."""

    rss_bytes: int
    limit_bytes: int
    limit_source: str  # "cgroup memory.max" or "host memory": what the share is of
    cpu_pct: float  # 100 % is one core, as in docker stats

    @property
    def memory_pct(self) -> float:
        return round(100 * self.rss_bytes / self.limit_bytes, 1) if self.limit_bytes else 0.0


def memory_limit(pid: int) -> tuple[int, str]:
    """The memory the process may use: its cgroup's memory.max (v2) when set, else the host's memory."""
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                raw = (Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "memory.max").read_text().strip()
                if raw.isdigit():
                    return int(raw), "cgroup memory.max"
    except OSError:
        pass
    return psutil.virtual_memory().total, "host memory"


def usage(facts: ProcessFacts, interval_s: float = 1.0) -> ProcessUsage:
    """RSS and CPU of the process and its children over `interval_s`; Unobservable when it is gone."""
    try:
        process = psutil.Process(facts.pid)
        family = [process] + process.children(recursive=True)
        for member in family:
            member.cpu_percent(None)
        time.sleep(interval_s)
        cpu = rss = 0.0
        for member in family:
            try:
                cpu += member.cpu_percent(None)
                rss += member.memory_info().rss
            except psutil.NoSuchProcess:
                continue  # a child that ended in between
    except psutil.NoSuchProcess:
        raise Unobservable(f"pid {facts.pid} ({facts.how}) ended while it was measured") from None
    except psutil.AccessDenied:
        raise Unobservable(f"pid {facts.pid} cannot be read by the suite's user") from None
    limit, source = memory_limit(facts.pid)
    return ProcessUsage(int(rss), limit, source, round(cpu, 1))
