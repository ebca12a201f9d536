"""Old runs' artifacts are pruned per tier: keep the newest N runs and none older than D days.

The newest run of a tier is never removed, and nothing is touched outside the
reports directory: only names that parse as `<tier>-<run id>...` and resolve
inside it are candidates (a symlink pointing elsewhere is left alone).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .run import parse_stem, run_started


@dataclass(frozen=True)
class Policy:
    keep_runs: int | None  # None or 0: no limit by count
    keep_days: float | None  # None or 0: no limit by age

    def describe(self) -> str:
        parts = [f"the newest {self.keep_runs} runs" if self.keep_runs else "",
                 f"runs younger than {self.keep_days:g} days" if self.keep_days else ""]
        return " and ".join(p for p in parts if p) or "everything"


def runs_to_prune(names: list[str], tier: str, policy: Policy, now: datetime) -> set[str]:
    """Run ids of `tier` that the policy lets go.

    >>> names = ["daily-20261101-000000-aaaaaa.html", "daily-20261120-000000-bbbbbb-allure",
    ...          "daily-20261125-000000-cccccc.json", "weekly-20261101-000000-dddddd.html", "latest-daily.html"]
    >>> sorted(runs_to_prune(names, "daily", Policy(keep_runs=2, keep_days=None), datetime(2026, 11, 25)))
    ['20261101-000000-aaaaaa']
    >>> sorted(runs_to_prune(names, "daily", Policy(keep_runs=None, keep_days=1), datetime(2026, 12, 31)))
    ['20261101-000000-aaaaaa', '20261120-000000-bbbbbb']
    """
    ids = sorted({parsed[1] for parsed in map(parse_stem, names) if parsed and parsed[0] == tier}, reverse=True)
    doomed = set()
    for rank, run_id in enumerate(ids):
        if rank == 0:
            continue  # the latest run stays whatever the policy says
        too_many = bool(policy.keep_runs) and rank >= policy.keep_runs
        too_old = bool(policy.keep_days) and now - run_started(run_id) > timedelta(days=policy.keep_days)
        if too_many or too_old:
            doomed.add(run_id)
    return doomed


def prune(out_dir: Path, tier: str, policy: Policy, now: datetime | None = None) -> list[Path]:
    """Removes the doomed runs' files and folders; returns what was removed."""
    root = out_dir.resolve()
    entries = list(root.iterdir()) if root.is_dir() else []
    doomed = runs_to_prune([e.name for e in entries], tier, policy, now or datetime.now())
    removed = []
    for entry in entries:
        parsed = parse_stem(entry.name)
        if not parsed or parsed[0] != tier or parsed[1] not in doomed:
            continue
        if entry.is_symlink() or entry.resolve().parent != root:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    return removed
