"""Whether an engine reaches Redis and PostgreSQL as it sees them: a TCP connect from inside its container, and a
login to PostgreSQL with the engine's own settings (credentials, database), from inside it too.

The guide pings `redis` and `postgres` from inside each engine; a ping proves
only the name and the route, so this opens a TCP connection to the port the
engine uses, with python3 (which the engines' image has), through `docker exec`.

>>> Reach("redis:6379", ok=False, output="cannot connect to redis:6379: [Errno -2] Name or service not known").line()
'cannot connect to redis:6379: [Errno -2] Name or service not known'
"""
from __future__ import annotations

import json
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
# Logs in to PostgreSQL as the engine does: its own settings (DATABASE_URL, else POSTGRES_HOST/PORT/DB/USER/PASSWORD,
# else the inventory's address), with the psycopg2 its image has (the guide's own test imports it). The settings
# never leave the container: one line is printed, any secret in it masked. Exit 0 logged in, 1 refused, 3 no psycopg2.
LOGIN_SCRIPT = """import os, sys
host, port, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
env = os.environ
url = env.get("DATABASE_URL") or env.get("POSTGRES_URL")
secrets = [v for v in (url, env.get("POSTGRES_PASSWORD")) if v]
def say(text, code):
    for secret in secrets:
        text = text.replace(secret, "***")
    print(" ".join(text.split())[:300])
    sys.exit(code)
try:
    import psycopg2
except ImportError:
    say("the image has no psycopg2 to log in with", 3)
settings = {"host": env.get("POSTGRES_HOST") or host, "port": env.get("POSTGRES_PORT") or port,
            "dbname": env.get("POSTGRES_DB"), "user": env.get("POSTGRES_USER"), "password": env.get("POSTGRES_PASSWORD")}
source = "DATABASE_URL" if url else "POSTGRES_* settings"
try:
    common = {"connect_timeout": max(2, round(timeout)), "application_name": "nautilus-health"}
    conn = psycopg2.connect(url, **common) if url else psycopg2.connect(**common, **{k: v for k, v in settings.items() if v})
    cur = conn.cursor()
    cur.execute("SELECT current_user, current_database()")
    user, database = cur.fetchone()
    conn.close()
except Exception as exc:
    say(f"login with the engine's {source} failed: {exc}", 1)
say(f"logged in with the engine's {source} as {user} to database {database}", 0)
"""
# Runs several of the scripts above in one python3, one after another, each with its own argv; prints one JSON
# line per script: its exit code and what it printed. One exec per engine instead of one per probe: each
# `docker exec` costs a runc start, and 27 at once on a small host took ~3 s of the run's start.
BATCH_SCRIPT = """import contextlib, io, json, sys
for script, args in json.loads(sys.argv[1]):
    out, code = io.StringIO(), 0
    sys.argv = ["-c", *args]
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(script, "<probe>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        code, _ = 2, out.write(f"the probe broke: {type(exc).__name__}: {exc}")
    print(json.dumps({"code": code, "output": out.getvalue()}), flush=True)
"""
DEPENDENCIES = ("redis", "postgres")
LOGIN = "postgres-login"  # a key of reach_samples beside the dependencies: the login, not only the connect


@dataclass(frozen=True)
class Reach:
    address: str  # host:port as the engine sees it
    ok: bool
    output: str

    def line(self) -> str:
        return self.output.strip().splitlines()[-1] if self.output.strip() else "(no output)"


def bounded_lookups(timeout_s: float) -> dict[str, str]:
    """The exec's environment: glibc's resolver gives up on a name within `timeout_s`, tried once.

    Its default (5 s a try, 2 tries, per server and address family) held a daily run 33 s on an engine taken
    off every network, whose three probes each waited on a name no server could answer.

    >>> bounded_lookups(3)
    {'RES_OPTIONS': 'timeout:3 attempts:1'}
    """
    return {"RES_OPTIONS": f"timeout:{max(1, round(timeout_s))} attempts:1"}


def internal_address(inventory: Inventory, dependency: str) -> tuple[str, int]:
    spec = inventory.redis if dependency == "redis" else inventory.postgres
    return spec.internal_host, spec.internal_port


