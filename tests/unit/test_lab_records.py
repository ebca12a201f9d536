"""What the lab tests record of each check run: failures apart from failures against changed thresholds."""
from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import yaml

import lab_records
LAB_TEST = "tests/lab/test_checks_on_lab.py::test_stopped_engine"
OTHER_LAB_TEST = "tests/lab/test_checks_on_lab.py::test_stopped_redis"


def junit(path: Path, cases: dict[str, str]) -> Path:
    """A JUnit file as a check run writes it: name -> passed | failed | skipped | blocked."""
    body = {"passed": "", "failed": '<failure message="x"/>', "skipped": '<skipped message="no client"/>',
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
                                                 "test_redis_ping": "skipped"})], None)
    lab_records.note([junit(recorder / "b.xml", {"test_port_open[risk]": "passed"})], None)
    written = json.loads(lab_records.save().read_text())["tests"][LAB_TEST]
    # blocked and skipped prove nothing either way
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
