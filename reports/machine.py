"""What machines read after a run: the JSON summary and the Prometheus textfiles.

Two textfiles per tier, for node_exporter's textfile collector:
- `nautilus_<tier>.prom`, the checks: `nautilus_check_passed` 0/1 for what was judged (0 is always a
  failure: a blocked check has `nautilus_check_blocked`, one in maintenance `nautilus_check_in_maintenance`),
  and `nautilus_root_cause` once per root cause, the series to page on;
- `nautilus_<tier>_run.prom`, the run: its exit code, duration, last run and last success, so an alert tells a
  failing platform from a cron that stopped or a run that could not start (which rewrites only this file).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.record import CheckRecord

from .run import write_atomically
from .verdict import Cause, Change, causes_by_severity, counts, deploys, in_maintenance, verdict_line

LAST_SUCCESS = "nautilus_checks_last_success_timestamp_seconds"
JUDGED = ("passed", "deploy", "failed", "cannot_observe")
CHECK_LABELS = ["check", "target", "engine", "host", "tier", "severity"]


def summary_document(records: list[CheckRecord], causes: list[Cause], change: Change, *, tier: str, run_id: str,
                     started: float, duration_s: float, exit_code: int, inventory: str | None,
                     artifacts: dict[str, str], partial: str | None = None, wait_healthy: dict | None = None,
                     rerun: str | None = None, escalation: str | None = None,
                     system: tuple[tuple[str, str], ...] = ()) -> dict:
    started_at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    root_causes = []
    for cause in causes:
        entry = cause.summary()
        entry["since"] = change.still.get(cause.main.label, started_at)
        root_causes.append(entry)
    return {
        "tier": tier, "run_id": run_id, "started": started, "started_at": started_at,
        "duration_s": round(duration_s, 3), "exit_code": exit_code, "partial": partial, "inventory": inventory,
        "system": dict(system),
        "verdict": verdict_line(causes, records),
        "counts": counts(records), "root_causes_by_severity": causes_by_severity(causes),
        "root_causes": root_causes, "rerun": rerun, "escalation": escalation,
        "since_previous_run": change.summary(),
        "deploys": deploys(records),
        "maintenance": [{"window": window, "checks": count} for window, count in in_maintenance(records).items()],
        "wait_healthy": wait_healthy,
        "artifacts": artifacts,
        "checks": [_check_summary(r) for r in records],
    }


def _check_summary(record: CheckRecord) -> dict:
    """What the JSON carries per check: the record, its evidence left to the HTML and Allure reports."""
    data = asdict(record)
    data.pop("evidence")
    data["fix"] = record.fix.line() if record.fix else None
    data["label"] = record.label
    return data


def write_summary(path: Path, document: dict) -> None:
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())


def read_summary(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def previous_success(path: Path, tier: str) -> float | None:
    """The last-success time the previous run wrote, carried over when this run failed."""
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and sample.labels.get("tier") == tier:
                    return sample.value
    except ValueError:  # a damaged file: start again rather than fail the run's reporting
        return None
    return None


def _labels(record: CheckRecord, tier: str) -> list[str]:
    return [record.check_id, record.target, record.engine or "", record.host or "", tier, record.severity]


def checks_textfile(records: list[CheckRecord], causes: list[Cause], *, tier: str) -> bytes:
    registry = CollectorRegistry()
    passed = Gauge("nautilus_check_passed", "1 when the check passed on the target at the last run, 0 when it "
                   "failed or could not observe it (blocked and maintenance have series of their own)",
                   CHECK_LABELS, registry=registry)
    blocked = Gauge("nautilus_check_blocked", "1 when the check was not judged: a prerequisite failed (the root cause "
                    "is in blocked_by)", [*CHECK_LABELS, "blocked_by"], registry=registry)
    resting = Gauge("nautilus_check_in_maintenance", "1 when the target was in a maintenance window at the last run, "
                    "so the check was not judged", CHECK_LABELS, registry=registry)
    for r in records:
        if r.outcome in JUDGED:
            passed.labels(*_labels(r, tier)).set(1 if r.outcome in ("passed", "deploy") else 0)
        elif r.outcome == "blocked":
            blocked.labels(*_labels(r, tier), r.blocked_by).set(1)
        elif r.outcome == "maintenance":
            resting.labels(*_labels(r, tier)).set(1)
    root = Gauge("nautilus_root_cause", "1 per root cause of the last run, after merging what one fault failed on "
                 "one subject and collapsing the same fault on several: the series to page on",
                 CHECK_LABELS, registry=registry)
    for cause in causes:
        root.labels(*_labels(cause.main, tier)).set(1)
    outcome = Gauge("nautilus_checks_results", "Checks by outcome at the last run", ["tier", "outcome"],
                    registry=registry)
    for name, count in counts(records).items():
        outcome.labels(tier, name).set(count)
    Gauge("nautilus_checks_deployed_containers", "Containers recreated since the previous run (a deploy: information)",
          ["tier"], registry=registry).labels(tier).set(len(deploys(records)))
    return generate_latest(registry)


def run_textfile(*, tier: str, finished: float, duration_s: float, exit_code: int, last_success: float | None) -> bytes:
    registry = CollectorRegistry()
    Gauge("nautilus_checks_run_duration_seconds", "Wall time of the last run", ["tier"],
          registry=registry).labels(tier).set(round(duration_s, 3))
    Gauge("nautilus_checks_exit_code", "pytest exit code of the last run (0 all passed, 1 checks failed, "
          "2 or more: the suite could not run as asked)", ["tier"], registry=registry).labels(tier).set(exit_code)
    Gauge("nautilus_checks_last_run_timestamp_seconds", "When the last run finished (Unix time)", ["tier"],
          registry=registry).labels(tier).set(finished)
    success = finished if exit_code == 0 else last_success
    if success is not None:
        Gauge(LAST_SUCCESS, "When a run last finished with every check passed (Unix time)", ["tier"],
              registry=registry).labels(tier).set(success)
    return generate_latest(registry)
