"""Docker Compose as the helpers run it: the deployment's project, files and compose_command.

rebuild-engine rebuilds and recreates a service, create-container creates a
missing one; both only ever run `config`, `build` and `up` of one service.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .context import Context
from .errors import RemediationError

TIMEOUT_S = {"config": 60, "build": 1800, "up": 180}
CHECKOUT = Path(__file__).resolve().parent.parent  # compose commands run from here (the lab's is `python -m lab`)


@dataclass(frozen=True)
class ComposeService:
    project: str
    files: list[str]
    working_dir: str | None
    service: str

    def argv(self, command: list[str], *args: str) -> list[str]:
        base = [sys.executable if command[0] in ("python", "python3") else command[0], *command[1:]]
        files = [arg for f in self.files for arg in ("-f", f)]
        where = ["--project-directory", self.working_dir] if self.working_dir else []
        return [*base, "-p", self.project, *files, *where, *args]


def compose_service(ctx: Context, attrs: dict, name: str) -> ComposeService:
    """Where the container came from, read from the labels Compose puts on it (the inventory's compose_file wins)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    service = labels.get("com.docker.compose.service")
    files = ([ctx.inventory.compose_file] if ctx.inventory.compose_file else
             [f for f in (labels.get("com.docker.compose.project.config_files") or "").split(",") if f])
    if not service or not files:
        raise RemediationError(f"{name} was not created by Docker Compose (no com.docker.compose.service/"
                               "config_files labels) and the inventory names no compose_file; rebuild it by hand")
    return ComposeService(labels.get("com.docker.compose.project") or ctx.inventory.compose_project, files,
                          labels.get("com.docker.compose.project.working_dir"), service)


def run_compose(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run one Compose command from the checkout; never raises for its exit status."""
    try:
        return subprocess.run(argv, cwd=CHECKOUT, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 127, "", f"{type(exc).__name__}: {exc}")


def run(ctx: Context, where: ComposeService, verb: str, *args: str) -> str:
    """One Compose command's output; a failure is one line naming the command."""
    argv = where.argv(ctx.inventory.compose_command, verb, *args)
    done = run_compose(argv, TIMEOUT_S[verb])
    if done.returncode != 0:
        last = ((done.stderr or done.stdout or "").strip().splitlines() or ["no output"])[-1]
        raise RemediationError(f"`{' '.join(argv)}` failed (exit {done.returncode}): {ctx.redactor.redact_text(last)}")
    return done.stdout


def config(ctx: Context, where: ComposeService) -> dict:
    """`compose config --format json`: the project as Compose resolves it (anchors, overrides, extends)."""
    try:
        return json.loads(run(ctx, where, "config", "--format", "json"))
    except ValueError as exc:
        raise RemediationError(f"compose config did not print JSON ({exc}); nothing changed") from None


def has_build(ctx: Context, where: ComposeService) -> bool:
    """Whether the service has a build section."""
    services = config(ctx, where).get("services") or {}
    if where.service not in services:
        raise RemediationError(f"service {where.service} is not in {', '.join(where.files)}; nothing changed")
    return bool(services[where.service].get("build"))
