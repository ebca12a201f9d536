"""Each engine container's memory as the previous run saw it, so a daily run judges growth with no wait of its own.

The weekly growth check waits out a window between two samples; a leak that starts between two daily runs is seen
only by comparing with what the last run measured. Each run keeps, per container, its id, StartedAt, the memory
in use and the wall-clock time of its one `docker stats` sample, in memory.json of the state folder (merged and
replaced whole under the state lock). A container restarted or recreated since starts counting again.

>>> a = Remembered("c1", "2026-01-01T09:00:00Z", 100 * MIB, 1000.0)
>>> growth_between(a, Remembered("c1", "2026-01-01T09:00:00Z", 250 * MIB, 1030.0))
(150.0, 300.0)
>>> growth_between(a, Remembered("c2", "2026-01-01T09:00:05Z", 250 * MIB, 1030.0)) is None
True
"""
from __future__ import annotations

from dataclasses import dataclass

from .state_file import RunHistory

STATE_FILE = "memory.json"
MIB = 2 ** 20


@dataclass(frozen=True)
class Remembered:
    """One container's memory at one run's sample."""

    id: str
    started_at: str
    used_bytes: int
    at: float  # wall-clock seconds (time.time()) when the sample was taken


def growth_between(before: Remembered, now: Remembered) -> tuple[float, float] | None:
    """(MiB grown, MiB per minute) from one run's sample to the next; None when the container is not the same
    process (recreated or restarted: its memory started again) or no time passed."""
    if before.id != now.id or before.started_at != now.started_at or now.at <= before.at:
        return None
    grown = (now.used_bytes - before.used_bytes) / MIB
    return round(grown, 1), round(grown / ((now.at - before.at) / 60), 1)


class MemoryHistory(RunHistory[Remembered]):
    """The previous run's samples (read once), and this run's (written by `save`)."""

    FILE_NAME = STATE_FILE
    ENTRY = Remembered
