"""When the suite's own probe calls reached each engine, kept between runs, so log lines they caused are not
blamed on the engine.

A probe call (the guide's calculate and risk check, the WebSocket statistics, any endpoint the inventory gives
rules) is a real request: an engine may log errors answering it (the platform's analytics engine logs several
for a calculation it has no data for). The log checks read the last hour, day or week, so the calls of earlier
runs matter as much as this run's. Each run adds its calls, per engine, to probes.json in the state folder
(merged and replaced whole under the state lock); calls older than the longest log window are dropped.

>>> calls = ProbeCalls("/nonexistent")
>>> calls.note("analytics", 100.0, 100.4)
>>> calls.of("analytics"), calls.of("risk")
([(100.0, 100.4)], [])
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .state_file import locked, replace_json

STATE_FILE = "probes.json"
KEEP_S = 8 * 86400  # the weekly log window (168 h) and a day's slack
KEEP_PER_ENGINE = 20_000  # a run every minute for a week is ~10 000 calls per endpoint


class ProbeCalls:
    """Earlier runs' probe calls (read once) and this run's (noted as they end, written by `save`)."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / STATE_FILE
        self.earlier = self._read()
        self.mine: dict[str, list[tuple[float, float]]] = {}
        self._lock = threading.Lock()  # calls end on the sampler's threads

    def _read(self) -> dict[str, list[tuple[float, float]]]:
        """Tolerant: a missing, unreadable or wrong-shaped file is no earlier call (the lines are then counted)."""
        try:
            data = json.loads(self.path.read_text())
            return {str(engine): [(float(a), float(b)) for a, b in calls] for engine, calls in data.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def note(self, engine: str, started: float, ended: float) -> None:
        with self._lock:
            self.mine.setdefault(engine, []).append((started, ended))

    def of(self, engine: str) -> list[tuple[float, float]]:
        with self._lock:
            return [*self.earlier.get(engine, ()), *self.mine.get(engine, ())]

    def save(self, now: float | None = None) -> None:
        if not self.mine:
            return
        oldest = (now or time.time()) - KEEP_S
        with locked(self.path):
            merged = self._read()  # what other runs wrote since this one started
            for engine, calls in self.mine.items():
                merged.setdefault(engine, []).extend(calls)
            kept = {engine: sorted(c for c in calls if c[1] >= oldest)[-KEEP_PER_ENGINE:]
                    for engine, calls in merged.items()}
            replace_json(self.path, {engine: calls for engine, calls in kept.items() if calls})
