"""The Allure report of a real fault: labels, categories, clean fixtures, history, and what a browser shows.

One engine is stopped, the daily tier runs twice (each run followed by a
report build, so the history grows), and the newest report is opened in
headless Chromium at the failed check's own page.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import browser
import pytest

from conftest import LAB_INVENTORY, ROOT, run_checks
from reports.run import new_run_id
from remediation.invocation import render

INVENTORY = (f"--inventory={LAB_INVENTORY}", "--guide-url=troubleshooting-guide.md")
ROOT_CAUSE = "test_container_running[nautilus-risk-engine]"
TITLE = "Platform container is running [nautilus-risk-engine]"  # what Allure shows: the check's title and target
FIX = render(['start-container', 'nautilus-risk-engine'])
STATUSES = {"passed", "failed", "broken", "skipped"}


def build_report(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reports.allure_report", "--tier", "daily", f"--out-dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def read(results: Path, suffix: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in results.glob(f"*-{suffix}.json")]


def unfinished(steps: list[dict]) -> list[str]:
    """Names of steps, at any depth, that Allure would show with an unknown status."""
    return [name for s in steps for name in
            ([s.get("name")] if s.get("status") not in STATUSES else []) + unfinished(s.get("steps", []))]


@pytest.mark.lab_fault
def test_allure_report_of_a_stopped_engine(tmp_path, fault):
    fault("stop", "risk")
    out = tmp_path / "out"
    for _ in range(2):
        results = out / f"daily-{new_run_id()}-allure"
        run = run_checks(tmp_path, "-m", "daily", *INVENTORY, f"--alluredir={results}", reports=True)
        assert ROOT_CAUSE in run.failed, run.output[-3000:]
        built = build_report(out)
        assert built.returncode == 0, built.stdout + built.stderr

    by_name = {r["name"]: r for r in read(results, "result")}
    labels = {name: {(l["name"], l["value"]) for l in r["labels"]} for name, r in by_name.items()}
    port = "Platform port accepts TCP connections [port-8200]"
    assert ("engine", "risk") in labels[TITLE] and ("engine", "risk") in labels[port]
    assert {v for ls in labels.values() for k, v in ls if k == "severity"} <= {"critical", "normal", "minor"}
    assert all(any(link["url"].startswith("troubleshooting-guide.md#") for link in r["links"]) for r in by_name.values())
    assert by_name[port]["parameters"][0]["value"] == "8200"
    health = "Engine /health answers 200 [risk-engine]"
    assert ("blocked_by", "container-running[nautilus-risk-engine]") in labels[health]
    assert by_name[health]["status"] == by_name[port]["status"] == "skipped"
    assert any(a["name"] == "fix" for a in by_name[TITLE]["attachments"])

    # No phantom teardowns (pytest >= 9.1's own finalizer, see reports/allure_labels.py), nor unfinished steps.
    fixtures = [f for c in read(results, "container") for f in c.get("befores", []) + c.get("afters", [])]
    assert fixtures and not unfinished(fixtures) and not unfinished([s for r in by_name.values()
                                                                      for s in r.get("steps", [])])

    config = (out / f"{results.name.removesuffix('-allure')}-allurerc.mjs").read_text()
    assert '"Engine down"' in config and '"Blocked by a root cause"' in config
    assert len((out / "allure-history-daily.jsonl").read_text().splitlines()) >= 2

    # The report lists tests lazily, so the failed check is opened at its own page (#<test result id>).
    report = next(out.glob(f"{results.name}-report"))
    ids = {t["name"]: t["id"] for t in json.loads((report / "test-results.json").read_text())["byId"].values()}
    page = f"{(out / 'allure-latest-daily' / 'index.html').as_uri()}#{ids[TITLE]}"
    dom = browser.dom_showing(page, TITLE, FIX)
    assert TITLE in dom and FIX in dom
    assert "Engine down" in browser.dom_showing(f"{page.split('#')[0]}#categories", "Engine down")
    browser.screenshot(page, ROOT / "reports" / "out" / "screenshots" / "allure-stopped-engine.png")
