"""What the lab runs, read from compose.yaml so the stack has one description."""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from . import COMPOSE_FILE, LabError


@dataclass(frozen=True)
class LabService:
    service: str
    container: str
    port: int | None

    @property
    def engine(self) -> str | None:
        """The engine name for `<e>-engine` services (and `backend`), else None."""
        if self.service.endswith("-engine"):
            return self.service[: -len("-engine")]
        return "backend" if self.service == "backend" else None


# libyaml's parser where PyYAML was built with it: every lab command reads compose.yaml several times, and the
# pure-Python parser spent most of a heal that had nothing to do.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose_document() -> dict:
    """compose.yaml as a document (anchors resolved)."""
    return yaml.load(COMPOSE_FILE.read_text(), Loader=SAFE_LOADER)


def services() -> list[LabService]:
    spec = compose_document()
    found = []
    for name, body in spec["services"].items():
        ports = body.get("ports") or []
        port = int(str(ports[0]).rsplit(":", 2)[1]) if ports else None
        found.append(LabService(name, body["container_name"], port))
    return found


def find(target: str) -> LabService:
    """A service by engine name (`risk`), service (`risk-engine`) or container name."""
    for svc in services():
        if target in (svc.service, svc.container, svc.engine):
            return svc
    known = ", ".join(sorted(s.engine or s.service for s in services()))
    raise LabError(f"unknown lab target {target!r}; known: {known}")
