"""Run ids, retention, the JSON summary, the Prometheus textfile and the HTML story, without a lab."""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from fixtures.record import CheckRecord, Fix
from reports import machine
from reports.html_story import pytest_html_results_table_row, story
from reports.retention import Policy, prune
from reports.run import RunFiles, new_run_id, parse_stem
from reports.verdict import change_since, root_causes


def result(check_id="container-running", target="nautilus-risk-engine", outcome="passed", **extra) -> CheckRecord:
    base = dict(nodeid=f"checks/x.py::test_x[{target}]", check_id=check_id, title="t", target=f"container:{target}",
                target_id=target, engine="risk", area="containers", tiers=("emergency", "daily"), severity="critical",
                guide="G > S", outcome=outcome, subject="engine:risk", duration_s=0.01)
    base.update(extra)
    return CheckRecord(**base)


def textfiles(records: list[CheckRecord], **run) -> bytes:
    return machine.checks_textfile(records, root_causes(records), tier="daily") + machine.run_textfile(
        tier="daily", **{"finished": 1.0, "duration_s": 1, "exit_code": 1, "last_success": 0.5, **run})


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


def test_the_run_file_carries_the_last_success_across_a_failed_run(tmp_path):
    path = tmp_path / "nautilus_daily_run.prom"
    path.write_bytes(machine.run_textfile(tier="daily", finished=1000.0, duration_s=2, exit_code=0, last_success=None))
    assert machine.previous_success(path, "daily") == 1000.0
    samples = families(machine.run_textfile(tier="daily", finished=2000.0, duration_s=2, exit_code=1,
                                            last_success=machine.previous_success(path, "daily")))
    assert samples[("nautilus_checks_last_success_timestamp_seconds", (("tier", "daily"),))] == 1000.0
    assert samples[("nautilus_checks_last_run_timestamp_seconds", (("tier", "daily"),))] == 2000.0


def test_zero_means_a_failure_and_each_root_cause_is_one_series():
    killed = [result(outcome="failed", finding="[nautilus-risk-engine] exited 137"),
              result(check_id="container-exit-code", outcome="failed", severity="normal", finding="137: killed"),
              result(check_id="port-open", target="port-8200", outcome="blocked",
                     blocked_by="container-running[nautilus-risk-engine]"),
              result(check_id="redis-ping", target="", outcome="maintenance", subject="service:redis",
                     note="redis in maintenance: upgrade"),
              result(target="nautilus-ml-engine", outcome="skipped"), result(target="nautilus-ml-engine")]
    samples = families(machine.checks_textfile(killed, root_causes(killed), tier="daily"))
    zeros = [k for k, v in samples.items() if k[0] == "nautilus_check_passed" and v == 0]
    assert sorted(dict(k[1])["check"] for k in zeros) == ["container-exit-code", "container-running"]
    roots = [k for k in samples if k[0] == "nautilus_root_cause"]
    assert len(roots) == 1 and dict(roots[0][1]) == {"check": "container-running", "engine": "risk", "host": "",
                                                    "severity": "critical", "target": "container:nautilus-risk-engine",
                                                    "tier": "daily"}
    blocked = [k for k in samples if k[0] == "nautilus_check_blocked"]
    assert len(blocked) == 1 and dict(blocked[0][1])["blocked_by"] == "container-running[nautilus-risk-engine]"
    assert [dict(k[1])["check"] for k in samples if k[0] == "nautilus_check_in_maintenance"] == ["redis-ping"]
    assert samples[("nautilus_checks_results", (("outcome", "skipped"), ("tier", "daily")))] == 1


def test_a_damaged_textfile_is_no_last_success(tmp_path):
    path = tmp_path / "t.prom"
    path.write_text("this is { not prometheus\n")
    assert machine.previous_success(path, "daily") is None


def test_causes_on_one_subject_merge_and_the_same_fault_elsewhere_collapses():
    records = [result(outcome="failed", finding="[nautilus-risk-engine] stopped", fix=Fix("start it", dry_run=True)),
               result(check_id="container-exit-code", outcome="failed", severity="normal", finding="137"),
               result(target="nautilus-ml-engine", outcome="failed", subject="engine:ml", engine="ml",
                      finding="[nautilus-ml-engine] stopped"),
               result(check_id="container-exit-code", target="nautilus-ml-engine", outcome="failed", severity="normal",
                      subject="engine:ml", engine="ml", finding="137"),
               result(check_id="host-cpu-load", target="", outcome="failed", severity="normal", subject=None,
                      finding="load 9"),
               result(check_id="port-open", target="port-8200", outcome="blocked",
                      blocked_by="container-running[nautilus-risk-engine]")]
    causes = root_causes(records)
    assert [c.main.label for c in causes] == ["container-running[nautilus-risk-engine]", "host-cpu-load"]
    first = causes[0]
    assert [r.label for r in first.also] == ["container-exit-code[nautilus-risk-engine]"]
    assert first.targets == ["nautilus-risk-engine", "nautilus-ml-engine"] and first.blocks == 1
    assert first.fix_line() == "start it   (dry run; add --apply to act); the same for nautilus-ml-engine"


