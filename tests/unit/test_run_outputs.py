"""Run ids, retention, the JSON summary, the Prometheus textfile and the HTML story, without a lab."""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from reports import machine
from reports.html_story import pytest_html_results_table_row, story
from reports.results import CheckResult
from reports.retention import Policy, prune
from reports.run import RunFiles, new_run_id, parse_stem


def result(check_id="container-running", target="nautilus-risk-engine", outcome="passed", **extra) -> CheckResult:
    base = dict(nodeid=f"checks/x.py::test_x[{target}]", check_id=check_id, title="t", target=target, engine="risk",
                area="containers", tiers="emergency,daily", severity="critical", guide="G > S", outcome=outcome,
                duration_s=0.01)
    base.update(extra)
    return CheckResult(**base)


def test_run_ids_differ_within_one_second():
    ids = {new_run_id(now=1_800_000_000) for _ in range(200)}
    assert len(ids) == 200
    assert all(parse_stem(RunFiles(__import__("pathlib").Path("/r"), "daily", i).html.name) == ("daily", i)
               for i in ids)


def make_run(out, tier, when: datetime, suffix="aaaaaa"):
    run_id = when.strftime("%Y%m%d-%H%M%S") + "-" + suffix
    files = RunFiles(out, tier, run_id)
    files.html.write_text("html")
    files.summary.write_text("{}")
    files.allure_dir.mkdir()
    (files.allure_dir / "x-result.json").write_text("{}")
    return files


def test_retention_keeps_the_newest_runs_and_touches_nothing_else(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    now = datetime(2026, 11, 25, 12)
    old = [make_run(out, "daily", now - timedelta(days=d), suffix=f"{d:06x}") for d in (40, 20, 10, 1)]
    weekly = make_run(out, "weekly", now - timedelta(days=90))
    (out / "latest-daily.html").write_text("latest")
    (out / "textfile").mkdir()
    outside = tmp_path / "daily-20200101-000000-bbbbbb.html"  # same name pattern, outside the reports dir
    outside.write_text("keep me")
    (out / "daily-20200101-000000-cccccc.html").symlink_to(outside)
    removed = prune(out, "daily", Policy(keep_runs=3, keep_days=15), now=now)
    assert {p.name for p in removed} == {old[0].html.name, old[0].summary.name, old[0].allure_dir.name,
                                         old[1].html.name, old[1].summary.name, old[1].allure_dir.name}
    assert old[2].html.exists() and old[3].allure_dir.exists()
    assert weekly.html.exists() and (out / "latest-daily.html").exists() and outside.read_text() == "keep me"


def test_retention_never_removes_the_latest_run(tmp_path):
    latest = make_run(tmp_path, "daily", datetime(2020, 1, 1))
    assert prune(tmp_path, "daily", Policy(keep_runs=1, keep_days=1), now=datetime(2026, 1, 1)) == []
    assert latest.html.exists()


def families(data: bytes) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(data.decode()) for s in f.samples}


def test_textfile_carries_the_last_success_across_a_failed_run(tmp_path):
    path = tmp_path / "nautilus_daily.prom"
    good = [result()]
    path.write_bytes(machine.textfile(good, tier="daily", finished=1000.0, duration_s=2, exit_code=0,
                                      last_success=None))
    assert machine.previous_success(path, "daily") == 1000.0
    bad = [result(outcome="failed"), result(target="x", outcome="skipped")]
    samples = families(machine.textfile(bad, tier="daily", finished=2000.0, duration_s=2, exit_code=1,
                                        last_success=machine.previous_success(path, "daily")))
    assert samples[("nautilus_checks_last_success_timestamp_seconds", (("tier", "daily"),))] == 1000.0
    assert samples[("nautilus_checks_last_run_timestamp_seconds", (("tier", "daily"),))] == 2000.0
    passed = [k for k in samples if k[0] == "nautilus_check_passed"]
    assert len(passed) == 1 and samples[passed[0]] == 0  # a skipped check has no 0/1
    assert samples[("nautilus_checks_results", (("outcome", "skipped"), ("tier", "daily")))] == 1


def test_a_damaged_textfile_is_no_last_success(tmp_path):
    path = tmp_path / "t.prom"
    path.write_text("this is { not prometheus\n")
    assert machine.previous_success(path, "daily") is None


def test_summary_lists_root_causes_and_counts():
    doc = machine.summary_document([result(outcome="failed", cause="down", remediation="python -m remediation x"),
                                    result(check_id="port-open", outcome="blocked", blocked_by="container-running")],
                                   tier="daily", run_id="r", started=0, duration_s=1, exit_code=1, inventory=None,
                                   artifacts={})
    assert doc["root_causes"] == ["container-running[nautilus-risk-engine]"]
    assert doc["counts"]["blocked"] == 1 and doc["failing_by_severity"]["critical"] == 2
    assert "evidence" not in doc["checks"][0]


def test_story_escapes_what_targets_said():
    hostile = "<script>alert(1)</script>\\x1b[31m"
    page = story([result(outcome="failed", cause=hostile, remediation="fix <now>")], tier="daily", run_id="r",
                 started=0, duration_s=1)
    assert "<script>" not in page and "&lt;script&gt;" in page and "fix &lt;now&gt;" in page
    assert "1 root cause," in page and "<svg" not in page  # nothing measured: no empty chart


def test_passed_rows_show_no_severity_and_failed_rows_show_it_once():
    class Report:
        nodeid, outcome, duration = "n", "passed", 0.1
        user_properties = [("check_id", "a"), ("severity", "critical"), ("measured:response_ms", "12.5"),
                           ("remediation", "python -m remediation restart-engine risk")]
    cells = ["<td>r</td>", "<td>id</td>", "<td>d</td>"]
    pytest_html_results_table_row(Report, cells)
    assert cells[2].endswith("></td>") and "response_ms 12.5" in cells[3] and "restart-engine" not in cells[4]
    Report.outcome = "failed"
    cells = ["<td>r</td>", "<td>id</td>", "<td>d</td>"]
    pytest_html_results_table_row(Report, cells)
    assert ">critical<" in cells[2] and "restart-engine risk" in cells[4]
    assert sum("restart-engine" in c for c in cells) == 1


def test_shared_files_are_replaced_whole(tmp_path):
    from reports.run import write_atomically
    target = tmp_path / "latest-daily.html"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two" and os.listdir(tmp_path) == ["latest-daily.html"]


def test_alert_rules_use_only_metrics_the_textfile_has():
    import re
    from pathlib import Path
    rules = (Path(__file__).resolve().parents[2] / "docs" / "recipes" / "nautilus-checks.rules.yml").read_text()
    used = set(re.findall(r"\bnautilus_[a-z_]+", rules)) - {"nautilus_checks"}
    written = machine.textfile([result(), result(outcome="failed")], tier="daily", finished=1.0, duration_s=1,
                               exit_code=1, last_success=0.5).decode()
    assert used and all(name in written for name in used), used
