"""The audit log: one JSON line per action taken (dry runs and read-only helpers write none).

>>> line = record("restart-engine", "nautilus-risk-engine", "nautilus-risk-engine is running and healthy",
...               "/b", user="sre", now="2025-08-01T10:00:00+00:00")
>>> list(line)
['time', 'user', 'helper', 'target', 'applied', 'outcome', 'bundle']
>>> line["applied"], line["bundle"]
(True, '/b')
"""
from __future__ import annotations

import datetime
import getpass
import json
import os
from pathlib import Path

from .errors import RemediationError


def current_user() -> str:
    """Who ran it; through sudo, the person behind it too."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (sudo by {sudo})" if sudo and sudo != user else user


def record(helper: str, target: str | None, outcome: str, bundle: str | os.PathLike | None = None, *,
           user: str | None = None, now: str | None = None) -> dict:
    return {"time": now or datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "user": user or current_user(), "helper": helper, "target": target, "applied": True,
            "outcome": outcome, "bundle": os.fspath(bundle) if bundle else None}


def ensure_writable(path: Path) -> None:
    """Refuse to act at all when the action could not be recorded (creates the folder, not the file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(path if path.exists() else path.parent, os.W_OK) else "not writable"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    if problem or path.is_dir():
        raise RemediationError(f"cannot write the audit log {path} ({problem or 'a directory'}); "
                               "set NAUTILUS_AUDIT_LOG to a writable file; nothing changed")


def append(path: Path, line: dict) -> None:
    """One line, written with one call in append mode, so concurrent helpers do not interleave."""
    with path.open("a") as log:
        log.write(json.dumps(line) + "\n")
