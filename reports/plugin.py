"""What a check run leaves behind, and the story its terminal ends with.

Every run gets an id (start time plus random hex) and writes, under the
reports directory (reports/out unless --reports-dir):

- `<tier>-<id>.html`: a self-contained pytest-html report (reports/html_story.py)
- `<tier>-<id>-allure/`: Allure results (reports/allure_labels.py)
- `<tier>-<id>.junit.xml`: JUnit XML (xunit2) for CI gates
- `<tier>-<id>.json`: a JSON summary, one entry per check and target
- shared, replaced atomically under a lock: `latest-<tier>.html`, `latest-<tier>.json`,
  and `textfile/nautilus_<tier>.prom` for node_exporter's textfile collector

then prunes that tier's older runs (reports/retention.py). An --html,
--alluredir or --junitxml given on the command line wins over the default.
"""
from __future__ import annotations

import os
import re
import shlex
import time
from pathlib import Path

import pytest

from fixtures.state import CHECK_RUN, GATE, OUT_DIR, is_check_run

from . import machine
from .escalation import Failure, level_for
from .results import CheckResult, deploy_line, in_maintenance
from .retention import Policy, prune
from .run import RunFiles, new_run_id, shared_lock, write_atomically

RUN = pytest.StashKey["RunState"]()
WORKER_ALLURE_DIR = "NAUTILUS_ALLURE_DIR"
STYLE = Path(__file__).with_name("html_style.css")


class RunState:
    """The run's files, its results as they arrive, and when it started."""

    def __init__(self, files: RunFiles, owns_html: bool):
        self.files = files
        self.owns_html = owns_html  # the suite named the HTML report itself, so it is copied as the latest
        self.started = time.time()
        self.results: list[CheckResult] = []
        self._durations: dict[str, float] = {}
        self._main: dict[str, object] = {}

    def pytest_runtest_logreport(self, report) -> None:
        """Every phase's time counts; the call phase (or a setup that failed or skipped) carries the verdict.

        Registered as a plugin on the controller only; under xdist it receives the workers' reports."""
        self._durations[report.nodeid] = self._durations.get(report.nodeid, 0.0) + report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self._main[report.nodeid] = report
        if report.when != "teardown":
            return
        main, duration = self._main.pop(report.nodeid, None), self._durations.pop(report.nodeid, 0.0)
        if main is None or "check_id" not in dict(main.user_properties):
            return
        self.results.append(CheckResult.from_properties(main.nodeid, main.outcome, duration, main.user_properties,
                                                        str(main.longrepr) if main.longrepr else ""))


