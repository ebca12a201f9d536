"""The check-run plugin in process (pytester), on stub checks: no Docker, no network.

What is judged here is the plugin's own behaviour: prerequisites run first, a failure under a failed prerequisite
is blocked (a skip for JUnit, still exit 1), a check that cannot look is a root cause of its own kind, the exit
codes 0/1/4/5, JUnit that validates against its family's schema with one failure per root cause, one
`nautilus_root_cause` series per cause, subset and collect-only runs that leave the tier's files alone, a run
that cannot start that still records its exit code, and each report plugin switched off (-p no:html,
no:allure_pytest, no:junitxml) while the others still write. pytest's conventions (-k, -m, ini settings) are
test_pytest_conventions.py.
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

from fixtures.spec import REGISTRY

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit-xunit2.xsd"))
PLUGINS = ["fixtures.judgement", "fixtures.plugin", "fixtures.prefetch", "fixtures.rerun", "fixtures.remediate",
           "fixtures.gate", "reports.plugin", "reports.allure_labels", "reports.html_story"]
STUB_CHECKS = '''
import os

from fixtures.spec import EMERGENCY, check
from observation.errors import Unobservable


def state():
    return os.environ.get("STUB_STATE", "up")


@check("stub-port-open", "Stub engine port accepts connections", tiers=EMERGENCY, severity="critical",
       guide="Stub > Ports", remedy="free-port", needs=("stub-container-running",))
def test_stub_port_open(port, verdict):
    verdict.expect(not (state() == "engine-down" and port.port == 8200), expected="a connection", seen="refused")


@check("stub-container-running", "Stub engine container runs", tiers=EMERGENCY, severity="critical",
       guide="Stub > Containers", remedy="start-container", needs=("stub-daemon-answers",))
def test_stub_container_running(container, verdict):
    if state() == "unobservable":
        raise Unobservable("the stub daemon lists no containers", fix="check the stub daemon's socket")
    down = state() == "daemon-down" or (state() == "engine-down" and container.engine == "risk")
    verdict.expect(not down, expected="status running", seen="exited (137)")


@check("stub-daemon-answers", "Stub Docker daemon answers", tiers=EMERGENCY, severity="critical",
       guide="Stub > Daemon")
def test_stub_daemon_answers(verdict):
    if state() == "daemon-down":
        verdict.advise("start the stub daemon")
    verdict.expect(state() != "daemon-down", expected="an answer within 3 s", seen="none")
'''
ONLY = {"engines": {e: None for e in ("analytics", "factor", "features", "websocket", "strategy", "marketdata",
                                      "portfolio")},
        "services": {s: None for s in ("backend", "frontend", "postgres", "redis", "prometheus", "grafana")}}


@pytest.fixture
def stub(pytester, monkeypatch):
    pytester.makeini("[pytest]\nnautilus_checks = checks\njunit_family = xunit2\naddopts = -p no:hypothesispytest\n")
    pytester.makeconftest(f"pytest_plugins = {PLUGINS!r}\n")
    (pytester.path / "checks").mkdir()
    (pytester.path / "checks" / "test_stub.py").write_text(STUB_CHECKS)
    (pytester.path / "inventory.yaml").write_text(json.dumps({**ONLY, "state_dir": str(pytester.path / "state")}))
    monkeypatch.setenv("NAUTILUS_POSTGRES_PASSWORD", "pw-stub")
    monkeypatch.delenv("NAUTILUS_INVENTORY", raising=False)
    yield pytester
    for check_id in [c for c in REGISTRY if c.startswith("stub-")]:  # the registry is the process's: leave it clean
        del REGISTRY[check_id]


def run(pytester, *args: str, state: str = "up"):
    os.environ["STUB_STATE"] = state
    try:
        return pytester.runpytest_inprocess("checks", "-p", "no:cacheprovider", f"--inventory={pytester.path}/"
                                            "inventory.yaml", f"--reports-dir={pytester.path}/out", *args)
    finally:
        del os.environ["STUB_STATE"]


def summary(pytester, tier="emergency") -> dict:
    return json.loads((pytester.path / "out" / f"latest-{tier}.json").read_text())


def junit(pytester) -> ET.Element:
    path = next((pytester.path / "out").glob("*.junit.xml"))
    SCHEMA.validate(str(path))  # raises, naming the element, when the file breaks its family's schema
    return ET.parse(path).getroot()


def series(pytester, name: str) -> dict:
    text = (pytester.path / "out" / "textfile" / name).read_text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_healthy_run_passes_and_writes_every_output(stub):
    result = run(stub, "-m", "emergency")
    assert result.ret == 0
    assert summary(stub)["counts"]["passed"] == 5 and summary(stub)["root_causes"] == []
    suite = junit(stub).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "0", "0")
    run_file = series(stub, "nautilus_emergency_run.prom")
    assert run_file[("nautilus_checks_exit_code", (("tier", "emergency"),))] == 0
    assert ("nautilus_checks_last_success_timestamp_seconds", (("tier", "emergency"),)) in run_file


def test_prerequisites_run_first_and_what_rests_on_a_failure_is_blocked(stub):
    result = run(stub, "-m", "emergency", "-v", state="daemon-down")
    assert result.ret == 1
    order = [line.split("::")[1].split("[")[0].split(" ")[0] for line in result.outlines if "::test_stub" in line]
    assert order[0] == "test_stub_daemon_answers"  # written last in the module, run first
    result.stdout.fnmatch_lines(["*test_stub_container_running*BLOCKED*", "*root causes (1): fix these first*",
                                 "*fix: start the stub daemon*"])
    root = junit(stub)
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "2")  # one root cause; two blocked, not failures
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["nautilus.verdict"] == "1 root cause (critical first), 2 checks blocked by them"
    assert properties["nautilus.root_cause.1"].startswith("stub-daemon-answers (critical): ")
    messages = [s.get("message") for s in root.iter("skipped")]
    assert all("] blocked by stub-daemon-answers: fix that first" in m for m in messages), messages
    roots = [k for k in series(stub, "nautilus_emergency.prom") if k[0] == "nautilus_root_cause"]
    assert len(roots) == 1 and dict(roots[0][1])["check"] == "stub-daemon-answers"
    checks = summary(stub)["checks"]
    assert sorted(c["outcome"] for c in checks) == ["blocked", "blocked", "failed", "passed", "passed"]


def test_one_engine_down_is_one_cause_with_its_helper_and_the_dry_run_note(stub):
    result = run(stub, "-m", "emergency", state="engine-down")
    assert result.ret == 1
    cause, = summary(stub)["root_causes"]
    assert cause["label"] == "stub-container-running[nautilus-risk-engine]" and cause["blocks"] == 1
    # How the helper is launched is fixtures/judgement.py's to say; what it acts on and with which inventory is here.
    assert cause["fix"].endswith(f" start-container nautilus-risk-engine --inventory={stub.path}/inventory.yaml   "
                                 "(dry run; add --apply to act)"), cause["fix"]
    failure, = junit(stub).iter("failure")
    assert "check: stub-container-running" in failure.get("message") and "severity: critical" in failure.get("message")


def test_a_check_that_cannot_look_is_a_root_cause_of_its_own_kind(stub):
    result = run(stub, "-m", "emergency", state="unobservable")
    assert result.ret == 1
    outcomes = {c["label"]: c["outcome"] for c in summary(stub)["checks"]}
    assert outcomes["stub-container-running[nautilus-risk-engine]"] == "cannot_observe"
    assert "cannot observe: the stub daemon lists no containers" in result.stdout.str()
    cause = summary(stub)["root_causes"][0]
    assert cause["fix"] == "check the stub daemon's socket"  # the reason's own fix, not the check's helper


def test_no_check_selected_is_exit_5_and_a_bad_inventory_exit_4_still_recorded(stub):
    assert run(stub, "-m", "emergency", "-k", "nothing_matches").ret == 5
    (stub.path / "bad.yaml").write_text("engines: [not, a, mapping]\n")
    result = stub.runpytest_inprocess("checks", "-p", "no:cacheprovider", "-m", "emergency",
                                      f"--inventory={stub.path}/bad.yaml", f"--reports-dir={stub.path}/out")
    assert result.ret == 4
    run_file = series(stub, "nautilus_emergency_run.prom")
    assert run_file[("nautilus_checks_exit_code", (("tier", "emergency"),))] == 4
    assert not (stub.path / "out" / "textfile" / "nautilus_emergency.prom").exists()


def test_subset_and_collect_only_runs_leave_the_tiers_files_byte_identical(stub):
    run(stub, "-m", "emergency", state="engine-down")
    shared = ["latest-emergency.json", "latest-emergency.html", "textfile/nautilus_emergency.prom",
              "textfile/nautilus_emergency_run.prom"]
    before = {name: (stub.path / "out" / name).read_bytes() for name in shared}
    subset = run(stub, "-m", "emergency", "-k", "ml")
    assert subset.ret == 0 and "a partial run: -k 'ml'" in subset.stdout.str()
    partial = json.loads(next((stub.path / "out").glob("emergency-partial-*.json")).read_text())
    assert partial["partial"] == "-k 'ml'"
    collected = run(stub, "-m", "emergency", "--collect-only")
    assert collected.ret == 0
    assert {name: (stub.path / "out" / name).read_bytes() for name in shared} == before
    assert len(list((stub.path / "out").glob("emergency-2*.json"))) == 1  # collect-only wrote no run of its own


REPORT_PLUGINS = {"html": ".html", "allure_pytest": "-allure", "junitxml": ".junit.xml"}  # -p no:<name> -> file


@pytest.mark.parametrize("switched_off", sorted(REPORT_PLUGINS))
def test_each_report_plugin_can_be_switched_off_and_the_others_still_write(stub, switched_off):
    result = run(stub, "-m", "emergency", "-p", f"no:{switched_off}", state="engine-down")
    assert result.ret == 1  # the run's own verdict, not an internal error
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    written = [p.name for p in (stub.path / "out").iterdir() if p.name.startswith("emergency-2")]
    for plugin, ending in REPORT_PLUGINS.items():
        present = [name for name in written if name.endswith(ending)]
        assert (present == []) == (plugin == switched_off), (plugin, written)
    assert [name for name in written if name.endswith(".json")]
    assert (stub.path / "out" / "textfile" / "nautilus_emergency.prom").exists()
