"""Containers' CPU and memory against the guide's thresholds, and engines' memory growth over one shared window.

One `docker stats` sample of every running platform container is taken once
per run, concurrently (container_usage); the weekly growth check reads two
such samples, one at each end of a single window for all engines.
"""
from __future__ import annotations

from fixtures.spec import DAILY, WEEKLY, check
from observation.container_facts import limits_of
from observation.stats import cpu_level, growth_mb_per_min, memory_level
from remediation.invocation import mention

from .guide import BOTTLENECKS, MEMORY


def usage_of(container, container_usage, verdict):
    __tracebackhide__ = True
    usage = verdict.observed(container_usage[container.host, container.name])
    verdict.evidence("docker_stats", usage.evidence())
    return usage


def engine_hint(container) -> str:
    return f"; {mention('diagnose-engine', container.engine)} shows its stats and logs" if container.engine else ""


@check("container-memory-usage", "Container memory stays below the warning share of its limit", tiers=DAILY,
       severity="normal", guide=MEMORY,
       needs=("container-running",))
def test_container_memory_usage(container, container_usage, inventory, verdict):
    usage = usage_of(container, container_usage, verdict)
    limits = limits_of(container, inventory)
    pct = usage.memory_pct
    level = memory_level(pct, limits.memory_high_pct, limits.memory_warning_pct, limits.memory_critical_pct)
    verdict.measured("memory_percent", pct)
    verdict.measured("memory_level", level)
    ok = pct <= limits.memory_warning_pct
    if not ok:
        verdict.advise("restart it to release memory, raise its limit, or find the leak (engine-memory-growth)"
                       + engine_hint(container))
    verdict.expect(ok, expected=f"memory at most {limits.memory_warning_pct:g} % of its limit",
                   seen=f"{pct:g} % ({usage.memory_used_mb:g} MiB of {usage.memory_limit / 2**20:.0f} MiB): {level} "
                        f"(HIGH above {limits.memory_high_pct:g} %, CRITICAL above {limits.memory_critical_pct:g} %)")


@check("container-cpu-usage", "Container CPU stays below the critical share", tiers=DAILY, severity="normal",
       guide=BOTTLENECKS,
       needs=("container-running",))
def test_container_cpu_usage(container, container_usage, inventory, verdict):
    usage = usage_of(container, container_usage, verdict)
    limits = limits_of(container, inventory)
    level = cpu_level(usage.cpu_pct, limits.cpu_warning_pct, limits.cpu_critical_pct)
    verdict.measured("cpu_percent", usage.cpu_pct)
    verdict.measured("cpu_level", level)
    verdict.measured("network_rx_tx_mib", f"{usage.net_rx / 2**20:.1f} / {usage.net_tx / 2**20:.1f}")
    verdict.measured("block_read_write_mib", f"{usage.block_read / 2**20:.1f} / {usage.block_write / 2**20:.1f}")
    ok = usage.cpu_pct <= limits.cpu_critical_pct
    if not ok:
        verdict.advise("find the busy work in its logs, scale it out or give it more CPUs" + engine_hint(container))
    verdict.expect(ok, expected=f"CPU at most {limits.cpu_critical_pct:g} % (docker stats: 100 % is one core)",
                   seen=f"{usage.cpu_pct:g} % of one core ({level}; MODERATE above {limits.cpu_warning_pct:g} %, "
                        f"{usage.online_cpus} CPUs online)")


@check("engine-memory-growth", "Engine memory does not grow steadily (a leak)", tiers=WEEKLY, severity="normal",
       guide=MEMORY, remedy="diagnose-engine", applies=lambda engine: engine.docker,
       needs=("container-running",))
def test_engine_memory_growth(engine, memory_growth, inventory, verdict):
    first, second = verdict.observed(memory_growth[engine.name])
    limits = engine.limits(inventory.thresholds)
    growth = growth_mb_per_min(first, second)
    window_s = second.taken_at - first.taken_at
    verdict.evidence("samples", {"start_mib": first.memory_used_mb, "end_mib": second.memory_used_mb,
                                 "window_s": round(window_s, 1), "limit_mib": round(second.memory_limit / 2**20)})
    verdict.measured("memory_growth_mb_per_min", growth)
    verdict.expect(growth <= limits.memory_growth_max_mb_per_min,
                   expected=f"growth at most {limits.memory_growth_max_mb_per_min:g} MB/min",
                   seen=f"{growth:g} MB/min ({first.memory_used_mb:g} -> {second.memory_used_mb:g} MiB in "
                        f"{window_s:.0f} s; {second.memory_pct:g} % of its limit now): growing as a leak does")
