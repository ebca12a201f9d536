"""Four real faults, every output read back the way its reader meets it.

The situations: an engine killed; PostgreSQL out of connections right after a
deploy recreated containers; another program answering "degraded" on a
stopped engine's port; a Docker daemon that is running but frozen. For each
one daily run is read back:
- the HTML's first screen in Chromium (1280x800, nothing scrolled) shows the
  right first cause and its command;
- the JUnit validates against its family's schema and counts as failures only
  the root causes (blocked checks are skips);
- the textfile has one `nautilus_root_cause` series per cause;
- a subset run and a collect-only run leave the tier's textfiles and latest
  copies byte-identical;
- Allure's categories page names the cause's category.
The first screens are saved under reports/out/screenshots/ for the record.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

import browser
from conftest import ROOT, fill_connections, lab_cli
from outputs import artifacts_of, build_allure, junit_counts, run_suite, series, summary
from remediation.invocation import render

SCREENSHOTS = ROOT / "reports" / "out" / "screenshots"
SHARED = ("latest-daily.json", "latest-daily.html", "textfile/nautilus_daily.prom", "textfile/nautilus_daily_run.prom")


def read_back(reports: Path, done, *, situation: str, first_title: str, command: str, category: str) -> dict:
    """Every output of one daily run, checked; returns its JSON summary."""
    assert done.returncode == 1, done.stdout[-3000:]
    files = artifacts_of(done.stdout)
    document = summary(files["json"])
    causes = document["root_causes"]
    assert causes, done.stdout[-3000:]

    seen = browser.first_screen(files["html"])
    browser.screenshot(files["html"].as_uri(), SCREENSHOTS / f"first-screen-{situation}.png", size="1280,800")
    assert first_title in seen and command in seen, seen
    assert seen.index(first_title) < seen.index("Rerun only the root causes")  # the first cause comes first
    for later in causes[1:]:
        assert later["label"].split("[")[0] != causes[0]["label"].split("[")[0] or later["targets"] != causes[0]["targets"]

    counts, outcomes = junit_counts(files["junit"]), document["counts"]
    assert counts["failures"] + counts["errors"] == outcomes["failed"] + outcomes["cannot_observe"]
    assert counts["skipped"] == outcomes["blocked"] + outcomes["maintenance"] + outcomes["skipped"]

    roots = [k for k in series(reports / "textfile" / "nautilus_daily.prom") if k[0] == "nautilus_root_cause"]
    assert len(roots) == len(causes), (roots, [c["label"] for c in causes])

    before = {name: (reports / name).read_bytes() for name in SHARED}
    subset = run_suite(reports, "-m", "daily", "-k", "risk")
    collected = run_suite(reports, "-m", "daily", "--collect-only")
    assert collected.returncode == 0 and "a partial run: -k 'risk'" in subset.stdout
    assert {name: (reports / name).read_bytes() for name in SHARED} == before

    built = build_allure(reports)
    assert built.returncode == 0, built.stdout + built.stderr
    categories = browser.dom_showing((reports / "allure-latest-daily" / "index.html").as_uri() + "#categories",
                                     category)
    assert category in categories
    return document


@pytest.mark.lab_fault
def test_an_engine_killed(tmp_path, fault):
    fault("kill", "risk")
    reports = tmp_path / "out"
    done = run_suite(reports, "-m", "daily")
    document = read_back(reports, done, situation="engine-killed", category="Engine down",
                         first_title="Platform container is running [nautilus-risk-engine]",
                         command=render(['start-container', 'nautilus-risk-engine']))
    first = document["root_causes"][0]
    assert first["label"] == "container-running[nautilus-risk-engine]" and first["blocks"] >= 10
    # The kill's exit code is the same fault, said under the cause, with no fix of its own.
    assert [a["label"] for a in first["also_failing"]] == ["container-exit-code[nautilus-risk-engine]"]
    assert "137" in first["also_failing"][0]["finding"]
    # The level follows every cause: a busy machine may add one (a health probe timing out), so only its presence.
    assert document["escalation"].startswith("escalation: Level ")


@pytest.mark.lab_fault
def test_postgres_out_of_connections_right_after_a_deploy(tmp_path, lab_password, heal):
    reports = tmp_path / "out"
    assert run_suite(reports, "-m", "daily").returncode == 0  # the run the next one compares with
    lab_cli("redeploy", "risk", "ml", "strategy")
    held, admin = [], psycopg.connect(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus",
                                      password=lab_password, autocommit=True, connect_timeout=5)
    try:
        held = fill_connections(admin, lab_password, "nautilus-lab-hog")
        done = run_suite(reports, "-m", "daily")
    finally:
        for conn in held:
            conn.close()
        admin.close()
    document = read_back(reports, done, situation="postgres-out-of-connections-after-a-deploy",
                         category="Database", first_title="Client connections stay below the share of max_connections",
                         command=render(['postgres-sessions']))
    first = document["root_causes"][0]
    assert first["check"] == "postgres-connections" and "nautilus-lab-hog" in first["finding"], first
    assert len(document["deploys"]) == 3 and "deploy since the previous run: 3 containers recreated" in done.stdout
    assert not [c for c in document["root_causes"] if c["check"] == "container-restarts-since-last-run"]
    heal()


@pytest.mark.lab_fault
def test_another_program_answering_degraded_on_a_stopped_engines_port(tmp_path, fault):
    fault("port-impostor", "risk")
    reports = tmp_path / "out"
    done = run_suite(reports, "-m", "daily")
    document = read_back(reports, done, situation="port-impostor", category="Engine down",
                         first_title="Platform container is running [nautilus-risk-engine]",
                         command=render(['free-port', '8200']))
    first = document["root_causes"][0]
    assert "port 8200 is held by another process" in first["finding"]
    labels = [c["label"] for c in document["root_causes"]]
    assert not [label for label in labels if label.startswith(("engine-status-healthy", "engine-health"))], labels
    blocked = {c["label"]: c for c in document["checks"] if c["outcome"] == "blocked"}
    assert blocked["engine-status-healthy[risk-engine]"]["blocked_by"] == "container-running[nautilus-risk-engine]"
    assert "restart-engine" not in done.stdout


@pytest.mark.lab_fault
def test_a_frozen_docker_daemon(tmp_path, lab):
    """dockerd stopped with SIGSTOP: the containers run on, the API answers nothing within its timeout."""
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    reports = tmp_path / "out"
    os.kill(pid, signal.SIGSTOP)
    try:
        done = run_suite(reports, "-m", "daily")
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(1)
    document = read_back(reports, done, situation="frozen-docker-daemon", category="Infrastructure down",
                         first_title="The Docker daemon of every host answers", command="systemctl restart docker")
    assert document["root_causes"][0]["check"] == "docker-daemon-answers"
    html = artifacts_of(done.stdout)["html"].read_text()
    assert "up; Docker state unknown" in html  # engines that answered are not called down