def run_name(markexpr: str) -> str:
    """`daily` for `-m daily`; a safe slug of any other expression; `checks` for none.

    >>> run_name("daily"), run_name("daily and not weekly"), run_name("")
    ('daily', 'daily-and-not-weekly', 'checks')
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", markexpr).strip("-")
    return slug[:40] or "checks"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nautilus-reports", "Nautilus reports")
    group.addoption("--reports-dir", metavar="DIR", default=None,
                    help="where runs write their reports (default: reports/out in the checkout)")
    group.addoption("--keep-runs", metavar="N", type=int, default=50,
                    help="keep the newest N runs of a tier (0: no limit by count); default 50")
    group.addoption("--keep-days", metavar="D", type=float, default=30,
                    help="remove a tier's runs older than D days (0: no limit by age); default 30")
    group.addoption("--textfile-dir", metavar="DIR", default=None,
                    help="where the Prometheus textfile goes (node_exporter --collector.textfile.directory); "
                         "default: <reports dir>/textfile")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: pytest-html, allure and junitxml read their paths in their own configure.
    if not is_check_run(config):
        return
    if hasattr(config, "workerinput"):
        # xdist workers configure before they receive the controller's options,
        # so the results folder reaches them through the environment they inherit.
        config.option.allure_report_dir = config.option.allure_report_dir or os.environ.get(WORKER_ALLURE_DIR)
        return
    out_dir = Path(config.getoption("reports_dir") or OUT_DIR).resolve()
    files = RunFiles(out_dir, run_name(config.option.markexpr), new_run_id())
    owns_html = not config.option.htmlpath
    if owns_html:
        config.option.htmlpath = str(files.html)
        config.option.self_contained_html = True
    config.option.css = [*(config.option.css or []), str(STYLE)]
    if not config.option.allure_report_dir:
        config.option.allure_report_dir = str(files.allure_dir)
    if not config.option.xmlpath:
        config.option.xmlpath = str(files.junit)
    os.environ[WORKER_ALLURE_DIR] = config.option.allure_report_dir
    config.stash[RUN] = RunState(files, owns_html)
    config.pluginmanager.register(config.stash[RUN], "nautilus-run-state")


def run_state(config: pytest.Config) -> RunState | None:
    return config.stash.get(RUN, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    yield  # pytest-html writes its file first
    state = run_state(session.config)
    if state is None:
        return
    _write_run_outputs(session.config, state, int(exitstatus))


def _write_run_outputs(config: pytest.Config, state: RunState, exit_code: int) -> None:
    files, finished = state.files, time.time()
    duration = finished - state.started
    artifacts = {"html": config.option.htmlpath, "allure": config.option.allure_report_dir,
                 "junit": config.option.xmlpath, "json": str(files.summary)}
    gate = config.stash.get(GATE, None)
    document = machine.summary_document(state.results, tier=files.tier, run_id=files.run_id, started=state.started,
                                        duration_s=duration, exit_code=exit_code,
                                        inventory=config.getoption("inventory"), artifacts=artifacts,
                                        wait_healthy=gate.summary() if gate else None)
    machine.write_summary(files.summary, document)
    textfile = Path(config.getoption("textfile_dir") or files.out_dir / "textfile") / f"nautilus_{files.tier}.prom"
    with shared_lock(files.out_dir):
        machine.write_summary(files.latest_summary, document)
        if state.owns_html and files.html.exists():
            write_atomically(files.latest_html, files.html.read_bytes())
        last_success = machine.previous_success(textfile, files.tier)
        write_atomically(textfile, machine.textfile(state.results, tier=files.tier, finished=finished,
                                                    duration_s=duration, exit_code=exit_code,
                                                    last_success=last_success))
        prune(files.out_dir, files.tier, Policy(config.getoption("keep_runs"), config.getoption("keep_days")))


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not config.stash.get(CHECK_RUN, False):
        return
    state = run_state(config)
    results = state.results if state else []
    roots = [r for r in results if r.is_root_cause]
    blocked = [r for r in results if r.outcome == "blocked"]
    if roots:
        terminalreporter.section(f"root causes ({len(roots)}): fix these first", sep="=", red=True, bold=True)
        for r in roots:
            terminalreporter.write_line(f"{r.label} ({r.severity}): {r.cause.splitlines()[0] if r.cause else ''}")
            terminalreporter.write_line(f"    fix: {r.remediation or 'none named: see the guide section'}"
                                        f"   guide: {r.guide}")
    if blocked:
        by_root: dict[str, list[str]] = {}
        for r in blocked:
            by_root.setdefault(r.blocked_by or "?", []).append(r.label)
        terminalreporter.section(f"blocked by those causes ({len(blocked)}): no fix of their own", sep="-")
        for root, names in sorted(by_root.items()):
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            terminalreporter.write_line(f"{root} blocks {len(names)}: {shown}")
    if roots:
        terminalreporter.write_line(rerun_command(config.getoption("inventory"), [r.nodeid for r in roots]))
    windows, deployed, gate = in_maintenance(results), deploy_line(results), config.stash.get(GATE, None)
    if windows or deployed or gate:
        terminalreporter.section("information: neither fails the run nor pages", sep="-")
    if gate:
        terminalreporter.write_line(gate.line())
    for window, count in windows.items():
        terminalreporter.write_line(f"{window} ({count} check{'s' * (count != 1)} not judged)")
    if deployed:
        terminalreporter.write_line(deployed)
    escalation = level_for([Failure(r.check_id, r.area, r.severity, r.engine) for r in roots])
    if escalation:
        terminalreporter.section("escalation (the guide's levels)")
        terminalreporter.write_line(escalation.line())
    if state:
        terminalreporter.write_line(f"run id: {state.files.run_id}")
        terminalreporter.write_line(f"HTML report: {config.option.htmlpath}")
        terminalreporter.write_line(f"Allure results: {config.option.allure_report_dir}")
        terminalreporter.write_line(f"JUnit XML: {config.option.xmlpath}")
        terminalreporter.write_line(f"JSON summary: {state.files.summary}")


def rerun_command(inventory: str | None, nodeids: list[str]) -> str:
    """
    >>> rerun_command("lab/inventory.yaml", ["checks/test_ports.py::test_port_open[port-8200]"])
    "rerun only the root causes: python -m pytest --inventory=lab/inventory.yaml 'checks/test_ports.py::test_port_open[port-8200]'"
    """
    return ("rerun only the root causes: python -m pytest" + (f" --inventory={inventory}" if inventory else "")
            + " " + " ".join(shlex.quote(n) for n in nodeids))

