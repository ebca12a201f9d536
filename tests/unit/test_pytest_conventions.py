"""The check run follows pytest's conventions, in process (pytester) on the stub checks of test_plugin_pytester.

-k selects by the names the outputs print (check id, target, `check[target]`), -m by severity as by tier, the
inventory and the folders come from the command line, else the ini file, else the environment, testinfra's own
host options are refused in one line, and a check with no target in the inventory is deselected, not a skip.
"""
from __future__ import annotations

import json
import os
import sys

import pytest
from test_plugin_pytester import ONLY, run, stub, summary  # noqa: F401  (stub is a fixture used by name)

from fixtures.state import INVENTORY

pytest_plugins = ["pytester"]

MORE_CHECKS = '''
from fixtures.spec import DAILY, check


@check("stub-service-answers", "Stub service answers", tiers=DAILY, severity="normal", guide="Stub > Services")
def test_stub_service_answers(service, verdict):
    verdict.expect(True, expected="an answer", seen="one")


@check("stub-log-tidy", "Stub logs are tidy", tiers=DAILY, severity="minor", guide="Stub > Logs")
def test_stub_log_tidy(verdict):
    verdict.expect(True, expected="tidy", seen="tidy")
'''
STUB_INI = "[pytest]\nnautilus_checks = checks\njunit_family = xunit2\naddopts = -p no:hypothesispytest\n"


@pytest.fixture
def more(stub):
    (stub.path / "checks" / "test_stub_more.py").write_text(MORE_CHECKS)
    return stub


def collected(result) -> list[str]:
    return [line.split("::", 1)[1] for line in result.outlines if line.startswith("checks/")]


def test_check_ids_and_targets_select_with_k(stub):
    by_id = run(stub, "-m", "emergency", "--collect-only", "-q", "-k", "stub-container-running")
    assert sorted(collected(by_id)) == ["test_stub_container_running[nautilus-ml-engine]",
                                        "test_stub_container_running[nautilus-risk-engine]"]
    both = run(stub, "-m", "emergency", "--collect-only", "-q", "-k", "stub-container-running and risk")
    assert collected(both) == ["test_stub_container_running[nautilus-risk-engine]"]
    label = run(stub, "-m", "emergency", "--collect-only", "-q", "-k", "stub-container-running[nautilus-ml-engine]")
    assert collected(label) == ["test_stub_container_running[nautilus-ml-engine]"]
    target = run(stub, "-m", "emergency", "--collect-only", "-q", "-k", "risk")
    assert "test_stub_container_running[nautilus-risk-engine]" in collected(target)
    assert not [name for name in collected(target) if "ml-engine" in name]
    run_wide = run(stub, "-m", "emergency", "--collect-only", "-q", "-k", "stub-daemon-answers")
    assert collected(run_wide) == ["test_stub_daemon_answers"]


def test_severity_is_a_registered_marker_beside_the_tiers(more):
    critical = run(more, "-m", "critical", "--strict-markers", "--collect-only", "-q")
    assert critical.ret == 0 and len(collected(critical)) == 5
    assert not [name for name in collected(critical) if "log_tidy" in name]
    minor = run(more, "-m", "daily and minor", "--strict-markers", "--collect-only", "-q")
    assert collected(minor) == ["test_stub_log_tidy"]
    assert collected(run(more, "-m", "emergency and not critical", "--collect-only", "-q")) == []
    markers = more.runpytest_inprocess("--markers").stdout.str()
    for name in ("critical", "normal", "minor", "emergency", "daily", "weekly"):
        assert f"@pytest.mark.{name}:" in markers


def test_a_check_with_no_target_in_the_inventory_is_deselected_not_skipped(more):
    # The stub inventory runs no service (test_plugin_pytester.ONLY), so stub-service-answers has nothing to judge.
    assert all(value is None for value in ONLY["services"].values())
    result = run(more, "-m", "daily", "-rs")
    assert result.ret == 0
    assert "empty parameter set" not in result.stdout.str() + result.stderr.str()
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("skipped"), outcomes.get("deselected")) == (6, None, 1)
    assert not [c for c in summary(more, "daily")["checks"] if c["label"].startswith("stub-service-answers")]


@pytest.mark.parametrize("given", [["--hosts=ssh://db1"], ["--hosts", "ssh://db1,ssh://db2"],
                                   ["--connection=ssh"], ["--ssh-config=/etc/ssh/ssh_config"]])
