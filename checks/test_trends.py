"""A week of trends from the inventory's Prometheus: engine response times and peak process resources.

Range queries over the last 7 days at one point an hour, so each answer stays
a few KB; all queries of a run go out together. Without a Prometheus in the
inventory these checks are skipped and say so.
"""
from __future__ import annotations

import time

import pytest

from fixtures.spec import WEEKLY, check
from observation.errors import Unobservable
from observation.prometheus import Trend, exports_duration, instance_port, series_values

from .guide import WEEKLY_MAINTENANCE

NO_PROMETHEUS = "the inventory names no Prometheus (inventory prometheus.url): no weekly trends to read"


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


@check("weekly-response-times", "The engine's hourly mean response time stayed below slow all week", tiers=WEEKLY,
       severity="normal", guide=WEEKLY_MAINTENANCE, remedy="diagnose-engine", applies=exports_duration,
       needs=("service-health-answers@prometheus",))
def test_weekly_response_times(engine, prometheus, response_trends, inventory, verdict):
    if prometheus is None:
        pytest.skip(NO_PROMETHEUS)
    metric = engine.metrics.names["duration"]
    series = verdict.observed(response_trends[engine.name])
    trend = Trend([p for s in series for p in series_values(s)])
    if not trend.points:
        verdict.advise(f"check that Prometheus scrapes the {engine.name} engine")
        raise Unobservable(f"Prometheus at {prometheus.url} has no {metric}_sum/_count samples this week")
    limit = engine.limits(inventory.thresholds).response_slow_ms
    when, worst_s = trend.worst
    verdict.evidence("hourly_mean_ms", trend.hourly(scale=1000, digits=2))
    verdict.measured("week_mean_ms", round(trend.mean * 1000, 2))
    verdict.measured("worst_hour_ms", round(worst_s * 1000, 2))
    verdict.expect(worst_s * 1000 <= limit, expected=f"every hourly mean of {metric} at most {limit:g} ms this week",
                   seen=f"{worst_s * 1000:.4g} ms in the hour to {_when(when)} (week mean {trend.mean * 1000:.4g} ms,"
                        f" {sum(1 for _, v in trend.points if v * 1000 > limit)} slow hours of {len(trend.points)})")


def _owners(inventory) -> dict[int, object]:
    """Engines and services by port, the first host's first (a target's instance label carries the port)."""
    order = {h.name: i for i, h in enumerate(inventory.hosts)}
    items = sorted([*inventory.engines.values(), *inventory.services.values()], key=lambda i: order[i.host])
    owners: dict[int, object] = {}
    for item in items:
        owners.setdefault(item.port, item)
    return owners


def _memory_limit(item, container_states) -> int:
    if not getattr(item, "container", None):
        return 0
    try:
        attrs = container_states.get(item.container, item.host)
    except Unobservable:
        return 0
    return ((attrs or {}).get("HostConfig") or {}).get("Memory") or 0


@check("weekly-peak-resources", "No engine or service peaked above its memory or CPU limit this week", tiers=WEEKLY,
       severity="normal", guide=WEEKLY_MAINTENANCE,
       needs=("service-health-answers@prometheus",))
def test_weekly_peak_resources(prometheus, peak_resources, container_states, inventory, verdict):
    if prometheus is None:
        pytest.skip(NO_PROMETHEUS)
    memory, cpu = (verdict.observed(peak_resources[k]) for k in ("memory_bytes", "cpu_cores"))
    owners = _owners(inventory)
    peaks: dict[str, dict] = {}
    for figure, matrix in (("memory_bytes", memory), ("cpu_cores", cpu)):
        for series in matrix:
            instance = (series.get("metric") or {}).get("instance", "")
            owner = owners.get(instance_port(instance))
            points = series_values(series)
            if owner is None or not points:
                continue
            when, value = max(points, key=lambda p: p[1])
            entry = peaks.setdefault(owner.name, {"item": owner, "instance": instance})
            if value >= entry.get(figure, (0, -1))[1]:
                entry[figure] = (when, value)
    silent = sorted(e.name for e in inventory.engines.values() if e.name not in peaks)
    verdict.evidence("without_process_metrics", silent)
    if not peaks:
        raise Unobservable(f"Prometheus at {prometheus.url} has no process_resident_memory_bytes or "
                           "process_cpu_seconds_total for any engine or service of the inventory this week")
    problems, table = [], {}
    for name, entry in sorted(peaks.items()):
        item = entry["item"]
        limits = item.limits(inventory.thresholds) if hasattr(item, "limits") else inventory.thresholds
        row = {"instance": entry["instance"]}
        if "memory_bytes" in entry:
            when, peak = entry["memory_bytes"]
            row["peak_memory_mb"], row["memory_peak_at"] = round(peak / 1024 ** 2, 1), _when(when)
            limit = _memory_limit(item, container_states)
            if limit:
                pct = round(100 * peak / limit, 1)
                row["peak_memory_pct_of_limit"] = pct
                if pct > limits.memory_warning_pct:
                    problems.append(f"{name} memory {pct:g} % of its {limit / 1024 ** 2:.0f} MB limit at {_when(when)}"
                                    f" (above {limits.memory_warning_pct:g} %)")
            else:
                row["memory_limit"] = "none known: peak shown, not judged"
        if "cpu_cores" in entry:
            when, cores = entry["cpu_cores"]
            pct = round(100 * cores, 1)
            row["peak_cpu_pct"], row["cpu_peak_at"] = pct, _when(when)
            if pct > limits.cpu_critical_pct:
                problems.append(f"{name} CPU {pct:g} % (of one core, over 5 min) at {_when(when)} "
                                f"(above {limits.cpu_critical_pct:g} %)")
        table[name] = row
    verdict.evidence("weekly_peaks", table)
    verdict.measured("targets_judged", len(table))
    if problems:
        verdict.advise("look at what ran at that hour (weekly-response-times, logs), raise the limit or scale the "
                       "engine")
    verdict.expect(not problems, expected=f"peaks of {', '.join(sorted(table))} within the memory and CPU limits",
                   seen="; ".join(problems))
