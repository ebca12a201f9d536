"""Maintenance windows: a target under planned work is reported as "in maintenance", never as failing.

A window names a subject (an engine, a service or a container, as the
dependency families do: `engine:risk`, `service:redis`, `container:x`), a
reason, who opened it, and an end: a time, or none for a window that lasts
until it is closed (isolate-engine's, closed by restore-engine). Windows live
in `maintenance.json` in the state directory, beside the run state; one past
its end is over by itself and dropped at the next write. The file is replaced
atomically under a lock, so a helper and a run never see half of it.

>>> from datetime import datetime, timezone
>>> w = Window("engine:risk", "index rebuild", "maintenance", "2026-12-07T10:00:00+00:00", "2026-12-07T12:00:00+00:00")
>>> w.line()
'in maintenance: index rebuild, until 2026-12-07 12:00 UTC (opened by maintenance)'
>>> w.active(datetime(2026, 12, 7, 11, 0, tzinfo=timezone.utc)), w.active(datetime(2026, 12, 7, 12, 1, tzinfo=timezone.utc))
(True, False)
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .inventory import Inventory
from .state_file import locked, replace_json

WINDOWS_FILE = "maintenance.json"
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")


class WindowError(ValueError):
    """A window cannot be opened as asked; one line says why."""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Window:
    subject: str  # engine:<name>, service:<name> or container:<name>
    reason: str
    opened_by: str  # the helper that opened it
    since: str  # ISO 8601
    until: str | None  # ISO 8601; None: until it is closed (restore-engine)

    @property
    def name(self) -> str:
        """The subject as an operator names it: `risk`, `redis`, a container."""
        return self.subject.split(":", 1)[1]

    def active(self, at: datetime | None = None) -> bool:
        return self.until is None or datetime.fromisoformat(self.until) > (at or now_utc())

    def line(self) -> str:
        end = (datetime.fromisoformat(self.until).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
               if self.until else "it is closed")
        return f"in maintenance: {self.reason}, until {end} (opened by {self.opened_by})"


def parse_duration(text: str) -> timedelta:
    """`2h`, `90m`, `1d12h`: how long a window lasts.

    >>> parse_duration("1h30m"), parse_duration("2d")
    (datetime.timedelta(seconds=5400), datetime.timedelta(days=2))
    """
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groupdict().values()):
        raise WindowError(f"--for {text!r}: write a duration such as 2h, 90m or 1d12h")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    duration = timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"])
    if duration <= timedelta(0):
        raise WindowError(f"--for {text!r}: the window must last more than nothing")
    return duration


def subject_of(inventory: Inventory, name: str) -> str:
    """The family a name belongs to: an engine (by name, `<name>-engine` or container), a service (by name or
    container), else a container of the inventory; an unknown name is refused.

    >>> from observation.inventory import load_inventory
    >>> inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    >>> subject_of(inv, "risk"), subject_of(inv, "nautilus-risk-engine"), subject_of(inv, "nautilus-redis")
    ('engine:risk', 'engine:risk', 'service:redis')
    """
    for engine in inventory.engines.values():
        if name in (engine.name, f"{engine.name}-engine", engine.container):
            return f"engine:{engine.name}"
    for service in inventory.services.values():
        if name in (service.name, service.container):
            return f"service:{service.name}"
    known = sorted([*inventory.engines, *inventory.services])
    raise WindowError(f"unknown target {name!r}: name an engine or a service of the inventory ({', '.join(known)})")


class WindowBook:
    """The windows in `directory/maintenance.json`."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / WINDOWS_FILE

    def _read(self) -> dict[str, Window]:
        try:
            data = json.loads(self.path.read_text())
            return {subject: Window(**body) for subject, body in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            raise WindowError(f"the maintenance file {self.path} is unreadable ({type(exc).__name__}); "
                              "fix or remove it") from None

    def active(self, at: datetime | None = None) -> dict[str, Window]:
        """The windows open now, by subject."""
        return {s: w for s, w in self._read().items() if w.active(at)}

    def open(self, window: Window) -> None:
        self._change(lambda windows: windows.__setitem__(window.subject, window))

    def close(self, subject: str) -> Window | None:
        """Close the subject's window; the window that was open, or None."""
        closed = []
        self._change(lambda windows: closed.append(windows.pop(subject, None)))
        return closed[0]

    def _change(self, edit) -> None:
        with locked(self.path):  # a run and a helper may write at the same moment
            windows = self.active()  # windows over by now are dropped here
            edit(windows)
            replace_json(self.path, {s: asdict(w) for s, w in windows.items()})
