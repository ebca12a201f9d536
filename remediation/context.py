"""What every helper needs: the inventory, Docker clients, a redactor, where to write, how to confirm.

Everything that reaches outside (Docker, printing, confirming, the clock) is a
field, so a test or another caller can pass its own.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from observation.docker_api import Docker, connect
from observation.docker_endpoint import DockerEndpoint
from observation.inventory import DockerHost, Inventory
from observation.redact import Redactor

from .errors import RemediationError
from .registry import command_for

OUT_DIR = Path(__file__).resolve().parent.parent / "reports" / "out"
READY_TIMEOUT_S = 60  # the longest a helper waits for a container it (re)started


def default_audit_path(environ: Mapping[str, str] = os.environ) -> Path:
    """$NAUTILUS_AUDIT_LOG, else reports/out/remediation-audit.log.

    >>> default_audit_path({"NAUTILUS_AUDIT_LOG": "/tmp/a.log"})
    PosixPath('/tmp/a.log')
    """
    return Path(environ.get("NAUTILUS_AUDIT_LOG") or OUT_DIR / "remediation-audit.log")


def never_confirmed(container: str, plan: list[str]) -> None:
    """The default: without someone to ask, nothing disruptive happens."""
    raise RemediationError(f"refusing to act on {container}: nobody confirmed it")


@dataclass
class Context:
    inventory: Inventory
    docker_factory: Callable[[DockerHost], Any] = connect  # host -> docker.APIClient (or a fake with its methods)
    out: Callable[[str], None] = print
    confirm: Callable[[str, list[str]], None] = never_confirmed  # raises RemediationError unless confirmed
    audit_path: Path = field(default_factory=default_audit_path)
    bundle_dir: Path | None = None  # None: reports/out/bundles/<helper>-<target>-<time>/
    ready_timeout_s: float = READY_TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    window_request: Any = None  # remediation.windows.WindowRequest: what `maintenance` was asked on the command line
    # As this run was given them, so a command a helper prints acts on the same deployment and state.
    inventory_path: str | None = None
    state_dir_path: str | None = None
    _docker: dict[str, Docker] = field(default_factory=dict, repr=False)
    # host name -> the endpoint opened for it, in the order opened: what every plan names.
    endpoints: dict[str, DockerEndpoint] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.redactor = Redactor(self.inventory.secrets.values())
        self.ready_timeout_s = min(self.ready_timeout_s, READY_TIMEOUT_S)

    def say(self, line: str) -> None:
        """Print one line of a helper's output, secrets masked."""
        self.out(self.redactor.redact_text(line))

    def command(self, helper: str, argument: str | int | None = None) -> str:
        """The command of another helper, for advice: runnable as printed, on this run's inventory."""
        return command_for(helper, argument, inventory=self.inventory_path, state_dir=self.state_dir_path)

    def docker(self, host: str | None = None) -> Docker:
        """The Docker host named `host` (default: the first), connected once."""
        spec = self.inventory.host(host) if host else self.inventory.hosts[0]
        if not spec.docker:  # docker: false on the host: no helper asks a Docker daemon about what runs there
            raise RemediationError(f"host {spec.name!r} has no Docker (docker: false in the inventory): nothing "
                                   "there is a container to ask Docker about")
        if spec.name not in self._docker:
            self._docker[spec.name] = Docker.open(spec, self.docker_factory)
            self.endpoints[spec.name] = spec.endpoint
            self.say(f"Docker endpoint: {_on(spec.name, spec.endpoint)}")
        return self._docker[spec.name]

    def say_endpoints(self) -> None:
        """One plan line naming the Docker endpoint(s) opened so far; nothing when none was."""
        if self.endpoints:
            plural = "s" if len(self.endpoints) > 1 else ""
            self.say(f"on Docker endpoint{plural}: " + "; ".join(_on(n, e) for n, e in self.endpoints.items()))

    def close(self) -> None:
        for client in self._docker.values():
            client.close()
        self._docker.clear()


def _on(host: str, endpoint: DockerEndpoint) -> str:
    return f"host {host!r} at {endpoint.describe()}"