def test_testinfra_host_options_are_refused_in_one_line(stub, given):
    result = run(stub, "-m", "emergency", *given)
    assert result.ret == 4
    flag = given[0].split("=")[0]
    assert [line for line in result.errlines if line] == [
        f"ERROR: {flag}: testinfra's, not the suite's; the hosts checked come from the inventory's `hosts:` list "
        "(give --inventory=PATH)"]
    assert "Traceback" not in result.stdout.str()


def inline(pytester, *args: str):
    """The run's config after an in-process run, to read what the plugin settled."""
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-m", "emergency", *args)
    return reprec.getcall("pytest_sessionfinish").session.config


def test_ini_settings_are_relative_to_the_ini_file_and_the_command_line_wins(stub, monkeypatch):
    stub.makeini(STUB_INI + "nautilus_inventory = inventory.yaml\nnautilus_reports_dir = ini-out\n"
                            "nautilus_state_dir = ini-state\nnautilus_textfile_dir = ini-textfile\n")
    (stub.path / "elsewhere").mkdir()
    monkeypatch.chdir(stub.path / "elsewhere")  # relative ini paths are the ini file's, not the working folder's
    monkeypatch.setenv("NAUTILUS_INVENTORY", str(stub.path / "not-this.yaml"))  # the ini's wins over it
    os.environ["STUB_STATE"] = "engine-down"
    try:
        config = inline(stub, str(stub.path / "checks"))
    finally:
        del os.environ["STUB_STATE"]
    inventory = str(stub.path / "inventory.yaml")
    assert config.getoption("inventory") == inventory
    assert config.stash[INVENTORY].state_dir == str(stub.path / "ini-state")  # over the inventory's state_dir
    latest = json.loads((stub.path / "ini-out" / "latest-emergency.json").read_text())
    assert latest["inventory"] == inventory
    assert f" start-container nautilus-risk-engine --inventory={inventory} " in latest["root_causes"][0]["fix"]
    assert (stub.path / "ini-textfile" / "nautilus_emergency.prom").exists()

    (stub.path / "cli.yaml").write_text((stub.path / "inventory.yaml").read_text())
    config = inline(stub, str(stub.path / "checks"), "--inventory=../cli.yaml", "--reports-dir=cli-out",
                    "--state-dir=cli-state")
    assert config.getoption("inventory") == str(stub.path / "cli.yaml")  # the command line's, from the working folder
    assert config.stash[INVENTORY].state_dir == str(stub.path / "elsewhere" / "cli-state")
    assert (stub.path / "elsewhere" / "cli-out" / "latest-emergency.json").exists()


def test_the_environments_inventory_is_recorded_absolute(stub, monkeypatch):
    monkeypatch.chdir(stub.path)
    monkeypatch.setenv("NAUTILUS_INVENTORY", "inventory.yaml")
    os.environ["STUB_STATE"] = "engine-down"
    try:
        result = stub.runpytest_inprocess("checks", "-p", "no:cacheprovider", "-m", "emergency",
                                          f"--reports-dir={stub.path}/out")
    finally:
        del os.environ["STUB_STATE"]
    assert result.ret == 1
    inventory = str(stub.path / "inventory.yaml")
    assert summary(stub)["inventory"] == inventory
    assert f"rerun only the root causes: {sys.executable} -m pytest --inventory={inventory} " in result.stdout.str()
    assert f"--inventory={inventory}   (dry run; add --apply to act)" in summary(stub)["root_causes"][0]["fix"]


def test_pyproject_ini_options_are_read_as_pytest_ini_is(stub, monkeypatch):
    (stub.path / "tox.ini").unlink()  # pytester.makeini wrote it; it would win over pyproject.toml
    stub.makepyprojecttoml('[tool.pytest.ini_options]\nnautilus_checks = ["checks"]\njunit_family = "xunit2"\n'
                           'addopts = "-p no:hypothesispytest"\nnautilus_inventory = "inventory.yaml"\n'
                           'nautilus_reports_dir = "toml-out"\n')
    (stub.path / "elsewhere").mkdir()
    monkeypatch.chdir(stub.path / "elsewhere")
    os.environ["STUB_STATE"] = "up"
    try:
        config = inline(stub, str(stub.path / "checks"))
    finally:
        del os.environ["STUB_STATE"]
    assert config.getoption("inventory") == str(stub.path / "inventory.yaml")
    assert json.loads((stub.path / "toml-out" / "latest-emergency.json").read_text())["exit_code"] == 0
