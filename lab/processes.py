"""Lab engines as plain processes on this machine, outside any container: `python -m lab processes up|down`.

Three lab engines (lab/engine/app.py) run with the suite's own interpreter, bound to 127.0.0.1 on ports of
their own, as a deployment without Docker runs them: a pid file, a log file (stdout and stderr appended, as a
service manager does), PostgreSQL on its loopback port. They reach Redis at its address on the lab network,
not through the published loopback port: Docker's port proxy would stand between them, and Redis would see
the proxy's address instead of the engine's, which no deployment of plain processes has.

Everything here is the lab's: each process carries LAB_PROCESS_MARK in its environment, and `down` (and
`python -m lab down`) stops only processes that carry it and whose pid file the lab wrote.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from . import LAB_DIR, STATE_DIR, LabError
from .docker_access import guard, lab_password
from .ownership import owned_container

PROCESS_DIR = STATE_DIR / "processes"
APP = LAB_DIR / "engine" / "app.py"
LAB_PROCESS_MARK = "NAUTILUS_LAB_PROCESS_ENGINE"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 5
CONTROL_TIMEOUT_S = 5
EXEC_SETTLE_S = 1


@dataclass(frozen=True)
class ProcessEngine:
    name: str
    port: int

    @property
    def pid_file(self) -> Path:
        return PROCESS_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return PROCESS_DIR / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# Names no container engine has (heartbeat keys and client names stay apart); ports outside the platform's.
ENGINES = (ProcessEngine("alpha", 18110), ProcessEngine("beta", 18120), ProcessEngine("gamma", 18130))


def find(name: str) -> ProcessEngine:
    for engine in ENGINES:
        if engine.name == name:
            return engine
    raise LabError(f"unknown process engine {name!r}; known: {', '.join(e.name for e in ENGINES)}")


def redis_address() -> str:
    """The lab Redis's address on the lab network (reachable from this machine through the bridge)."""
    container = owned_container(guard(), "nautilus-redis")
    if container.status != "running":
        raise LabError("nautilus-redis is not running: `python -m lab up` (or heal) first")
    networks = container.attrs["NetworkSettings"]["Networks"]
    address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
    if not address:
        raise LabError("nautilus-redis has no address on the lab network")
    return address