def test_critical_causes_come_first_then_the_one_that_blocks_most():
    records = [result(check_id="host-cpu-load", target="", subject=None, outcome="failed", severity="normal"),
               result(target="a", subject="engine:a", outcome="failed", finding="[a] down"),
               result(target="b", subject="engine:b", outcome="failed", finding="[b] gone missing"),
               *[result(check_id="port-open", target=f"p{i}", outcome="blocked", blocked_by="container-running[b]")
                 for i in range(3)]]
    assert [c.main.label for c in root_causes(records)] == [
        "container-running[b]", "container-running[a]", "host-cpu-load"]


def test_summary_lists_ordered_root_causes_and_what_changed():
    records = [result(outcome="failed", finding="[nautilus-risk-engine] down",
                      fix=Fix("python -m remediation x", dry_run=True)),
               result(check_id="port-open", target="port-8200", outcome="blocked",
                      blocked_by="container-running[nautilus-risk-engine]")]
    causes = root_causes(records)
    previous = {"run_id": "r0", "started_at": "2026-12-01 10:00:00",
                "root_causes": [{"label": "container-running[nautilus-risk-engine]", "since": "2026-12-01 09:00:00"},
                                {"label": "redis-ping"}]}
    doc = machine.summary_document(records, causes, change_since(causes, previous, "now"), tier="daily",
                                   run_id="r", started=0, duration_s=1, exit_code=1, inventory=None, artifacts={},
                                   rerun="python -m pytest x", escalation="escalation: Level 1")
    assert [c["label"] for c in doc["root_causes"]] == ["container-running[nautilus-risk-engine]"]
    assert doc["root_causes"][0]["fix"] == "python -m remediation x   (dry run; add --apply to act)"
    assert doc["root_causes"][0]["since"] == "2026-12-01 09:00:00" and doc["root_causes"][0]["blocks"] == 1
    assert doc["since_previous_run"]["recovered"] == ["redis-ping"]
    assert doc["counts"]["blocked"] == 1 and doc["root_causes_by_severity"]["critical"] == 1
    assert doc["rerun"] and doc["escalation"] and "evidence" not in doc["checks"][0]


def test_story_escapes_what_targets_said():
    hostile = "<script>alert(1)</script>\\x1b[31m"
    records = [result(outcome="failed", finding=hostile, fix=Fix("fix <now>"))]
    causes = root_causes(records)
    page = story(records, causes, change_since(causes, None, "now"), tier="daily", run_id="r", started=0,
                 duration_s=1)
    assert "<script>" not in page and "&lt;script&gt;" in page and "fix &lt;now&gt;" in page
    assert "1 root cause (critical first)" in page and "<svg" not in page  # nothing measured: no empty chart


def test_passed_rows_show_no_severity_and_failed_rows_show_it_once():
    class Report:
        nodeid, outcome, duration = "n", "passed", 0.1
        nautilus = result(measured={"response_ms": "12.5"}).to_dict()
    cells = ["<td>r</td>", "<td>id</td>", "<td>d</td>"]
    pytest_html_results_table_row(Report, cells)
    assert cells[2].endswith("></td>") and "response_ms 12.5" in cells[3] and "restart-engine" not in cells[4]
    assert "t [nautilus-risk-engine]" in cells[1]  # the check's title and target, not a node id alone
    Report.nautilus = result(outcome="failed", fix=Fix("python -m remediation restart-engine risk", dry_run=True)
                             ).to_dict()
    cells = ["<td>r</td>", "<td>id</td>", "<td>d</td>"]
    pytest_html_results_table_row(Report, cells)
    assert ">critical<" in cells[2] and "restart-engine risk   (dry run; add --apply to act)" in cells[4]
    assert sum("restart-engine" in c for c in cells) == 1


def test_shared_files_are_replaced_whole(tmp_path):
    from reports.run import write_atomically
    target = tmp_path / "latest-daily.html"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two" and os.listdir(tmp_path) == ["latest-daily.html"]


def test_alert_rules_use_only_metrics_the_textfiles_have():
    import re
    from pathlib import Path
    rules = (Path(__file__).resolve().parents[2] / "docs" / "recipes" / "nautilus-checks.rules.yml").read_text()
    used = set(re.findall(r"\bnautilus_[a-z_]+", rules)) - {"nautilus_checks"}
    written = textfiles([result(), result(outcome="failed")]).decode()
    assert used and all(name in written for name in used), used
