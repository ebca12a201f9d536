"""A small JSON file shared by runs and helpers: changed under a lock, replaced whole.

Concurrent runs, xdist workers and helpers may write the same file at one
moment; each takes the lock, reads what is there now, and replaces the file
atomically (temp file, then rename), so none drops another's entries and no
reader sees half a file.

`RunHistory` is the shape the per-container histories share (restart_history, memory_history): one JSON object
of `host/name` -> a dataclass's fields, read once at the start of a run, this run's entries merged in at its end.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar, Generic, Iterator, TypeVar

from .errors import Unobserved

Entry = TypeVar("Entry")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold `path`'s lock (a `.lock` file beside it) for a read-change-replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def replace_json(path: Path, data: dict) -> None:
    """Write `data` to `path` whole or not at all."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def key(host: str, name: str) -> str:
    """How a container is named in a history file.

    >>> key("local", "nautilus-redis")
    'local/nautilus-redis'
    """
    return f"{host}/{name}"


def read_entries(path: Path, entry: type[Entry]) -> dict[str, Entry] | Unobserved:
    """The file's entries, each made by `entry(**fields)`; {} when there is no file yet. A file that cannot be read
    or is not an object of such entries (corrupt, empty, another shape) is Unobserved with one line saying so,
    never a traceback: `save` then rewrites it, so the next run compares again.
    """
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object of entries is expected, not {type(data).__name__}")
        return {k: entry(**v) for k, v in data.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as exc:  # a value that is no object of fields fails `**` as TypeError
        return Unobserved(f"the state file {path} is unreadable ({type(exc).__name__}: {exc}); "
                          "this run rewrites it, so the next one compares again")


def merge_entries(path: Path, entry: type[Entry], new: dict[str, Entry]) -> None:
    """Merge `new` into the file as it is now (what other runs and workers saved meanwhile is kept; an unreadable
    file is replaced) and replace it atomically, under its lock. Nothing is written for nothing new."""
    if not new:
        return
    with locked(path):  # another run or worker may save at the same moment
        current = read_entries(path, entry)
        merged = {k: asdict(v) for k, v in (current if isinstance(current, dict) else {}).items()}
        merged.update({k: asdict(v) for k, v in new.items()})
        replace_json(path, merged)


class RunHistory(Generic[Entry]):
    """The previous run's entries (read once), and what this run records (merged into the file by `save`).

    A subclass names its file (FILE_NAME, in the state folder) and its entry dataclass (ENTRY)."""

    FILE_NAME: ClassVar[str]
    ENTRY: ClassVar[type]

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / self.FILE_NAME
        self.seen: dict[str, Entry] = {}
        self.previous: dict[str, Entry] | Unobserved = read_entries(self.path, self.ENTRY)

    def before(self, host: str, name: str) -> Entry | None | Unobserved:
        """The previous run's entry for the container; None when no run recorded it."""
        if isinstance(self.previous, Unobserved):
            return self.previous
        return self.previous.get(key(host, name))

    def record(self, host: str, name: str, entry: Entry) -> None:
        self.seen[key(host, name)] = entry

    def save(self) -> None:
        """Merge this run's entries into the file as it is now and replace it atomically."""
        merge_entries(self.path, self.ENTRY, self.seen)
