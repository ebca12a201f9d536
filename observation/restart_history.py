"""What one run remembers of each container for the next: its id, RestartCount and StartedAt.

A restart between two runs is invisible in one `docker inspect` once the
container is back up; comparing with the previous run shows it. The state is
a small JSON file, merged and replaced atomically (temp file + rename, under
a lock) at the end of a run, so parallel workers and concurrent runs never
leave it half written or drop each other's entries.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import Unobserved

STATE_FILE = "containers.json"


@dataclass(frozen=True)
class Seen:
    """A container as one run saw it."""

    id: str
    restart_count: int
    started_at: str
    checked_at: str  # when the run looked (UTC, ISO 8601)

    @classmethod
    def of(cls, attrs: dict, now: datetime | None = None) -> Seen:
        return cls(id=attrs.get("Id", ""), restart_count=attrs.get("RestartCount") or 0,
                   started_at=(attrs.get("State") or {}).get("StartedAt", ""),
                   checked_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"))


def key(host: str, name: str) -> str:
    return f"{host}/{name}"


def changes(before: Seen, now: Seen) -> list[str]:
    """What happened to the container between two runs, in words; empty when nothing did.

    >>> a = Seen("c1", 2, "2025-08-01T10:00:00Z", "2025-08-01T11:00:00+00:00")
    >>> changes(a, Seen("c1", 2, "2025-08-01T10:00:00Z", "x"))
    []
    >>> changes(a, Seen("c1", 4, "2025-08-01T12:00:00Z", "x"))
    ['Docker restarted it 2 times (RestartCount 2 -> 4)', 'started again at 2025-08-01T12:00:00Z (was 2025-08-01T10:00:00Z)']
    >>> changes(a, Seen("c2", 0, "2025-08-01T12:00:00Z", "x"))[0]
    'recreated (a new container id) and started at 2025-08-01T12:00:00Z'
    """
    if before.id and now.id and before.id != now.id:
        return [f"recreated (a new container id) and started at {now.started_at}"]
    found = []
    if now.restart_count > before.restart_count:
        found.append(f"Docker restarted it {now.restart_count - before.restart_count} times "
                     f"(RestartCount {before.restart_count} -> {now.restart_count})")
    if now.started_at != before.started_at:
        found.append(f"started again at {now.started_at} (was {before.started_at})")
    return found


class RestartHistory:
    """The previous run's record (read once), and what this run saw (written by `save`)."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / STATE_FILE
        self.seen: dict[str, Seen] = {}
        self.previous: dict[str, Seen] | Unobserved = self._read()

    def _read(self) -> dict[str, Seen] | Unobserved:
        try:
            data = json.loads(self.path.read_text())
            return {k: Seen(**v) for k, v in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            return Unobserved(f"the state file {self.path} is unreadable ({type(exc).__name__}: {exc}); "
                              "this run rewrites it, so the next one compares again")

    def before(self, host: str, name: str) -> Seen | None | Unobserved:
        """The previous run's view of the container; None when no run recorded it."""
        if isinstance(self.previous, Unobserved):
            return self.previous
        return self.previous.get(key(host, name))

    def record(self, host: str, name: str, seen: Seen) -> None:
        self.seen[key(host, name)] = seen

    def save(self) -> None:
        """Merge this run's entries into the file as it is now and replace it atomically."""
        if not self.seen:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another run or worker may save at the same moment
            current = self._read()
            merged = {k: asdict(v) for k, v in (current if isinstance(current, dict) else {}).items()}
            merged.update({k: asdict(v) for k, v in self.seen.items()})
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".containers-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(merged, out, indent=1, sort_keys=True)
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