def connect_from(api, container: str, host: str, port: int, timeout_s: float, daemon: str = "Docker",
                 script: str = CONNECT_SCRIPT, what: str = "connect probe") -> Reach:
    """Run the connect (or the login: `script`) in `container` through the low-level Docker API; Unobservable
    when it cannot run."""
    address = f"{host}:{port}"
    try:
        exec_id = api.exec_create(container, ["python3", "-c", script, host, str(port), str(timeout_s)],
                                  stdout=True, stderr=True, environment=bounded_lookups(timeout_s))["Id"]
        raw = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise failure(exc, f"exec the {what}", container, daemon) from None
    output = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return judged(address, code, output, what, container)


def judged(address: str, code: int | None, output: str, what: str, container: str) -> Reach:
    if code not in (0, 1):  # 126/127: no python3 in the image; 3: nothing to log in with; else the probe broke
        raise Unobservable(f"the {what} could not run in {container} (exit code {code}: "
                           f"{' '.join(output.split())[:200]})")
    return Reach(address, ok=code == 0, output=output)


@dataclass(frozen=True)
class Probe:
    address: tuple[str, int]
    login: bool  # the login script, else the connect script

    @property
    def what(self) -> str:
        return "login probe" if self.login else "connect probe"


def probes_from(api, container: str, probes: list[Probe], timeout_s: float,
                daemon: str = "Docker") -> list[Reach | Unobserved]:
    """Every probe run in `container` by one exec (BATCH_SCRIPT), in order; each judged as `connect_from` judges
    its one. They run one after another: the worst case is the sum of their timeouts."""
    jobs = [[LOGIN_SCRIPT if p.login else CONNECT_SCRIPT, [p.address[0], str(p.address[1]), str(timeout_s)]]
            for p in probes]
    try:
        exec_id = api.exec_create(container, ["python3", "-c", BATCH_SCRIPT, json.dumps(jobs)],
                                  stdout=True, stderr=True, environment=bounded_lookups(timeout_s))["Id"]
        raw = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        reason = str(failure(exc, "exec the connect and login probes", container, daemon))
        return [Unobserved(reason) for _ in probes]
    output = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    answers = [line for line in output.splitlines() if line.startswith('{"code"')]
    if code != 0 or len(answers) != len(probes):
        reason = (f"the connect and login probes could not run in {container} (exit code {code}: "
                  f"{' '.join(output.split())[:200]})")
        return [Unobserved(reason) for _ in probes]
    found: list[Reach | Unobserved] = []
    for probe, line in zip(probes, answers):
        answer = json.loads(line)
        try:
            found.append(judged(f"{probe.address[0]}:{probe.address[1]}", answer["code"], answer["output"],
                                probe.what, container))
        except Unobservable as exc:
            found.append(Unobserved(str(exc)))
    return found


def reach_samples(inventory: Inventory, engines: list[Engine], hosts: DockerHosts) -> dict[tuple[str, str], Reach | Unobserved]:
    """(engine, dependency) -> what a connect from inside the engine's container showed, and (engine, LOGIN)
    what a login to PostgreSQL with the engine's own settings showed; one exec per engine, all engines at once."""
    keys = (*DEPENDENCIES, LOGIN)
    probes = [Probe(internal_address(inventory, "postgres" if key == LOGIN else key), login=key == LOGIN)
              for key in keys]

    def one(engine: Engine) -> list[Reach | Unobserved]:
        if not inventory.host(engine.host).docker:
            reason = f"host {engine.host!r} runs no Docker (hosts[].docker false): no container to look from"
            return [Unobserved(reason) for _ in keys]
        client, error = hosts.try_get(engine.host)
        if error:
            return [Unobserved(error) for _ in keys]
        return probes_from(client.api, engine.container, probes, inventory.timeouts.connect_s,
                           f"Docker host {engine.host!r}")

    chosen = [engine for engine in engines if engine.docker]
    return {(engine.name, key): result for engine, results in zip(chosen, in_parallel(one, chosen))
            for key, result in zip(keys, results)}
