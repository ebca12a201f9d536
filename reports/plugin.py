"""Every check run writes a self-contained pytest-html report and Allure results.

Files go to reports/out/<tier>-<YYYYmmdd-HHMMSS>.html and ...-allure/ beside
it, unless --html / --alluredir were given. A failure shows its remediation
command, guide section, severity and evidence in both.
"""
from __future__ import annotations

import html
import json
import os
import re
import shlex
import time

import allure
import pytest

from fixtures.state import CHECK_RUN, OUT_DIR, is_check_run

from .escalation import Failure, level_for

RUN_PATHS = pytest.StashKey[dict]()
ALLURE_SEVERITY = {"critical": allure.severity_level.CRITICAL, "warning": allure.severity_level.NORMAL,
                   "info": allure.severity_level.MINOR}


def run_name(markexpr: str) -> str:
    """`daily` for `-m daily`; a safe slug of any other expression; `checks` for none.

    >>> run_name("daily"), run_name("daily and not weekly"), run_name("")
    ('daily', 'daily-and-not-weekly', 'checks')
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", markexpr).strip("-")
    return slug[:40] or "checks"


WORKER_ALLURE_DIR = "NAUTILUS_ALLURE_DIR"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before the fixtures plugin's configure (pluggy order), so it asks itself.
    if not is_check_run(config):
        return
    if hasattr(config, "workerinput"):
        # xdist workers configure before they receive the controller's options,
        # so the results folder reaches them through the environment they inherit.
        config.option.allure_report_dir = config.option.allure_report_dir or os.environ.get(WORKER_ALLURE_DIR)
        return
    stem = f"{run_name(config.option.markexpr)}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not config.option.htmlpath:
        config.option.htmlpath = str(OUT_DIR / f"{stem}.html")
        config.option.self_contained_html = True
    if not config.option.allure_report_dir:
        config.option.allure_report_dir = str(OUT_DIR / f"{stem}-allure")
    os.environ[WORKER_ALLURE_DIR] = config.option.allure_report_dir
    config.stash[RUN_PATHS] = {"html": config.option.htmlpath, "allure": config.option.allure_report_dir}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Allure labels come from what the check's decorator attached, so they are there before a test starts."""
    for item in items:
        marker = item.get_closest_marker("check")
        if marker is None:
            continue
        spec = marker.args[0]
        item.add_marker(allure.severity(ALLURE_SEVERITY[spec.severity]))
        item.add_marker(allure.label("check", spec.id))
        item.add_marker(allure.label("area", spec.area))
        for tier in spec.tiers:
            item.add_marker(allure.label("tier", tier))
        item.add_marker(allure.label("guide_section", spec.guide))
        params = getattr(getattr(item, "callspec", None), "params", {})
        engine = params.get("engine")
        if engine is not None:
            item.add_marker(allure.label("engine", engine.name))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    props = dict(report.user_properties)
    if "check_id" not in props:
        return
    evidence = {k.split(":", 1)[1]: v for k, v in report.user_properties if k.startswith("evidence:")}
    for name, text in evidence.items():
        allure.attach(text, name=f"evidence: {name}", attachment_type=allure.attachment_type.JSON)
    if props.get("blocked_by"):
        allure.dynamic.label("blocked_by", props["blocked_by"])
    elif report.failed and props.get("remediation"):
        allure.attach(props["remediation"], name="remediation", attachment_type=allure.attachment_type.TEXT)
    import pytest_html
    extras = getattr(report, "extras", [])
    if report.failed:
        extras.append(pytest_html.extras.html(_failure_panel(props)))
    for name, text in evidence.items():
        extras.append(pytest_html.extras.json(json.loads(text), name=f"evidence: {name}"))
    report.extras = extras


def _failure_panel(props: dict) -> str:
    fix = f"blocked by {props['blocked_by']}: fix that first" if props.get("blocked_by") else props.get("remediation", "none")
    rows = [("Severity", props.get("severity", "")), ("Remediation", fix),
            ("Guide", props.get("guide_section", "")), ("Tiers", props.get("tiers", ""))]
    cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                    f"<td><code>{html.escape(str(v))}</code></td></tr>" for k, v in rows)
    return f"<table class='nautilus-failure'>{cells}</table>"


def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(2, "<th>Severity</th>")
    cells.insert(3, "<th>Remediation</th>")


def pytest_html_results_table_row(report, cells: list) -> None:
    props = dict(getattr(report, "user_properties", []))
    remediation = props.get("remediation", "") if report.failed else ""
    if props.get("blocked_by"):
        remediation = f"BLOCKED by {props['blocked_by']}: fix that first"
    cells.insert(2, f"<td>{html.escape(props.get('severity', ''))}</td>")
    cells.insert(3, f"<td><code>{html.escape(remediation)}</code></td>")


def pytest_html_report_title(report) -> None:
    report.title = "Nautilus health checks"


def _first_line(report) -> str:
    text = str(report.longrepr or "")
    return text.splitlines()[0] if text else ""


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not config.stash.get(CHECK_RUN, False):
        return
    roots = [r for r in terminalreporter.stats.get("failed", []) if "check_id" in dict(r.user_properties)]
    blocked = terminalreporter.stats.get("blocked", [])
    if roots:
        terminalreporter.section(f"root causes ({len(roots)}): fix these first", sep="=", red=True, bold=True)
        for report in roots:
            props = dict(report.user_properties)
            terminalreporter.write_line(f"{props['check_id']}[{props.get('target', '')}] ({props.get('severity')}): "
                                        f"{_first_line(report)}")
            terminalreporter.write_line(f"    fix: {props.get('remediation') or 'none named: see the guide section'}"
                                        f"   guide: {props.get('guide_section', '')}")
    if blocked:
        by_root: dict[str, list[str]] = {}
        for report in blocked:
            props = dict(report.user_properties)
            by_root.setdefault(props.get("blocked_by", "?"), []).append(f"{props['check_id']}[{props.get('target')}]")
        terminalreporter.section(f"blocked by those causes ({len(blocked)}): no fix of their own", sep="-")
        for root, names in sorted(by_root.items()):
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            terminalreporter.write_line(f"{root} blocks {len(names)}: {shown}")
    if roots:
        inventory = config.getoption("inventory")
        terminalreporter.write_line("rerun only the root causes: python -m pytest"
                                    + (f" --inventory={inventory}" if inventory else "") + " "
                                    + " ".join(shlex.quote(r.nodeid) for r in roots))
    failures = [Failure(props["check_id"], props.get("area", ""), props.get("severity", ""), props.get("engine"))
                for props in (dict(r.user_properties) for r in roots)]
    escalation = level_for(failures)
    if escalation:
        terminalreporter.section("escalation (the guide's levels)")
        terminalreporter.write_line(escalation.line())
    paths = config.stash.get(RUN_PATHS, None)
    if paths:
        terminalreporter.write_line(f"HTML report: {paths['html']}")
        terminalreporter.write_line(f"Allure results: {paths['allure']}")
