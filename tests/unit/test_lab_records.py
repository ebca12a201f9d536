"""Lab proofs come from what the lab tests recorded, never from a check's name in a test's source."""
from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import yaml

import lab_records
from checks import coverage
from checks.coverage import load_checks, load_map, problems, proofs_by_check, render

CHECKS = load_checks()
LAB_TEST = "tests/lab/test_checks_on_lab.py::test_stopped_engine"
OTHER_LAB_TEST = "tests/lab/test_checks_on_lab.py::test_stopped_redis"


def junit(path: Path, cases: dict[str, str]) -> Path:
    """A JUnit file as a check run writes it: name -> passed | failed | skipped | blocked."""
    body = {"passed": "", "failed": '<failure message="x"/>', "skipped": '<skipped message="no client"/>',
            "cannot_observe": '<failure message="[risk-engine] cannot observe: redis: connection refused"/>',
            "blocked": '<skipped message="[port-open] blocked by container-running"/>'}
    path.write_text("<testsuites><testsuite>" + "".join(
        f'<testcase classname="c" name="{name}">{body[outcome]}</testcase>' for name, outcome in cases.items())
        + "</testsuite></testsuites>")
    return path


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    monkeypatch.setenv("NAUTILUS_LAB_PROOFS", str(tmp_path / "records.json"))
    monkeypatch.setattr(lab_records, "_runs", {})
    return tmp_path


def test_doctests_of_the_recorder():
    assert doctest.testmod(lab_records).failed == 0


def test_a_run_is_recorded_under_the_lab_test_that_made_it(recorder, monkeypatch):
    monkeypatch.setenv("PYTEST_CURRENT_TEST", f"{LAB_TEST} (call)")
    lab_records.note([junit(recorder / "a.xml", {"test_port_open[risk]": "failed", "test_port_open[ml]": "passed",
                                                 "test_container_running[x]": "blocked",
                                                 "test_redis_memory": "cannot_observe",
                                                 "test_redis_ping": "skipped"})], None)
    lab_records.note([junit(recorder / "b.xml", {"test_port_open[risk]": "passed"})], None)
    written = json.loads(lab_records.save().read_text())["tests"][LAB_TEST]
    # blocked, skipped and cannot observe prove nothing either way
    assert written["failed"] == {"test_port_open": ["risk"]}
    assert written["passed"] == ["test_port_open"]
    assert written["failed_with_changed_thresholds"] == {}


def test_a_failure_with_changed_thresholds_is_kept_apart(recorder, monkeypatch):
    document = yaml.safe_load(lab_records.LAB_INVENTORY.read_text())
    document["thresholds"] = {**(document.get("thresholds") or {}), "disk_warning_pct": 1}
    inventory = recorder / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("PYTEST_CURRENT_TEST", f"{LAB_TEST} (call)")
    lab_records.note([junit(recorder / "a.xml", {"test_host_disk_root": "failed"})], inventory)
    written = json.loads(lab_records.save().read_text())["tests"][LAB_TEST]
    assert written["failed"] == {}
    assert written["failed_with_changed_thresholds"] == {"test_host_disk_root": {"targets": [""],
                                                                                  "thresholds": ["disk_warning_pct"]}}


def test_a_run_outside_a_lab_test_is_not_recorded(recorder, monkeypatch):
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/unit/test_x.py::test_y (call)")
    lab_records.note([junit(recorder / "a.xml", {"test_port_open[risk]": "failed"})], None)
    assert lab_records.save() is None


def test_records_merge_test_by_test(recorder, monkeypatch):
    for test, outcome in ((LAB_TEST, "failed"), (OTHER_LAB_TEST, "failed"), (LAB_TEST, "passed")):
        monkeypatch.setenv("PYTEST_CURRENT_TEST", f"{test} (call)")
        lab_records.note([junit(recorder / "a.xml", {"test_port_open[risk]": outcome})], None)
        lab_records.save()
    tests = json.loads((recorder / "records.json").read_text())["tests"]
    assert tests[OTHER_LAB_TEST]["failed"] == {"test_port_open": ["risk"]}
    assert tests[LAB_TEST]["failed"] == {} and tests[LAB_TEST]["passed"] == ["test_port_open"]  # the later run won


def records_where(check_id: str, failed=(), lowered=(), passed=()) -> dict:
    """Records in which `check_id` failed in `failed` tests, only against changed thresholds in `lowered`, and
    passed in `passed`; every other check failed and passed in LAB_TEST, so only `check_id` is in question."""
    function = CHECKS[check_id].function
    unproven = load_map()["without_lab_fault"]
    others = sorted(spec.function for c, spec in CHECKS.items() if c != check_id and c not in unproven)
    records = {LAB_TEST: {"failed": {f: [""] for f in others}, "failed_with_changed_thresholds": {},
                          "passed": others}}
    lowered_bound = load_map()["lowered_bound"]
    for c in lowered_bound:  # a lowered-bound check must have failed against a lowered bound
        records[LAB_TEST]["failed_with_changed_thresholds"][CHECKS[c].function] = {"targets": [""],
                                                                                  "thresholds": ["x"]}
    for test in failed:
        records.setdefault(test, {"failed": {}, "failed_with_changed_thresholds": {}, "passed": []})
        records[test]["failed"][function] = ["risk"]
    for test in lowered:
        records.setdefault(test, {"failed": {}, "failed_with_changed_thresholds": {}, "passed": []})
        records[test]["failed_with_changed_thresholds"][function] = {"targets": [""], "thresholds": ["cpu_warning_pct"]}
    for test in passed:
        records.setdefault(test, {"failed": {}, "failed_with_changed_thresholds": {}, "passed": []})
        records[test]["passed"].append(function)
    return records


