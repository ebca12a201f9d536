"""How long each engine has been down, across runs: the guide's "service outage longer than an hour" trigger.

One run sees an engine down; only the runs before it can say since when. Each complete run records, for the
engines it checked, when a run first saw each one down (kept while it stays down, dropped once it answers), in
outages.json of the state folder, under the same lock and whole-file replace as the other state files.

>>> since = {"risk": datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)}
>>> print(outage_escalation(since, datetime(2026, 1, 1, 10, 5, tzinfo=timezone.utc)).why)
outage longer than an hour: risk down since 09:00 UTC (65 min), the guide's trigger
>>> outage_escalation(since, datetime(2026, 1, 1, 9, 30, tzinfo=timezone.utc)) is None
True
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

from observation.state_file import locked, replace_json

from .escalation import DOWN_CHECKS, Escalation, Failure, _at

FILE = "outages.json"
LONG_OUTAGE = timedelta(hours=1)


def down_engines(failures: Iterable[Failure]) -> set[str]:
    """The engines a run's root causes say do not run or do not answer."""
    return {f.engine for f in failures if f.engine and f.check_id in DOWN_CHECKS}


def record(state_dir: Path, checked: Iterable[str], down: set[str], now: datetime) -> dict[str, datetime]:
    """Note which of the `checked` engines are down now; engine -> since when it has been down, without a break
    seen by any run. Engines this run did not check keep what earlier runs said of them."""
    path = Path(state_dir) / FILE
    with locked(path):
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        for engine in checked:
            if engine in down:
                known.setdefault(engine, now.isoformat(timespec="seconds"))
            else:
                known.pop(engine, None)
        replace_json(path, known)
    return {engine: datetime.fromisoformat(since) for engine, since in known.items() if engine in down}


def outage_escalation(down_since: dict[str, datetime], now: datetime) -> Escalation | None:
    """Level 3 when an engine has been down for over an hour, by the runs' own record; else None."""
    long = sorted((since, engine) for engine, since in down_since.items() if now - since >= LONG_OUTAGE)
    if not long:
        return None
    what = ", ".join(f"{engine} down since {since.astimezone(timezone.utc):%H:%M} UTC "
                     f"({int((now - since).total_seconds() // 60)} min)" for since, engine in long)
    return _at(3, f"outage longer than an hour: {what}, the guide's trigger")
