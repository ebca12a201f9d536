"""The Docker Engine API calls the suite makes, per inventory host: each bounded by a timeout, each failing in one line.

Checks (through their fixtures) and remediation helpers both talk to Docker
through `Docker`; tests pass any object with the low-level client's methods.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable

import docker
import requests
import urllib3

from .capped_lines import CappedLines
from .concurrent import in_parallel
from .errors import ContainerMissing, Unobservable, causes, describe, short_reason
from .inventory import DockerHost, Inventory
from .lazy import Lazy

API_TIMEOUT_S = 10  # every Docker API call; a restart adds its own stop timeout to this
LOG_LINE_CAP = 1024  # bytes kept of one log line (known errors and evidence need far less)
LOG_BUDGET = 8 << 20  # bytes of log text held per container
STATS_GAP_S = 0.5  # between the two readings CPU % is computed from


def connect(host: DockerHost, timeout_s: float = API_TIMEOUT_S) -> docker.APIClient:
    """A low-level client for one inventory host (unix socket, tcp with TLS, ssh).

    Building it already asks the daemon for its API version, with `timeout_s`."""
    endpoint = host.endpoint
    certs = endpoint.cert_path
    tls = docker.tls.TLSConfig(client_cert=(f"{certs}/cert.pem", f"{certs}/key.pem"), ca_cert=f"{certs}/ca.pem",
                               verify=endpoint.tls_verify) if certs else None
    return docker.APIClient(base_url=endpoint.url, timeout=timeout_s, tls=tls)


_FAILURES = (docker.errors.DockerException, requests.RequestException, OSError)
DOCKER_PID_FILE = Path("/var/run/docker.pid")  # where dockerd writes its pid (read at call time: tests move it)
PROC = Path("/proc")


@dataclass(frozen=True)
class DaemonProcess:
    """dockerd as /proc shows it on this machine."""

    pid: int
    state: str  # as /proc/PID/status says it: "T (stopped)", "D (disk sleep)", "S (sleeping)", "R (running)"

    def line(self) -> str:
        return f"dockerd pid {self.pid} is in state {self.state}"


def daemon_process(host: DockerHost) -> DaemonProcess | None:
    """dockerd's process when its endpoint is a unix socket (on this machine) and /proc shows it; else None."""
    if not host.endpoint.url.startswith("unix://"):
        return None
    try:
        pid = int(DOCKER_PID_FILE.read_text().strip())
        status = dict(line.split(":", 1) for line in (PROC / str(pid) / "status").read_text().splitlines()
                      if ":" in line)
    except (OSError, ValueError):
        return None
    if status.get("Name", "").strip() != "dockerd":  # a stale pid file naming another process
        return None
    return DaemonProcess(pid, status.get("State", "?").strip())


class DaemonDown(Unobservable):
    """No Docker daemon answers. A helper prints it as its one line, what was seen and then the fix; a check
    shows `finding` and carries `fix` apart."""

    def __init__(self, finding: str, fix: str):
        super().__init__(f"{finding}; {fix}", fix)
        self.finding = finding

    @classmethod
    def of(cls, host: DockerHost, exc: BaseException) -> "DaemonDown":
        # Names where the url came from and what to change there: a dead endpoint is never swapped for another.
        endpoint = host.endpoint
        if not _frozen(exc, endpoint.url):
            return cls(f"no Docker daemon answers at {endpoint.describe()}: {short_reason(exc)}",
                       f"start it (`sudo systemctl start docker`) or {endpoint.how_to_change}")
        # It took the connection and said nothing: starting it again is no fix, restarting is.
        process = daemon_process(host)
        fix = ("see its state (`systemctl status docker`, `journalctl -u docker --since -10min`), then restart it "
               "(`sudo systemctl restart docker`)")
        if process and process.state.startswith(("T", "t")):
            fix = f"resume it (`sudo kill -CONT {process.pid}`: a signal or a debugger stopped it), or {fix}"
        return cls(f"the Docker daemon at {endpoint.describe()} is running but does not answer "
                   f"({short_reason(exc)})" + (f"; {process.line()}" if process else ""), fix)


def _frozen(exc: BaseException, url: str) -> bool:
    """A daemon that took the connection and never answered (a read timeout), or a unix socket nobody accepts on
    (its queue full: EAGAIN); a refused or missing socket, or a tcp connect timeout, is another story."""
    return any(isinstance(e, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError))
               or (isinstance(e, BlockingIOError) and url.startswith("unix://")) for e in causes(exc))


def daemon_down(host: DockerHost, exc: BaseException) -> str:
    """One line: why no Docker daemon answers at the host's endpoint, and the fix that fits it."""
    return str(DaemonDown.of(host, exc))


