"""What machines read after a run: the JSON summary and the Prometheus textfile.

The textfile is for node_exporter's textfile collector. Besides a 0/1 gauge
per check and target it carries the time of the last run and of the last
successful one, so an alert can tell a failing platform from a cron that
stopped running.
"""
from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from .results import CheckResult, counts, deploys, failing_by_severity, in_maintenance
from .run import write_atomically

LAST_SUCCESS = "nautilus_checks_last_success_timestamp_seconds"
# A skipped check has no 0/1 to give; one in maintenance gets a series of its own, so 0 always means a failure.
JUDGED = ("passed", "deploy", "failed", "blocked", "cannot_observe")


def summary_document(results: list[CheckResult], *, tier: str, run_id: str, started: float, duration_s: float,
                     exit_code: int, inventory: str | None, artifacts: dict[str, str],
                     wait_healthy: dict | None = None) -> dict:
    return {
        "tier": tier, "run_id": run_id, "started": started, "duration_s": round(duration_s, 3),
        "exit_code": exit_code, "inventory": inventory,
        "counts": counts(results), "failing_by_severity": failing_by_severity(results),
        "root_causes": [r.label for r in results if r.is_root_cause],
        "deploys": deploys(results),
        "maintenance": [{"window": window, "checks": count} for window, count in in_maintenance(results).items()],
        "artifacts": artifacts,
        "wait_healthy": wait_healthy,
        "checks": [r.summary() for r in results],
    }


def write_summary(path: Path, document: dict) -> None:
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())


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


def textfile(results: list[CheckResult], *, tier: str, finished: float, duration_s: float, exit_code: int,
             last_success: float | None) -> bytes:
    registry = CollectorRegistry()
    check = Gauge("nautilus_check_passed", "1 when the check passed on the target at the last run, else 0",
                  ["check", "target", "tier", "severity"], registry=registry)
    maintenance = Gauge("nautilus_check_in_maintenance", "1 when the target was in a maintenance window at the last "
                        "run, so the check was not judged (no nautilus_check_passed series for it)",
                        ["check", "target", "tier", "severity"], registry=registry)
    for r in results:
        if r.outcome in JUDGED:
            check.labels(r.check_id, r.target, tier, r.severity).set(1 if r.outcome in ("passed", "deploy") else 0)
        elif r.outcome == "maintenance":
            maintenance.labels(r.check_id, r.target, tier, r.severity).set(1)
    Gauge("nautilus_checks_deployed_containers", "Containers recreated since the previous run (a deploy: information)",
          ["tier"], registry=registry).labels(tier).set(len(deploys(results)))
    outcome = Gauge("nautilus_checks_results", "Checks by outcome at the last run", ["tier", "outcome"],
                    registry=registry)
    for name, count in counts(results).items():
        outcome.labels(tier, name).set(count)
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
