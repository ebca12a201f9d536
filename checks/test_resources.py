"""Containers' CPU and memory against the guide's thresholds, engines' memory growth over one shared window, and the
limits the guide's tuning sections ask for (the factor engine's memory, the daemon's ulimits).

One `docker stats` sample of every running platform container is taken once
per run, concurrently (container_usage); the weekly growth check reads two
such samples, one at each end of a single window for all engines.
"""
from __future__ import annotations

from fixtures.spec import DAILY, WEEKLY, check
from observation import ulimits
from observation.container_facts import limits_of
from observation.errors import Unobservable
from observation.stats import cpu_level, growth_mb_per_min, memory_level
from remediation.invocation import mention

from .guide import APP_TUNING, BOTTLENECKS, DOCKER_TUNING, MEMORY

GIB = 2**30


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


@check("container-cpu-scale-out", "Container CPU stays below the guide's scale-out line", tiers=WEEKLY,
       severity="minor", guide=DOCKER_TUNING,
       needs=("container-running",))
def test_container_cpu_scale_out(container, container_usage, inventory, verdict):
    # The daily container-cpu-usage fails at the bottleneck section's HIGH (80 %); the tuning section names the
    # engines above 70 % to scale out, which is capacity work for the week, not an incident.
    usage = usage_of(container, container_usage, verdict)
    line = limits_of(container, inventory).cpu_scale_out_pct
    verdict.measured("cpu_percent", usage.cpu_pct)
    ok = usage.cpu_pct <= line
    if not ok:
        verdict.advise("scale it out (docker-compose up --scale <service>=N) or give it more CPUs; a steady load "
                       "shows in weekly-peak-resources" + engine_hint(container))
    verdict.expect(ok, expected=f"CPU at most {line:g} % (docker stats: 100 % is one core), the guide's high-CPU "
                                "line for scaling out",
                   seen=f"{usage.cpu_pct:g} % of one core ({usage.online_cpus} CPUs online)")


def _memory_minimum_set(engine) -> bool:
    """Per engine only: the guide names a minimum for the factor engine alone."""
    return engine.docker and bool(engine.thresholds.get("memory_limit_min_gb"))


@check("engine-memory-minimum", "The engine may use at least the memory the guide says it needs", tiers=WEEKLY,
       severity="normal", guide=APP_TUNING, applies=_memory_minimum_set,
       needs=("container-exists",))
def test_engine_memory_minimum(engine, container_states, docker_hosts, inventory, verdict):
    attrs = container_states.get(engine.container, engine.host)
    verdict.expect(attrs is not None, expected=f"container {engine.container} to exist on {engine.host}",
                   seen="no such container")
    minimum_gb = engine.limits(inventory.thresholds).memory_limit_min_gb
    limit = (attrs.get("HostConfig") or {}).get("Memory") or 0
    where = "its memory limit (HostConfig.Memory)"
    if not limit:  # unlimited: the host's memory is what it may use
        limit = docker_hosts.get(engine.host).info().get("MemTotal") or 0
        where = f"no memory limit, so the memory of host {engine.host} (docker info MemTotal)"
        if not limit:
            raise Unobservable(f"{engine.container} has no memory limit and docker info of {engine.host} gives no "
                               "MemTotal")
    verdict.measured("memory_available_gib", round(limit / GIB, 2))
    ok = limit >= minimum_gb * GIB
    if not ok:
        verdict.advise(f"raise the memory limit of {engine.container} to at least {minimum_gb:g}G in the compose "
                       "file (mem_limit, or deploy.resources.limits.memory) and recreate it, on a host with that "
                       "much memory to give")
    verdict.expect(ok, expected=f"at least {minimum_gb:g} GiB for the {engine.name} engine (the guide's minimum)",
                   seen=f"{limit / GIB:.2f} GiB: {where}")


ULIMITS = ("nofile", "memlock")


@check("container-ulimits", "Container's open-files and locked-memory limits reach the guide's", tiers=WEEKLY,
       severity="minor", guide=DOCKER_TUNING,
       needs=("container-running",))
def test_container_ulimits(container, container_states, host, inventory, verdict):
    attrs = container_states.get(container.name, container.host) or {}
    limits = limits_of(container, inventory)
    minimum = {"nofile": limits.ulimit_nofile_min, "memlock": limits.ulimit_memlock_min}
    wanted = [name for name in ULIMITS if minimum[name] != 0]
    if container.host != inventory.hosts[0].name and any(n not in ulimits.configured(attrs) for n in wanted):
        raise Unobservable(f"{container.name} is on host {container.host!r}: the daemon's default ulimits are read "
                           f"from /proc on {inventory.hosts[0].name!r} only; set them on the container to judge them")
    values, sources = ulimits.effective(attrs, wanted, lambda path: host.file(path).content_string)
    verdict.evidence("ulimits", {n: {"soft": ulimits.shown(values[n]), "from": sources[n]} for n in wanted})
    short = [n for n in wanted if not ulimits.reaches(values[n], minimum[n])]
    if short:
        verdict.advise("set the guide's default-ulimits in /etc/docker/daemon.json (nofile 1048576, memlock -1) and "
                       "restart the daemon in a maintenance window, or set ulimits: on the service in the compose "
                       "file and recreate the container")
    verdict.expect(not short, expected=", ".join(f"{n} at least {ulimits.shown(minimum[n])}" for n in wanted),
                   seen="; ".join(f"{n} {ulimits.shown(values[n])} ({sources[n]})" for n in short))
