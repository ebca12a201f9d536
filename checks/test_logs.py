"""Every platform container's logs, judged with the guide's greps and its Knowledge Base of known errors.

The logs are read once per run for all containers (fixtures/log_samples.py);
each check judges one count or one kind of line for one container.
"""
from __future__ import annotations

from fixtures.spec import DAILY, WEEKLY, check
from observation import known_errors
from observation.errors import Unobserved
from observation.logs import LogScan
from remediation.invocation import mention
from remediation.registry import HELPERS

from .guide import ENGINE_ERRORS, FULL_HEALTH, LOG_MANAGEMENT, SLOW, WEEKLY_MAINTENANCE


def scan_of(container, scans, verdict) -> LogScan:
    """The container's scan; cannot observe (one line why) when Docker could not give its logs."""
    __tracebackhide__ = True
    return verdict.observed(scans[container.host, container.name])


def limits(container, inventory):
    """The thresholds of the container's engine (per-engine overrides), else the inventory's."""
    engine = inventory.engines.get(container.engine) if container.engine else None
    return engine.limits(inventory.thresholds) if engine else inventory.thresholds


def judge_count(scan: LogScan, pattern: str, limit: int, verdict, *, what: str, grep: str, fix: str,
                own_calls=()) -> None:
    """At most `limit` lines matching `pattern` in the window; the latest ones as evidence; `fix` when over.
    Lines logged during the suite's own probe calls (`own_calls`, start and end times) are not counted: the suite
    must not blame an engine for the errors its own probes made it log."""
    __tracebackhide__ = True
    own = scan.caused_by(pattern, own_calls)
    count = scan.count(pattern) - own
    verdict.measured(f"{pattern}_lines", count)
    if own:
        verdict.measured(f"{pattern}_lines_during_own_probes", own)
    verdict.evidence(f"latest_{pattern}_lines", list(scan.latest(pattern)))
    latest = scan.latest(pattern)[-1] if scan.latest(pattern) else ""
    if count > limit:
        verdict.advise(fix)
    verdict.expect(count <= limit, expected=f"at most {limit} {what} in the last {scan.window.label} ({grep})",
                   seen=f"{scan.seen(pattern, own)}; latest: {latest!r}")
    if scan.truncated:
        # Under the limit in the newest lines only: the older part of the window was not read.
        verdict.advise(f"read the rest of the last {scan.window.label} with docker logs")
        verdict.observed(Unobserved(
            f"the container logged more than {scan.window.max_lines} lines in the last {scan.window.label}; "
            f"the newest {scan.window.max_lines} hold {count} {what} (limit {limit})"))


def own_calls(container, probe_calls) -> list[tuple[float, float]]:
    """The suite's probe calls to the container's engine, this run's and earlier runs' (none for a service)."""
    return probe_calls.of(container.engine) if container.engine else []


def helper_command(helper: str | None, container, inventory) -> str | None:
    """The remediation command for a known error's helper, aimed at this container; None when it does not apply.

    A mention: the report hook writes it out with the run's inventory (remediation/invocation.py)."""
    if not helper or helper not in HELPERS:
        return None
    kind = HELPERS[helper].target
    if kind == "container":
        arg = container.name
    elif kind == "engine":
        arg = container.engine
    elif kind == "port":
        owner = inventory.engines.get(container.engine) if container.engine else next(
            (s for s in inventory.services.values() if s.container == container.name), None)
        arg = str(owner.port) if owner else None
    else:
        arg = ""
    if arg is None:
        return None
    return mention(helper, arg or None)


@check("log-error-rate", "Few error lines in the container's last hour of logs", tiers=DAILY, severity="normal",
       guide=FULL_HEALTH,
       needs=("container-exists",))
def test_log_error_rate(container, log_scans, inventory, verdict, probe_calls):
    scan = scan_of(container, log_scans, verdict)
    engine_hint = f"{mention('diagnose-engine', container.engine)}; " if container.engine else ""
    judge_count(scan, "errors", limits(container, inventory).log_errors_per_hour, verdict,
                what="error lines", grep='grep -i "error|exception|failed"',
                fix=f"read them (docker logs {container.name} --since 1h); {engine_hint}a known error is named by "
                    "log-known-errors",
                own_calls=own_calls(container, probe_calls))


@check("log-slow-operations", "Few slow-operation lines in the container's last hour of logs", tiers=DAILY,
       severity="normal", guide=SLOW,
       needs=("container-exists",))
