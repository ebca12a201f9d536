"""What every helper needs: the inventory, a Docker client, a redactor, the audit log."""
from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker

from fixtures.inventory import Inventory
from fixtures.redact import Redactor

OUT_DIR = Path(__file__).resolve().parent.parent / "reports" / "out"


class RemediationError(Exception):
    """A helper cannot go on; the message is one line saying why and what to do."""


@dataclass
class Context:
    inventory: Inventory
    docker_factory: object = None  # callable returning a Docker client; replaced in tests
    audit_path: Path = field(default_factory=lambda: Path(os.environ.get("NAUTILUS_AUDIT_LOG",
                                                                        OUT_DIR / "remediation-audit.log")))
    _docker: object = None

    @property
    def redactor(self) -> Redactor:
        return Redactor(self.inventory.secrets.values())

    def docker(self):
        if self._docker is None:
            host = self.inventory.hosts[0]
            try:
                client = (self.docker_factory or (lambda: docker.DockerClient(base_url=host.url, timeout=15)))()
                client.ping()
            except docker.errors.DockerException as exc:
                raise RemediationError(f"no Docker daemon answers at {host.url}: start it "
                                       f"(`sudo systemctl start docker`) and retry") from exc
            self._docker = client
        return self._docker

    def container(self, name: str):
        try:
            return self.docker().containers.get(name)
        except docker.errors.NotFound:
            raise RemediationError(f"container {name} does not exist on {self.inventory.hosts[0].name}") from None

    def audit(self, helper: str, target: str | None, outcome: str, bundle: Path | None = None) -> None:
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "user": getpass.getuser(), "helper": helper,
                "target": target, "applied": True, "outcome": self.redactor.redact_text(outcome),
                "bundle": str(bundle) if bundle else None}
        with self.audit_path.open("a") as log:
            log.write(json.dumps(line) + "\n")