def _ours(pid: int) -> psutil.Process | None:
    """The process by pid when it is a lab process engine (the lab's mark in its environment), else None."""
    try:
        process = psutil.Process(pid)
        environment = process.environ()
        # Just after Popen returns, the kernel may not have laid out the new program's environment yet
        # (/proc/<pid>/environ reads empty for that moment): read it again rather than call the engine gone.
        deadline = time.monotonic() + EXEC_SETTLE_S
        while not environment and time.monotonic() < deadline:
            time.sleep(0.02)
            environment = process.environ()
        return process if environment.get(LAB_PROCESS_MARK) == "1" else None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def running(engine: ProcessEngine) -> psutil.Process | None:
    try:
        pid = int(engine.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    process = _ours(pid)
    return process if process is not None and process.status() != psutil.STATUS_ZOMBIE else None


def start(engine: ProcessEngine, redis_host: str | None = None, wait: bool = True) -> str:
    """Start one process engine (a fresh log: the previous one is kept as .log.1, as a rotation would)."""
    if running(engine):
        return f"{engine.name}: already running (pid {running(engine).pid})"
    PROCESS_DIR.mkdir(parents=True, exist_ok=True)
    if engine.log_file.exists():
        os.replace(engine.log_file, engine.log_file.with_suffix(".log.1"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "PYTHONUNBUFFERED": "1",
           LAB_PROCESS_MARK: "1", "ENGINE_NAME": engine.name, "ENGINE_PORT": str(engine.port),
           "ENGINE_HOST": "127.0.0.1", "ENGINE_FLAVOUR": "guide", "LAB_STATE_DIR": str(PROCESS_DIR / "state"),
           "REDIS_HOST": redis_host or redis_address(), "REDIS_PORT": "6379",
           "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_DB": "nautilus",
           "POSTGRES_USER": "nautilus", "POSTGRES_PASSWORD": os.environ.get("NAUTILUS_POSTGRES_PASSWORD") or lab_password()}
    with open(engine.log_file, "ab") as log:
        # A session of its own: the engine outlives the command that started it, as a daemon does.
        process = subprocess.Popen([sys.executable, str(APP)], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=PROCESS_DIR)
    engine.pid_file.write_text(f"{process.pid}\n")
    if wait:
        wait_ready(engine)
    return f"{engine.name}: started, pid {process.pid}, http://127.0.0.1:{engine.port}, log {engine.log_file}"


def wait_ready(engine: ProcessEngine, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until /health says healthy with the bus connected (its first heartbeat went through Redis)."""
    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        if running(engine) is None:
            raise LabError(f"{engine.name} exited at start ({_last_line(engine)}): see {engine.log_file}")
        try:
            body = requests.get(f"{engine.url}/health", timeout=2).json()
            if body.get("status") == "healthy" and body.get("messagebus_connected") is True:
                return
            last = f"status {body.get('status')}, bus {body.get('messagebus_connected')}"
        except (requests.RequestException, ValueError) as exc:
            last = type(exc).__name__
        time.sleep(0.3)
    raise LabError(f"{engine.name} not healthy within {timeout_s:.0f} s ({last}): see {engine.log_file}")


def _last_line(engine: ProcessEngine) -> str:
    """The log's last line, where an engine that died at start says why (a port taken, a bad setting)."""
    try:
        lines = engine.log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "empty log"


def stop(engine: ProcessEngine, sig: int = signal.SIGTERM) -> str:
    """Stop one process engine (only the lab's own); SIGKILL after a grace period."""
    process = running(engine)
    if process is None:
        engine.pid_file.unlink(missing_ok=True)
        return f"{engine.name}: not running"
    process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT_S)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_S)
    engine.pid_file.unlink(missing_ok=True)
    return f"{engine.name}: stopped (pid {process.pid})"


def kill(engine: ProcessEngine) -> str:
    """The kill fault: SIGKILL, the pid file left behind (as a crashed daemon leaves it)."""
    process = running(engine)
    if process is None:
        raise LabError(f"{engine.name} is not running")
    process.kill()
    process.wait(STOP_TIMEOUT_S)
    return f"{engine.name}: killed (pid {process.pid}; its pid file stays, naming a dead process)"


def fault(engine: ProcessEngine, kind: str, **params) -> dict:
    """An engine fault through the engine's own control endpoint (the same faults as its containers take)."""
    body = {k: v for k, v in params.items() if v is not None}
    try:
        reply = requests.post(f"{engine.url}/_lab/faults/{kind}", json=body, timeout=CONTROL_TIMEOUT_S)
    except requests.RequestException as exc:
        raise LabError(f"{engine.name} control endpoint unreachable: {type(exc).__name__}") from None
    if reply.status_code >= 400:
        raise LabError(f"{engine.name} refused {kind}: HTTP {reply.status_code} {reply.text[:200]}")
    return reply.json()


def heal(engine: ProcessEngine) -> str:
    """Faults cleared; a dead engine started again; a log holding a fault's lines rotated by a restart."""
    process = running(engine)
    if process is None:
        return start(engine)
    try:
        requests.delete(f"{engine.url}/_lab/faults", timeout=CONTROL_TIMEOUT_S)
    except requests.RequestException:
        pass
    stop(engine)
    return start(engine)


def up() -> list[str]:
    redis_host = redis_address()
    said = [start(engine, redis_host, wait=False) for engine in ENGINES]
    for engine in ENGINES:
        wait_ready(engine)
    return said


def down() -> list[str]:
    return [stop(engine) for engine in ENGINES]


def status_lines() -> list[str]:
    lines = []
    for engine in ENGINES:
        process = running(engine)
        lines.append(f"{engine.name}: " + (f"pid {process.pid} on 127.0.0.1:{engine.port}" if process else "not running"))
    return lines