def failure(exc: BaseException, doing: str, container: str | None = None, daemon: str = "Docker") -> Unobservable:
    """What a failed Docker API call means, in words; Docker's HTTP status stays in parentheses.

    `doing` completes "refused to ...", e.g. "restart x"; `daemon` names who answered ("Docker host 'local'").
    The one place where the SDK's transport text ("409 Client Error: Conflict for url: http+docker://...")
    becomes what it means.
    """
    response = getattr(exc, "response", None)
    # A NotFound made without a response (the SDK's own, a test double) is a 404 all the same.
    status = getattr(response, "status_code", None) or (404 if isinstance(exc, docker.errors.NotFound) else None)
    if status is not None:
        code = f"{status} {getattr(response, 'reason', None) or _phrase(status)}"
        said = " ".join(str(getattr(exc, "explanation", None) or "").split())[:200]
        if status == 404 and container and (not said or "no such container" in said.lower()):
            return ContainerMissing(f"container {container} does not exist on {daemon} ({code})")
        state = re.search(r"\bcontainer \S+ is ([a-z ]+?)(?: and |[,.;:]|$)", said, re.IGNORECASE)
        if status == 409 and container and state:
            return Unobservable(f"container {container} is {state.group(1)} ({daemon} refused to {doing}: {code})")
        verb = "failed" if status >= 500 else "refused"
        return Unobservable(f"{daemon} {verb} to {doing}" + (f": {said}" if said else "") + f" ({code})")
    chain = list(causes(exc))
    if any(isinstance(e, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)) for e in chain):
        return Unobservable(f"{daemon} did not answer in time to {doing} ({short_reason(exc)})")
    if any(isinstance(e, (requests.ConnectionError, ConnectionError)) for e in chain):
        return Unobservable(f"{daemon} stopped answering while trying to {doing} ({short_reason(exc)})")
    return Unobservable(f"{daemon} failed to {doing} ({describe(exc)})")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


