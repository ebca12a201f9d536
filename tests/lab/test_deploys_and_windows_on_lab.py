"""Deploys and planned work on the real lab: neither is an incident, and a deploy gate waits for a deploy to settle.

- Every container recreated (what `compose up` of new images does) is one deploy line, exit 0, no 0 series;
  a restart by Docker afterwards is still a failure.
- A maintenance window on Redis, then Redis stopped: Redis's checks and every engine's bus checks say
  "in maintenance", exit 0; the window closed, the same stop is a root cause again.
- `--wait-healthy`: two engines recreated and gated at once settle green within the window; a stopped
  engine still fails after it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import LAB_INVENTORY, ROOT, lab_cli, run_checks

INVENTORY = f"--inventory={LAB_INVENTORY}"


def summary_of(reports) -> dict:
    return json.loads(next(p for p in reports.glob("*.json") if not p.name.startswith("latest-")).read_text())


def series(textfile) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(textfile.read_text()) for s in family.samples}


def checks(tmp_path, name: str, *args: str, tier: str = "daily"):
    """A run with the test's one state directory, its reports in a folder of their own."""
    reports = tmp_path / name
    run = run_checks(tmp_path, "-m", tier, INVENTORY, f"--state-dir={tmp_path / 'state'}",
                     f"--reports-dir={reports}", *args, reports=True)
    return run, reports


@pytest.mark.lab_fault
def test_a_redeploy_of_every_container_is_one_line_and_no_failure(tmp_path, lab, fault):
    before, _ = checks(tmp_path, "before")
    assert before.returncode == 0, before.output[-3000:]
    lab_cli("redeploy")  # 14 new containers, healthy and settled
    after, reports = checks(tmp_path, "after")
    assert after.returncode == 0 and after.failed == set(), after.output[-3000:]
    lines = [line for line in after.output.splitlines() if line.startswith("deploy since the previous run")]
    assert len(lines) == 1 and "14 containers recreated" in lines[0], after.output[-3000:]
    assert all(c in lines[0] for c in ("nautilus-risk-engine", "nautilus-postgres", "nautilus-frontend"))
    summary = summary_of(reports)
    assert summary["root_causes"] == [] and len(summary["deploys"]) == 14 and summary["counts"]["deploy"] >= 14
    samples = series(reports / "textfile" / "nautilus_daily.prom")
    assert not [k for k, v in samples.items() if k[0] == "nautilus_check_passed" and v == 0]
    assert samples[("nautilus_checks_deployed_containers", (("tier", "daily"),))] == 14
    html = (tmp_path / "report.html").read_text()  # run_checks names the HTML report
    assert "14 containers recreated" in html and html.count("deploy since the previous run") == 1

    fault("restart", "risk")  # Docker restarts the same container: that stays a finding
    restarted, _ = checks(tmp_path, "restarted", "-k", "restarts_since_last_run")
    assert restarted.failed == {"test_container_restarts_since_last_run[nautilus-risk-engine]"}, restarted.output
    assert "deploy since" not in restarted.output


@pytest.mark.lab_fault
def test_a_window_on_redis_keeps_its_outage_and_what_rests_on_it_from_paging(tmp_path, lab, fault, heal):
    state = f"--state-dir={tmp_path / 'state'}"
    env = dict(os.environ, NAUTILUS_AUDIT_LOG=str(tmp_path / "audit.log"))
    opened = subprocess.run([sys.executable, "-m", "remediation", "maintenance", "redis", "--for", "1h", "--reason",
                             "redis upgrade", "--apply", INVENTORY, state], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=60)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    fault("stop", "redis")
    quiet, reports = checks(tmp_path, "redis-down")
    assert quiet.returncode == 0 and quiet.failed == set(), quiet.output[-3000:]
    maintenance = {n for n, o in quiet.outcomes.items() if o == "skipped" and "redis in maintenance" in quiet.messages[n]}
    assert {"test_redis_ping", "test_container_running[nautilus-redis]", "test_engine_bus_connection[risk-engine]",
            "test_engine_heartbeat_fresh[ml-engine]"} <= maintenance, sorted(maintenance)
    assert summary_of(reports)["maintenance"][0]["window"].startswith("redis in maintenance: redis upgrade, until ")
    samples = series(reports / "textfile" / "nautilus_daily.prom")
    assert not [k for k, v in samples.items() if k[0] == "nautilus_check_passed" and v == 0]
    resting = [dict(labels) for name, labels in samples if name == "nautilus_check_in_maintenance"]
    assert {"check": "redis-ping", "severity": "critical", "tier": "daily"}.items() <= \
        next(r for r in resting if r["check"] == "redis-ping").items()

    closed = subprocess.run([sys.executable, "-m", "remediation", "maintenance", "redis", "--end", "--apply",
                             INVENTORY, state], cwd=ROOT, env=env, text=True, capture_output=True, timeout=60)
    assert closed.returncode == 0, closed.stdout + closed.stderr
    loud, _ = checks(tmp_path, "redis-down-again", tier="emergency")
    assert loud.returncode == 1 and "test_container_running[nautilus-redis]" in loud.failed, loud.output[-3000:]
    heal()


@pytest.mark.lab_fault
def test_the_gate_waits_for_a_fresh_deploy_and_not_for_a_stopped_engine(tmp_path, lab, fault):
    recorded, _ = checks(tmp_path, "recorded")  # the previous run the gated one compares with
    assert recorded.returncode == 0, recorded.output[-3000:]
    # Gated at once, while both are still starting: like real engines, they take 8 s before they listen.
    lab_cli("redeploy", "risk", "ml", "--no-wait", "--start-delay=8")
    gated, reports = checks(tmp_path, "gated", "--wait-healthy=90")
    assert gated.returncode == 0 and gated.failed == set(), gated.output[-3000:]
    wait = summary_of(reports)["wait_healthy"]
    assert wait["settled"] and wait["attempts"] >= 2 and wait["waited_s"] < 90, wait
    assert f"--wait-healthy: every check passed after {wait['waited_s']:.1f} s ({wait['attempts']} attempts)" \
        in gated.output
    assert "deploy since the previous run: 2 containers recreated" in gated.output

    fault("stop", "strategy")
    stopped, reports = checks(tmp_path, "stopped", "--wait-healthy=6", tier="emergency")
    assert stopped.returncode == 1 and "test_container_running[nautilus-strategy-engine]" in stopped.failed
    assert "still failing after" in stopped.output and not summary_of(reports)["wait_healthy"]["settled"]
