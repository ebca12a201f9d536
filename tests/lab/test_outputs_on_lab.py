"""Every artifact of a run, read back as its reader would: a browser, a CI gate, Prometheus, jq.

One run on the lab with engines broken for real (strategy stopped; risk
unhealthy with a hostile health body and log line carrying planted secrets)
is read back through each artifact; two runs started at once must leave two
whole, distinct sets.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import docker
import pytest
from prometheus_client.parser import text_string_to_metric_families

import browser
from conftest import ROOT
from outputs import artifacts_of, junit_counts, run_suite, series
from remediation.invocation import render

PLANTED_ENV_SECRET = "lab-planted-api-key-5e0c2a91"  # lab/compose.yaml, every engine's environment
HEALTH_SECRET = "hostile-secret-7d41b9"
SCREENSHOTS = ROOT / "reports" / "out" / "screenshots"


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory, lab):
    """One daily run with strategy stopped and risk unhealthy and hostile; the lab is healed afterwards."""
    from conftest import lab_cli
    reports = tmp_path_factory.mktemp("reports")
    try:
        lab_cli("fault", "stop", "strategy")
        lab_cli("fault", "hostile", "risk", "--text", HEALTH_SECRET)
        lab_cli("fault", "unhealthy", "risk")
        started = time.time()
        done = run_suite(reports, "-m", "daily")
        finished = time.time()
    finally:
        lab_cli("heal")
    yield reports, done, artifacts_of(done.stdout), (started, finished)


@pytest.mark.lab_fault
def test_json_summary_and_junit_agree(broken_run):
    reports, done, files, _ = broken_run
    assert done.returncode == 1, done.stdout[-2000:]
    summary = json.loads(files["json"].read_text())
    assert summary["exit_code"] == 1 and summary["tier"] == "daily" and summary["partial"] is None
    by_label = {c["label"]: c for c in summary["checks"]}
    stopped = by_label["container-running[nautilus-strategy-engine]"]
    assert stopped["outcome"] == "failed" and stopped["severity"] == "critical"
    assert stopped["target"] == "container:nautilus-strategy-engine" and stopped["engine"] == "strategy"
    assert stopped["fix"].startswith(render(['start-container', 'nautilus-strategy-engine']))
    assert stopped["fix"].endswith("(dry run; add --apply to act)")
    assert by_label["port-open[port-8700]"]["outcome"] == "blocked"
    assert by_label["engine-status-healthy[risk-engine]"]["outcome"] == "failed"
    assert all(c["duration_s"] >= 0 for c in summary["checks"])
    counts, outcomes = junit_counts(files["junit"]), summary["counts"]
    assert counts["tests"] == sum(outcomes.values())
    assert counts["failures"] + counts["errors"] == outcomes["failed"] + outcomes["cannot_observe"]
    assert counts["skipped"] == outcomes["skipped"] + outcomes["blocked"] + outcomes["maintenance"]
    assert json.loads((reports / "latest-daily.json").read_text())["run_id"] == summary["run_id"]
    # The guide's system information, from what the run sampled: the lab's daemon, its Compose, its network.
    system, info = summary["system"], docker.from_env(timeout=10).info()
    assert (system["Hostname"], system["Kernel"], system["Docker"]) == (info["Name"], info["KernelVersion"],
                                                                       info["ServerVersion"])
    assert re.fullmatch(r"2\.\d+\.\d+", system["Compose"]) and "nautilus-lab" in system["Docker networks"]


@pytest.mark.lab_fault
def test_allure_results_carry_labels_categories_and_environment(broken_run):
    _, _, files, _ = broken_run
    results = [json.loads(p.read_text()) for p in files["allure"].glob("*-result.json")]
    by_name = {r["name"]: r for r in results}
    port = by_name["Platform port accepts TCP connections [port-8700]"]
    labels = {(label["name"], label["value"]) for label in port["labels"]}
    assert {("engine", "strategy"), ("severity", "critical"), ("check", "port-open"),
            ("blocked_by", "container-running[nautilus-strategy-engine]")} <= labels
    assert port["status"] == "skipped"  # blocked: one status, always
    stopped = by_name["Platform container is running [nautilus-strategy-engine]"]
    assert stopped["status"] == "failed" and not stopped.get("links")  # no --guide-url: no link that leads nowhere
    assert f"```\n{render(['start-container', 'nautilus-strategy-engine'])}" in stopped["description"]
    assert [p["value"] for p in stopped["parameters"] if p["name"] == "container"] == ["nautilus-strategy-engine"]
    names = {c["name"] for c in json.loads((files["allure"] / "categories.json").read_text())}
    assert {"Blocked by a root cause", "Cannot observe"} <= names
    environment = (files["allure"] / "environment.properties").read_text()
    assert environment.startswith("verdict=") and "tier=daily" in environment
    assert "docker_hosts=local=unix:///var/run/docker.sock (from the default" in environment
    assert re.search(r"^docker=\d+\.\d+", environment, re.M) and "docker_networks=" in environment


@pytest.mark.lab_fault
def test_prometheus_textfiles_parse_and_carry_the_timestamps(broken_run):
    reports, _, _, (started, finished) = broken_run
    checks = series(reports / "textfile" / "nautilus_daily.prom")
    run = series(reports / "textfile" / "nautilus_daily_run.prom")
    labels = {"check": "container-running", "severity": "critical", "tier": "daily", "host": "local"}
    key = ("nautilus_check_passed", tuple(sorted({**labels, "engine": "strategy",
                                                  "target": "container:nautilus-strategy-engine"}.items())))
    assert checks[key] == 0
    assert checks[("nautilus_check_passed", tuple(sorted({**labels, "engine": "risk",
                                                          "target": "container:nautilus-risk-engine"}.items())))] == 1
    roots = [dict(k[1]) for k in checks if k[0] == "nautilus_root_cause"]
    assert sorted(r["engine"] for r in roots) == ["risk", "strategy"], roots  # one cause per broken engine
    assert started <= run[("nautilus_checks_last_run_timestamp_seconds", (("tier", "daily"),))] <= finished
    assert run[("nautilus_checks_exit_code", (("tier", "daily"),))] == 1
    # a failed first run has never succeeded: no last-success time is invented
    assert ("nautilus_checks_last_success_timestamp_seconds", (("tier", "daily"),)) not in run


@pytest.mark.lab_fault
def test_html_report_in_chromium_shows_the_failure_its_fix_and_hostile_text_as_text(broken_run):
    if not browser.available():
        pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)
    reports, _, files, _ = broken_run
    page = files["html"].read_text()
    assert "\x1b" not in page  # an ANSI escape from the engine is shown as its escape text, never raw
    assert (reports / "latest-daily.html").read_bytes() == files["html"].read_bytes()
    dom = browser.rendered_dom(files["html"].as_uri())
    assert re.search(r"<title[^>]*>daily: 2 root causes \(critical first\)", dom)  # the tab: tier and verdict
    assert "owned" not in dom.split("</title>")[0]  # the planted <script> never ran
    assert "Platform container is running [nautilus-strategy-engine]" in dom
    assert render(['start-container', 'nautilus-strategy-engine']) in dom
    assert "&lt;script&gt;document.title" in dom  # the hostile body is shown, as text
    assert "<script>document.title" not in dom
    assert "<b>bold?</b>" not in dom
    browser.screenshot(files["html"].as_uri(), SCREENSHOTS / "html-report-broken-engines.png")


@pytest.mark.lab_fault
def test_no_secret_in_any_artifact(broken_run, lab_password):
    reports, done, _, _ = broken_run
    secrets = [PLANTED_ENV_SECRET, HEALTH_SECRET, lab_password]
    leaks = [(str(path), secret) for path in every_file(reports)
             for secret in secrets if secret.encode() in path.read_bytes()]
    assert not leaks
    assert not [s for s in secrets if s in done.stdout + done.stderr]


@pytest.mark.usefixtures("lab")
def test_two_runs_at_once_write_two_whole_sets(tmp_path):
    runs = [run_suite(tmp_path, "-m", "emergency", wait=False) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0], outputs
    sets = [artifacts_of(out) for out in outputs]
    assert len({s["html"] for s in sets}) == 2
    for files in sets:
        assert set(files) == {"html", "allure", "junit", "json"}
        assert files["html"].read_text().rstrip().endswith("</html>")
        assert any(files["allure"].glob("*-result.json"))
        ET.parse(files["junit"])
        summary = json.loads(files["json"].read_text())
        assert summary["counts"]["passed"] == len(summary["checks"]) > 0
    latest = json.loads((tmp_path / "latest-emergency.json").read_text())["run_id"]
    assert latest in {json.loads(s["json"].read_text())["run_id"] for s in sets}
    for name in ("nautilus_emergency.prom", "nautilus_emergency_run.prom"):
        assert list(text_string_to_metric_families((tmp_path / "textfile" / name).read_text()))


@pytest.mark.usefixtures("lab")
def test_alert_rules_recipe_passes_promtool():
    """The README's alert rules load in the lab's Prometheus, and their unit tests (one bad run pages nobody) pass."""
    recipes = ROOT / "docs" / "recipes"
    subprocess.run(["docker", "cp", f"{recipes}/.", "nautilus-prometheus:/tmp/recipes/"], check=True, timeout=30)
    done = subprocess.run(["docker", "exec", "-w", "/tmp/recipes", "nautilus-prometheus", "sh", "-c",
                           "promtool check rules nautilus-checks.rules.yml && "
                           "promtool test rules nautilus-checks.rules.test.yml"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
