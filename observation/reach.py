"""Whether an engine reaches Redis and PostgreSQL as it sees them: a TCP connect from inside its container.

The guide pings `redis` and `postgres` from inside each engine; a ping proves
only the name and the route, so this opens a TCP connection to the port the
engine uses, with python3 (which the engines' image has), through `docker exec`.

>>> Reach("redis:6379", ok=False, output="cannot connect to redis:6379: [Errno -2] Name or service not known").line()
'cannot connect to redis:6379: [Errno -2] Name or service not known'
"""
from __future__ import annotations

from dataclasses import dataclass

import docker
import requests

from .concurrent import in_parallel
from .docker_api import DockerHosts, failure
from .errors import Unobservable, Unobserved
from .inventory import Engine, Inventory

# Prints one line and exits 0 (connected) or 1 (not); argv: host port timeout_s.
CONNECT_SCRIPT = """import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    conn = socket.create_connection((host, port), timeout=timeout)
except OSError as exc:
    print(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}")
    sys.exit(1)
print(f"connected to {host}:{port} ({conn.getpeername()[0]})")
conn.close()
"""
DEPENDENCIES = ("redis", "postgres")


@dataclass(frozen=True)
class Reach:
    address: str  # host:port as the engine sees it
    ok: bool
    output: str

    def line(self) -> str:
        return self.output.strip().splitlines()[-1] if self.output.strip() else "(no output)"


def internal_address(inventory: Inventory, dependency: str) -> tuple[str, int]:
    spec = inventory.redis if dependency == "redis" else inventory.postgres
    return spec.internal_host, spec.internal_port


def connect_from(api, container: str, host: str, port: int, timeout_s: float, daemon: str = "Docker") -> Reach:
    """Run the connect in `container` through the low-level Docker API; Unobservable when it cannot run."""
    address = f"{host}:{port}"
    try:
        exec_id = api.exec_create(container, ["python3", "-c", CONNECT_SCRIPT, host, str(port), str(timeout_s)],
                                  stdout=True, stderr=True)["Id"]
        raw = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise failure(exc, "exec the connect probe", container, daemon) from None
    output = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    if code not in (0, 1):  # 126/127: no python3 in the image; anything else: the probe itself broke
        raise Unobservable(f"the connect probe could not run in {container} (exit code {code}: "
                           f"{' '.join(output.split())[:200]})")
    return Reach(address, ok=code == 0, output=output)


def reach_samples(inventory: Inventory, engines: list[Engine], hosts: DockerHosts) -> dict[tuple[str, str], Reach | Unobserved]:
    """(engine, dependency) -> what a connect from inside the engine's container showed, all at once."""
    jobs = [(engine, dep) for engine in engines if engine.docker for dep in DEPENDENCIES]

    def one(job: tuple[Engine, str]) -> Reach | Unobserved:
        engine, dependency = job
        if not inventory.host(engine.host).docker:
            return Unobserved(f"host {engine.host!r} runs no Docker (hosts[].docker false): no container to look from")
        client, error = hosts.try_get(engine.host)
        if error:
            return Unobserved(error)
        host, port = internal_address(inventory, dependency)
        try:
            return connect_from(client.api, engine.container, host, port, inventory.timeouts.connect_s,
                                f"Docker host {engine.host!r}")
        except Unobservable as exc:
            return Unobserved(str(exc))

    return {(engine.name, dep): result for (engine, dep), result in zip(jobs, in_parallel(one, jobs))}