def map_without(check_id: str) -> dict:
    document = load_map()
    document["without_lab_fault"] = {k: v for k, v in document["without_lab_fault"].items() if k != check_id}
    document["lowered_bound"] = {k: v for k, v in document["lowered_bound"].items() if k != check_id}
    return document


def test_a_check_that_failed_and_passed_on_the_lab_is_proven():
    assert problems(CHECKS, map_without("port-open"),
                    None, records_where("port-open", failed=[OTHER_LAB_TEST], passed=[LAB_TEST])) == []


def test_a_check_no_lab_run_saw_fail_is_a_problem_whatever_the_test_sources_say():
    found = problems(CHECKS, map_without("port-open"), None, records_where("port-open", passed=[LAB_TEST]))
    assert found == ["check 'port-open': no recorded lab run saw it fail, and the map gives no reason why not"]


def test_a_check_that_never_passed_on_the_lab_is_a_problem():
    found = problems(CHECKS, map_without("port-open"), None, records_where("port-open", failed=[OTHER_LAB_TEST]))
    assert found == ["check 'port-open': no recorded lab run saw it pass"]


def test_a_failure_only_against_changed_thresholds_needs_its_reason():
    found = problems(CHECKS, map_without("container-cpu-usage"), None,
                     records_where("container-cpu-usage", lowered=[OTHER_LAB_TEST], passed=[LAB_TEST]))
    assert len(found) == 1 and "only with thresholds changed (['cpu_warning_pct'])" in found[0]
    document = map_without("container-cpu-usage")
    document["lowered_bound"]["container-cpu-usage"] = "a reason"
    assert problems(CHECKS, document, None, records_where("container-cpu-usage", lowered=[OTHER_LAB_TEST],
                                                          passed=[LAB_TEST])) == []


def test_a_reason_for_no_lab_fault_is_refused_once_the_check_failed_there():
    document = map_without("port-open")
    document["without_lab_fault"]["port-open"] = "claimed impossible"
    found = problems(CHECKS, document, None, records_where("port-open", failed=[OTHER_LAB_TEST], passed=[LAB_TEST]))
    assert found == [f"without_lab_fault: 'port-open' failed on the lab after all (['{OTHER_LAB_TEST}'])"]


def test_a_record_of_a_lab_test_that_is_gone_is_a_problem():
    records = records_where("port-open", failed=["tests/lab/test_checks_on_lab.py::test_no_such_test"],
                            passed=[LAB_TEST])
    found = problems(CHECKS, map_without("port-open"), None, records)
    assert found == ["lab records: tests/lab/test_checks_on_lab.py::test_no_such_test is no lab test any more "
                     "(rerun the lab tests and python -m checks.coverage --proofs ...)"]


def test_missing_records_fail_loudly(tmp_path):
    with pytest.raises(SystemExit, match="no lab records"):
        coverage.load_proofs(tmp_path / "absent.json")


def test_the_document_counts_items_from_the_records():
    check_ids = sorted(CHECKS)
    proven = proofs_by_check(CHECKS, records_where(check_ids[0], passed=[LAB_TEST]))
    assert not proven[check_ids[0]].failed and proven[check_ids[1]].failed
    text = render(records_where(check_ids[0], passed=[LAB_TEST]))
    row = next(line for line in text.splitlines() if line.startswith(f"| `{check_ids[0]}` |"))
    assert "| never: " in row and f"| `{check_ids[1]}` |" in text


def test_a_reason_that_claims_what_the_suite_shows_names_the_test_that_holds_it():
    entry = {"section": "A > B", "item": "x", "not_a_check": "shown at the end of every run"}
    document = {"diagnostics": [entry], "without_lab_fault": {}, "lowered_bound": {}}
    claims = [p for p in problems(CHECKS, document, None, {}) if p.startswith("diagnostics[0]")]
    assert claims == ["diagnostics[0] (x): says the suite shows or does something; name the test that proves it "
                      "(backed_by)"]
    entry["backed_by"] = ["tests/unit/test_escalation.py::test_no_such_test"]
    assert [p for p in problems(CHECKS, document, None, {}) if p.startswith("diagnostics[0]")] == [
        "diagnostics[0] (x): backed_by 'tests/unit/test_escalation.py::test_no_such_test' is no test"]
    entry["backed_by"] = ["tests/unit/test_escalation.py::test_several_engines_down_is_level_3"]
    entry["helper"] = "no-such-helper"
    assert [p for p in problems(CHECKS, document, None, {}) if p.startswith("diagnostics[0]")] == [
        "diagnostics[0] (x): no helper 'no-such-helper'"]