class Docker:
    """One Docker host, with the library's exceptions turned into one-line `Unobservable`s."""

    def __init__(self, api: Any, host: DockerHost):
        self.api, self.host = api, host

    @classmethod
    def open(cls, host: DockerHost, factory: Callable[[DockerHost], Any] = connect,
             then_timeout_s: float | None = None) -> "Docker":
        """Connect and ping (within the factory's timeout), then give later calls `then_timeout_s`."""
        try:
            api = factory(host)
            api.ping()
        except _FAILURES as exc:
            raise DaemonDown.of(host, exc) from None
        if then_timeout_s is not None:
            api.timeout = then_timeout_s
        return cls(api, host)

    def _call(self, what: str, container: str | None, fn: Callable, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _FAILURES as exc:
            raise failure(exc, what, container, self._daemon) from None

    @property
    def _daemon(self) -> str:
        return f"Docker host {self.host.name!r}"

    def containers(self) -> list[dict]:
        """`docker ps -a`: one summary per container, with `name` added."""
        summaries = self._call("list containers", None, self.api.containers, all=True)
        return [{**s, "name": (s.get("Names") or ["/?"])[0].lstrip("/")} for s in summaries]

    def inspect(self, name: str) -> dict:
        return self._call(f"inspect {name}", name, self.api.inspect_container, name)

    def logs(self, name: str, tail: int | str = "all", since: int | None = None, timestamps: bool = False) -> str:
        """The container's log lines, streamed: each line cut at LOG_LINE_CAP bytes, the whole held under
        LOG_BUDGET bytes (oldest lines dropped first), the read given up after API_TIMEOUT_S. With `timestamps`,
        each line starts with the time Docker received it (RFC 3339, UTC)."""
        what = f"read the logs of {name}"
        stream = self._call(what, name, self.api.logs, name, stdout=True, stderr=True, tail=tail, since=since,
                            timestamps=timestamps, stream=True, follow=False)  # stream alone would follow forever
        if isinstance(stream, (bytes, str)):  # a test double answering at once
            stream = [stream.encode() if isinstance(stream, str) else stream]
        lines, deadline = CappedLines(LOG_LINE_CAP, LOG_BUDGET), time.monotonic() + API_TIMEOUT_S
        try:
            for chunk in stream:
                lines.feed(chunk)
                if time.monotonic() > deadline:
                    lines.feed(f"\n[nautilus: log read stopped after {API_TIMEOUT_S} s]\n".encode())
                    break
        except _FAILURES as exc:
            raise failure(exc, what, name, self._daemon) from None
        finally:
            getattr(stream, "close", lambda: None)()
        return lines.text()

    def stats(self, name: str, gap_s: float = STATS_GAP_S) -> dict:
        """One `docker stats --no-stream` sample: two one-shot readings `gap_s` apart, CPU measured between them.

        The daemon's own no-stream sample waits two seconds per call; two one-shot readings
        cost the gap and a few milliseconds, and CPU is still judged over an interval.
        """
        what = f"sample the stats of {name}"
        try:
            first = self._call(what, name, self.api.stats, name, stream=False, one_shot=True)
        except Unobservable as exc:
            if "one-shot" not in str(exc) and "one_shot" not in str(exc):
                raise
            return self._call(what, name, self.api.stats, name, stream=False)  # daemon older than API 1.41
        time.sleep(gap_s)
        second = self._call(what, name, self.api.stats, name, stream=False, one_shot=True)
        return {**second, "precpu_stats": first.get("cpu_stats") or {}}

    def info(self) -> dict:
        return self._call("answer docker info", None, self.api.info)

    def disk_usage(self) -> dict:
        return self._call("answer docker system df", None, self.api.df)

    def start(self, name: str) -> None:
        self._call(f"start {name}", name, self.api.start, name)

    def unpause(self, name: str) -> None:
        self._call(f"unpause {name}", name, self.api.unpause, name)

    def restart(self, name: str, timeout: int = 10) -> None:
        self._call(f"restart {name}", name, self.api.restart, name, timeout=timeout)

    def close(self) -> None:
        close = getattr(self.api, "close", None)
        if close:
            close()


class DockerHosts:
    """A Docker connection per inventory host, each opened on first use; a dead daemon is remembered."""

    def __init__(self, inventory: Inventory, factory: Callable[[DockerHost], Any] = connect):
        if factory is connect:
            # Version and ping are tiny: a daemon that cannot answer them within connect_s is down (a frozen
            # daemon costs that, not the 10 s every later call may take).
            ping_s = inventory.timeouts.connect_s
            factory, later = (lambda h: connect(h, timeout_s=ping_s)), API_TIMEOUT_S
        else:
            later = None
        self._lazy = {h.name: Lazy(f"docker://{h.name}", lambda h=h: _open_for_checks(h, factory, later), Docker.close)
                      for h in inventory.hosts}

    def get(self, host: str) -> Docker:
        """The host's Docker, or Unobservable with the reason."""
        return self._lazy[host].get()

    def try_get(self, host: str) -> tuple[Docker | None, str | None]:
        return self._lazy[host].try_get()

    def close(self) -> None:
        for lazy in self._lazy.values():
            lazy.close()


def _open_for_checks(host: DockerHost, factory: Callable[[DockerHost], Any], later: float | None) -> Docker:
    try:
        return Docker.open(host, factory, later)
    except DaemonDown as exc:
        # A check's finding is what was seen; the fix travels apart, to its remediation line.
        raise Unobservable(exc.finding, exc.fix) from None


@dataclass(frozen=True)
class State:
    """What `docker ps` and `docker inspect` say about a container's life."""

    status: str
    health: str | None
    restarts: int
    exit_code: int | None
    oom_killed: bool
    error: str
    started_at: str
    finished_at: str

    @classmethod
    def of(cls, attrs: dict) -> "State":
        """
        >>> State.of({"State": {"Status": "running", "Health": {"Status": "healthy"}}, "RestartCount": 2}).line()
        'running (healthy), 2 restarts'
        """
        state = attrs.get("State") or {}
        return cls(status=state.get("Status", "unknown"), health=(state.get("Health") or {}).get("Status"),
                   restarts=attrs.get("RestartCount") or 0, exit_code=state.get("ExitCode"),
                   oom_killed=bool(state.get("OOMKilled")), error=state.get("Error") or "",
                   started_at=state.get("StartedAt", ""), finished_at=state.get("FinishedAt", ""))

    @property
    def ready(self) -> bool:
        """Running, and healthy when the container has a health check."""
        return self.status == "running" and self.health in (None, "healthy")

    def line(self) -> str:
        text = self.status + (f" ({self.health})" if self.health else "") + f", {self.restarts} restarts"
        if self.status in ("exited", "dead", "restarting") and self.exit_code is not None:
            text += f", last exit code {self.exit_code}"
        return text + (", OOM-killed" if self.oom_killed else "")


def container_addresses(attrs: dict | None) -> set[str]:
    """The container's IP addresses on its networks.

    >>> sorted(container_addresses({"NetworkSettings": {"Networks": {"n": {"IPAddress": "172.18.0.5"}}}}))
    ['172.18.0.5']
    """
    networks = ((attrs or {}).get("NetworkSettings") or {}).get("Networks") or {}
    return {n["IPAddress"] for n in networks.values() if n.get("IPAddress")}


class ContainerSnapshot:
    """`docker inspect` of every container on every host, listed once, inspected concurrently."""

    def __init__(self, by_host: dict[str, dict[str, dict]], errors: dict[str, str]):
        self._by_host, self._errors = by_host, errors

    @classmethod
    def take(cls, hosts: DockerHosts, inventory: Inventory) -> "ContainerSnapshot":
        by_host, errors = {}, {}
        for host in inventory.hosts:
            client, error = hosts.try_get(host.name)
            if error:
                errors[host.name] = error
                continue
            try:
                summaries = client.containers()
                inspected = in_parallel(lambda s: _inspect_or_none(client, s["Id"]), summaries)
                by_host[host.name] = {a["Name"].lstrip("/"): a for a in inspected if a}
            except Unobservable as exc:
                errors[host.name] = f"docker://{host.name}: {exc}"
        return cls(by_host, errors)

    def get(self, name: str, host: str) -> dict | None:
        """The container's inspect data; None when it does not exist; Unobservable when Docker cannot say."""
        if host in self._errors:
            raise Unobservable(self._errors[host])
        return self._by_host[host].get(name)


def _inspect_or_none(client: Docker, container_id: str) -> dict | None:
    try:
        return client.inspect(container_id)
    except ContainerMissing:  # removed between the listing and the inspect
        return None
