"""The few Docker Engine API calls the helpers make: each bounded by a timeout, each failing in one line.

The helpers talk to a `docker.APIClient` (the SDK's low-level client) through
`Docker`; tests pass any object with the same methods instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import docker
import requests

from fixtures.inventory import DockerHost

from .errors import ContainerMissing, RemediationError, describe, short_reason

API_TIMEOUT_S = 10  # every Docker API call; a restart adds its own stop timeout to this


def connect(host: DockerHost) -> docker.APIClient:
    """A low-level client for one inventory host (unix socket, tcp with TLS, ssh)."""
    tls = docker.tls.TLSConfig(
        client_cert=(f"{host.cert_path}/cert.pem", f"{host.cert_path}/key.pem"),
        ca_cert=f"{host.cert_path}/ca.pem", verify=True) if host.tls_verify and host.cert_path else None
    return docker.APIClient(base_url=host.url, timeout=API_TIMEOUT_S, tls=tls)


_FAILURES = (docker.errors.DockerException, requests.RequestException, OSError)


class Docker:
    """One Docker host, with the library's exceptions turned into one-line RemediationErrors."""

    def __init__(self, api: Any, host: DockerHost):
        self.api, self.host = api, host

    @classmethod
    def open(cls, factory: Callable[[DockerHost], Any], host: DockerHost) -> "Docker":
        try:
            api = factory(host)
            api.ping()
        except _FAILURES as exc:
            raise RemediationError(f"no Docker daemon answers at {host.url} ({short_reason(exc)}); start it "
                                   "(`sudo systemctl start docker`) or fix hosts[].url in the inventory") from None
        return cls(api, host)

    def _call(self, what: str, container: str | None, fn: Callable, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound:
            raise ContainerMissing(f"container {container} does not exist on Docker host {self.host.name!r}") from None
        except _FAILURES as exc:
            raise RemediationError(f"Docker host {self.host.name!r} failed to {what} ({describe(exc)})") from None

    def containers(self) -> list[dict]:
        """`docker ps -a`: one summary per container, with `name` added."""
        summaries = self._call("list containers", None, self.api.containers, all=True)
        return [{**s, "name": (s.get("Names") or ["/?"])[0].lstrip("/")} for s in summaries]

    def inspect(self, name: str) -> dict:
        return self._call(f"inspect {name}", name, self.api.inspect_container, name)

    def logs(self, name: str, tail: int | str = "all", since: int | None = None) -> str:
        raw = self._call(f"read the logs of {name}", name, self.api.logs, name, stdout=True, stderr=True,
                         tail=tail, since=since)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def stats(self, name: str) -> dict:
        """One `docker stats --no-stream` sample (the daemon takes two readings about a second apart)."""
        return self._call(f"sample the stats of {name}", name, self.api.stats, name, stream=False)

    def start(self, name: str) -> None:
        self._call(f"start {name}", name, self.api.start, name)

    def restart(self, name: str, timeout: int = 10) -> None:
        self._call(f"restart {name}", name, self.api.restart, name, timeout=timeout)

    def close(self) -> None:
        close = getattr(self.api, "close", None)
        if close:
            close()


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