def test_log_slow_operations(container, log_scans, inventory, verdict, probe_calls):
    scan = scan_of(container, log_scans, verdict)
    engine_hint = f"{mention('diagnose-engine', container.engine)}; " if container.engine else ""
    judge_count(scan, "slow", limits(container, inventory).log_slow_per_hour, verdict,
                what="slow-operation lines", grep='grep -iE "slow|timeout|blocking|[0-9]{4,}ms"',
                fix=f"{engine_hint}find the slow dependency or query (the guide's Slow Response Times: scale, tune "
                    "queries, add caching)",
                own_calls=own_calls(container, probe_calls))


@check("log-known-errors", "No error of the guide's Knowledge Base in the last hour of logs or in Docker's state",
       tiers=DAILY, severity="critical", guide=ENGINE_ERRORS,
       needs=("container-exists", "container-not-oom-killed"))
def test_log_known_errors(container, log_scans, container_states, inventory, verdict):
    scan = scan_of(container, log_scans, verdict)
    attrs = container_states.get(container.name, container.host) or {}
    found = [(hit.error, f"in the logs: {hit.line!r}") for hit in scan.known]
    seen_ids = {e.id for e, _ in found}
    for entry in known_errors.in_state(attrs):
        if entry.id not in seen_ids:
            found.append((entry, f"in docker inspect: {entry.state.matches(attrs)}"))
    verdict.measured("known_errors", len(found))
    verdict.evidence("known_errors", [{"id": e.id, "guide_error": e.error, "section": e.section, "where": where,
                                       "fix": e.fix} for e, where in found])
    fixes = []
    for entry, _ in found:
        command = helper_command(entry.helper, container, inventory)
        fixes.append(f"{entry.id}: {entry.fix}" + (f"; run first: {command}" if command else ""))
    if fixes:
        verdict.advise(" | ".join(fixes))
    verdict.expect(not found, expected=f"none of the guide's known errors in the last {scan.window.label} of logs "
                                       "or in docker inspect",
                   seen=" | ".join(f'{entry.id} ("{entry.error}", {entry.section}) {where}' for entry, where in found))


@check("weekly-error-summary", "Error lines over the week stay within the weekly budget", tiers=WEEKLY,
       severity="normal", guide=WEEKLY_MAINTENANCE,
       needs=("container-exists",))
def test_weekly_error_summary(container, weekly_log_scans, inventory, verdict, probe_calls):
    scan = scan_of(container, weekly_log_scans, verdict)
    judge_count(scan, "errors", limits(container, inventory).weekly_errors_max, verdict,
                what="error lines", grep='grep -i "error|exception"',
                fix=f"read the week's errors (docker logs {container.name} --since 168h) and fix the recurring ones",
                own_calls=own_calls(container, probe_calls))


# Log Management's summary by engine over the last 24 hours: the guide loops over the engines only.
def _engine_container(container) -> bool:
    return bool(container.engine)


@check("log-errors-24h", "Error lines in the engine's last 24 hours of logs stay within the day's budget",
       tiers=WEEKLY, severity="normal", guide=LOG_MANAGEMENT, applies=_engine_container,
       needs=("container-exists",))
def test_log_errors_24h(container, day_log_scans, inventory, verdict, probe_calls):
    scan = scan_of(container, day_log_scans, verdict)
    judge_count(scan, "errors", limits(container, inventory).log_errors_per_day, verdict,
                what="error lines", grep='grep -i "error|exception|failed"',
                fix=f"read them (docker logs {container.name} --since 24h); {mention('diagnose-engine', container.engine)}"
                    "; a known error is named by log-known-errors",
                own_calls=own_calls(container, probe_calls))


@check("log-warnings-24h", "Warning lines in the engine's last 24 hours of logs stay within the day's budget",
       tiers=WEEKLY, severity="minor", guide=LOG_MANAGEMENT, applies=_engine_container,
       needs=("container-exists",))
def test_log_warnings_24h(container, day_log_scans, inventory, verdict, probe_calls):
    scan = scan_of(container, day_log_scans, verdict)
    judge_count(scan, "warnings", limits(container, inventory).log_warnings_per_day, verdict,
                what="warning lines", grep='grep -i "warning|warn"',
                fix=f"read them (docker logs {container.name} --since 24h) and fix what keeps warning",
                own_calls=own_calls(container, probe_calls))
