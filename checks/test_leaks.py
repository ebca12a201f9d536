"""A leak seen by the daily run: engine memory now against what the previous run measured, with no wait of its own.

The weekly engine-memory-growth waits out a window; a daily run compares its one `docker stats` sample with the
last run's (observation/memory_history.py), so a leak that began between two runs fails the next one.
"""
from __future__ import annotations

import time

import pytest

from fixtures.spec import DAILY, check
from observation.memory_history import Remembered, growth_between

from .guide import MEMORY


def remembered_now(engine, usage, attrs: dict) -> Remembered:
    # The sample's clock is monotonic; the next run needs wall-clock time.
    taken = time.time() - (time.monotonic() - usage.taken_at) if usage.taken_at else time.time()
    return Remembered(attrs.get("Id", ""), (attrs.get("State") or {}).get("StartedAt", ""), usage.memory_used or 0,
                      round(taken, 3))


@check("engine-memory-growth-between-runs", "Engine memory did not grow as a leak does since the previous run",
       tiers=DAILY, severity="normal", guide=MEMORY, remedy="diagnose-memory",
       applies=lambda engine: engine.docker, needs=("container-running",))
def test_engine_memory_growth_between_runs(engine, container_usage, container_states, memory_history, inventory,
                                           verdict):
    usage = verdict.observed(container_usage[engine.host, engine.container])
    now = remembered_now(engine, usage, container_states.get(engine.container, engine.host) or {})
    before = verdict.observed(memory_history.before(engine.host, engine.container))
    memory_history.record(engine.host, engine.container, now)  # the next run's reference, whatever this one says
    if before is None:
        pytest.skip(f"first run: no earlier sample of {engine.container} in {memory_history.path}; the next run "
                    "judges growth since this one")
    growth = growth_between(before, now)
    if growth is None:
        pytest.skip(f"{engine.container} was restarted or recreated since the previous run: its memory started "
                    "again, so growth counts from this run")
    grown_mb, rate = growth
    limits = engine.limits(inventory.thresholds)
    minutes = (now.at - before.at) / 60
    verdict.evidence("samples", {"previous_mib": round(before.used_bytes / 2**20, 1),
                                 "now_mib": round(now.used_bytes / 2**20, 1), "minutes_between": round(minutes, 1)})
    verdict.measured("memory_growth_mb_per_min", rate)
    leaking = rate > limits.memory_growth_max_mb_per_min and grown_mb >= limits.memory_growth_min_mb
    if leaking:
        verdict.advise("a leak grows until the memory limit kills the engine: find what holds the memory before it "
                       "does, or restart it to buy time")
    verdict.expect(not leaking, expected=f"growth at most {limits.memory_growth_max_mb_per_min:g} MB/min, or under "
                                         f"{limits.memory_growth_min_mb:g} MB in all, since the previous run",
                   seen=f"{grown_mb:+g} MiB in {minutes:.1f} min ({rate:g} MB/min; {before.used_bytes / 2**20:.0f} -> "
                        f"{now.used_bytes / 2**20:.0f} MiB)")
