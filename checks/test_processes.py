"""Engines that run as plain processes (docker: false), judged on what they have: their log (a file or their unit's
journal) by the same greps and Knowledge Base as a container's logs, and their memory and CPU (psutil) by the
same thresholds as a container's.

The process is found once per run (fixtures/process_samples.py); one that cannot be found is "cannot observe",
with the line that says where to tell the inventory, never a failure of the engine (port-open judges that).
"""
from __future__ import annotations

from fixtures.spec import DAILY, check
from observation.process_logs import log_source
from observation.stats import cpu_level, memory_level
from remediation.invocation import mention

from .guide import BOTTLENECKS, ENGINE_ERRORS, FULL_HEALTH, SLOW
from .test_logs import judge_count


def _process(engine) -> bool:
    return not engine.docker


def _scan(engine, process_log_scans, verdict):
    __tracebackhide__ = True
    return verdict.observed(process_log_scans[engine.name])


def _read_them(engine) -> str:
    return f"read them ({log_source(engine)}); {mention('diagnose-process', engine.name)} shows its last lines"


@check("process-log-error-rate", "Few error lines in the process engine's last hour of logs", tiers=DAILY,
       severity="normal", guide=FULL_HEALTH, applies=_process,
       needs=("port-open",))
def test_process_log_error_rate(engine, process_log_scans, inventory, verdict, probe_calls):
    scan = _scan(engine, process_log_scans, verdict)
    judge_count(scan, "errors", engine.limits(inventory.thresholds).log_errors_per_hour, verdict,
                what="error lines", grep='grep -i "error|exception|failed"',
                fix=f"{_read_them(engine)}; a known error is named by process-log-known-errors",
                own_calls=probe_calls.of(engine.name))


@check("process-log-slow-operations", "Few slow-operation lines in the process engine's last hour of logs",
       tiers=DAILY, severity="normal", guide=SLOW, applies=_process,
       needs=("port-open",))
def test_process_log_slow_operations(engine, process_log_scans, inventory, verdict, probe_calls):
    scan = _scan(engine, process_log_scans, verdict)
    judge_count(scan, "slow", engine.limits(inventory.thresholds).log_slow_per_hour, verdict,
                what="slow-operation lines", grep='grep -iE "slow|timeout|blocking|[0-9]{4,}ms"',
                fix=f"{_read_them(engine)}; find the slow dependency or query (the guide's Slow Response Times)",
                own_calls=probe_calls.of(engine.name))


@check("process-log-known-errors", "No error of the guide's Knowledge Base in the process engine's last hour of logs",
       tiers=DAILY, severity="critical", guide=ENGINE_ERRORS, applies=_process,
       needs=("port-open",))
def test_process_log_known_errors(engine, process_log_scans, verdict):
    scan = _scan(engine, process_log_scans, verdict)
    found = [(hit.error, hit.line) for hit in scan.known]
    verdict.measured("known_errors", len(found))
    verdict.evidence("known_errors", [{"id": e.id, "guide_error": e.error, "section": e.section, "line": line,
                                       "fix": e.fix} for e, line in found])
    if found:  # the guide's fixes, in its words; the process helpers instead of Docker ones
        verdict.advise(" | ".join(f"{e.id}: {e.fix}" for e, _ in found)
                       + f" | {mention('diagnose-process', engine.name)} shows the process and its last lines")
    verdict.expect(not found, expected=f"none of the guide's known errors in the last {scan.window.label} of "
                                       f"{log_source(engine)}",
                   seen=" | ".join(f'{e.id} ("{e.error}", {e.section}): {line!r}' for e, line in found))


@check("process-memory-usage", "Process engine memory stays below the warning share of its limit", tiers=DAILY,
       severity="normal", guide=BOTTLENECKS, applies=_process,
       needs=("port-open",))
def test_process_memory_usage(engine, process_usage, inventory, verdict):
    usage = verdict.observed(process_usage[engine.name])
    limits = engine.limits(inventory.thresholds)
    pct = usage.memory_pct
    level = memory_level(pct, limits.memory_high_pct, limits.memory_warning_pct, limits.memory_critical_pct)
    verdict.measured("memory_percent", pct)
    verdict.measured("memory_level", level)
    if pct > limits.memory_warning_pct:
        verdict.advise(f"find the leak or give it more memory; {mention('diagnose-process', engine.name)} shows its "
                       f"memory and last log lines; {mention('restart-process', engine.name)} releases it")
    verdict.expect(pct <= limits.memory_warning_pct,
                   expected=f"memory at most {limits.memory_warning_pct:g} % of its limit",
                   seen=f"{pct:g} % ({usage.rss_bytes / 2**20:.0f} MiB RSS of {usage.limit_bytes / 2**20:.0f} MiB, "
                        f"{usage.limit_source}): {level} (HIGH above {limits.memory_high_pct:g} %, CRITICAL above "
                        f"{limits.memory_critical_pct:g} %)")


@check("process-cpu-usage", "Process engine CPU stays below the critical share", tiers=DAILY, severity="normal",
       guide=BOTTLENECKS, applies=_process,
       needs=("port-open",))
def test_process_cpu_usage(engine, process_usage, inventory, verdict):
    usage = verdict.observed(process_usage[engine.name])
    limits = engine.limits(inventory.thresholds)
    level = cpu_level(usage.cpu_pct, limits.cpu_warning_pct, limits.cpu_critical_pct)
    verdict.measured("cpu_percent", usage.cpu_pct)
    verdict.measured("cpu_level", level)
    if usage.cpu_pct > limits.cpu_critical_pct:
        verdict.advise(f"find the busy work ({mention('diagnose-process', engine.name)} shows its last log lines), "
                       "scale it out or give it more CPUs")
    verdict.expect(usage.cpu_pct <= limits.cpu_critical_pct,
                   expected=f"CPU at most {limits.cpu_critical_pct:g} % (100 % is one core, as in docker stats)",
                   seen=f"{usage.cpu_pct:g} % of one core, with its children ({level}; MODERATE above "
                        f"{limits.cpu_warning_pct:g} %)")
