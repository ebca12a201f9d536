"""What a check run leaves behind, and the story its terminal ends with.

Every run gets an id (start time plus random hex) and writes, under the
reports directory (reports/out unless --reports-dir):

- `<tier>-<id>.html`: a self-contained pytest-html report (reports/html_story.py)
- `<tier>-<id>-allure/`: Allure results (reports/allure_labels.py)
- `<tier>-<id>.junit.xml`: JUnit XML (xunit2) for CI gates
- `<tier>-<id>.json`: a JSON summary, one entry per check and target
- shared, replaced atomically under a lock: `latest-<tier>.html`, `latest-<tier>.json`, and for
  node_exporter's textfile collector `textfile/nautilus_<tier>.prom` (the checks) and
  `textfile/nautilus_<tier>_run.prom` (exit code, last run, last success)

then prunes that tier's older runs (reports/retention.py). A subset run (`-k`, `--engine`, `--lf`, node ids, a
mark expression that is not a tier, a stop at the first failures) writes its own files as `<tier>-partial-<id>`
and never touches the tier's shared files; `--collect-only` writes nothing; a run that cannot start (a bad
inventory) still writes the tier's run file with its exit code and time. An --html, --alluredir or --junitxml
given on the command line wins over the default.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fixtures.record import GATE, RUN_FACTS, START_ERROR, TIERS, CheckRecord, check_run, record_of
from fixtures.state import INVENTORY, effective_setting
from observation.paths import OUT_DIR, state_dir

from . import machine
from . import outages
from .escalation import DOWN_CHECKS, Failure, level_for
from .retention import Policy, prune
from .run import RunFiles, new_run_id, shared_lock, write_atomically
from .verdict import Change, Cause, change_since, deploy_line, in_maintenance, root_causes, verdict_line

RUN = pytest.StashKey["RunState"]()
WORKER_ALLURE_DIR = "NAUTILUS_ALLURE_DIR"
STYLE = Path(__file__).with_name("html_style.css")


class RunState:
    """The run's files, its records as they arrive, and when it started; registered on the controller only."""

    def __init__(self, files: RunFiles, owns_html: bool, partial: str | None, previous: dict | None):
        self.files = files
        self.owns_html = owns_html  # the suite named the HTML report itself, so it is copied as the latest
        self.partial = partial  # why this run is a subset of its tier; None for a whole tier
        self.previous = previous  # the tier's previous complete run's summary, for what changed since
        self.started = time.time()
        self.records: list[CheckRecord] = []
        self._durations: dict[str, float] = {}
        self._main: dict[str, object] = {}

    def pytest_runtest_logreport(self, report) -> None:
        """Every phase's time counts; the report carrying the record (call, or a setup that did not pass) is kept.

        Under xdist the controller receives the workers' reports here, records included."""
        self._durations[report.nodeid] = self._durations.get(report.nodeid, 0.0) + report.duration
        if getattr(report, "nautilus", None):
            self._main[report.nodeid] = report
        if report.when != "teardown":
            return
        main, duration = self._main.pop(report.nodeid, None), self._durations.pop(report.nodeid, 0.0)
        record = record_of(main) if main is not None else None
        if record is not None:
            self.records.append(record.with_duration(duration))

    def verdict(self) -> tuple[list[Cause], Change]:
        causes = root_causes(self.records)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return causes, change_since(causes, self.previous, started)


def run_name(markexpr: str) -> str:
    """`daily` for `-m daily`; a safe slug of any other expression; `checks` for none.

    >>> run_name("daily"), run_name("daily and not weekly"), run_name("")
    ('daily', 'daily-and-not-weekly', 'checks')
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", markexpr).strip("-")
    return slug[:40] or "checks"


def partial_reason(config: pytest.Config) -> str | None:
    """Why the run is not its whole tier, or None: only a whole tier may speak for the tier's shared files."""
    option = config.option
    reasons = []
    if option.markexpr not in TIERS:
        reasons.append(f"-m {option.markexpr!r} is not one tier" if option.markexpr else "no tier (-m)")
    if option.keyword:
        reasons.append(f"-k {option.keyword!r}")
    if config.getoption("engine"):
        reasons.append("--engine " + " ".join(config.getoption("engine")))
    if getattr(option, "lf", False):
        reasons.append("--lf")
    if getattr(option, "stepwise", False):
        reasons.append("--stepwise")
    if getattr(option, "deselect", None):
        reasons.append("--deselect")
    if config.args_source == pytest.Config.ArgsSource.ARGS and \
            any(Path(a.split("::")[0]).resolve() != (config.rootpath / "checks").resolve() for a in config.args):
        reasons.append("chosen test paths or node ids")
    return ", ".join(reasons) or None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nautilus-reports", "Nautilus reports")
    group.addoption("--reports-dir", metavar="DIR", default=None,
                    help="where runs write their reports (default: the ini's nautilus_reports_dir, else reports/out "
                         "in the checkout)")
    group.addoption("--keep-runs", metavar="N", type=int, default=50,
                    help="keep the newest N runs of a tier (0: no limit by count); default 50")
    group.addoption("--keep-days", metavar="D", type=float, default=30,
                    help="remove a tier's runs older than D days (0: no limit by age); default 30")
    group.addoption("--textfile-dir", metavar="DIR", default=None,
                    help="where the Prometheus textfiles go (node_exporter --collector.textfile.directory); "
                         "default: the ini's nautilus_textfile_dir, else <reports dir>/textfile")


def out_dir(config: pytest.Config) -> Path:
    # The command line's, else the ini's nautilus_reports_dir (fixtures/state.py); read here, as this plugin picks
    # its files before the check plugin settles the options.
    return Path(effective_setting(config, "reports_dir") or OUT_DIR).resolve()


def textfile_dir(config: pytest.Config) -> Path:
    return Path(effective_setting(config, "textfile_dir") or out_dir(config) / "textfile")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: pytest-html, allure and junitxml read their paths in their own configure.
    if not check_run(config) or config.option.collectonly:
        return
    option = config.option
    allure_on = hasattr(option, "allure_report_dir")  # each report plugin may be switched off (-p no:...)
    if hasattr(config, "workerinput"):
        # xdist workers configure before they receive the controller's options,
        # so the results folder reaches them through the environment they inherit.
        if allure_on:
            option.allure_report_dir = option.allure_report_dir or os.environ.get(WORKER_ALLURE_DIR)
        return
    partial = partial_reason(config)
    tier = run_name(option.markexpr)
    files = RunFiles(out_dir(config), f"{tier}-partial" if partial else tier, new_run_id())
    owns_html = hasattr(option, "htmlpath") and not option.htmlpath
    if owns_html:
        option.htmlpath = str(files.html)
        option.self_contained_html = True
    if hasattr(option, "css"):
        option.css = [*(option.css or []), str(STYLE)]
    if allure_on and not option.allure_report_dir:
        option.allure_report_dir = str(files.allure_dir)
    if hasattr(option, "xmlpath") and not option.xmlpath:
        option.xmlpath = str(files.junit)
    if allure_on:
        os.environ[WORKER_ALLURE_DIR] = option.allure_report_dir
    config.stash[RUN] = RunState(files, owns_html, partial, machine.read_summary(files.out_dir / f"latest-{tier}.json"))
    config.pluginmanager.register(config.stash[RUN], "nautilus-run-state")


def report_path(config: pytest.Config, option: str) -> str | None:
    """Where a report plugin writes this run, or None when that plugin is switched off (-p no:html, ...)."""
    return getattr(config.option, option, None) or None


def run_state(config: pytest.Config) -> RunState | None:
    return config.stash.get(RUN, None)


def junit_properties(config: pytest.Config, state: RunState) -> None:
    """The run's verdict as JUnit testsuite properties (the xunit2 schema allows properties there, not per test)."""
    from _pytest.junitxml import xml_key  # where record_testsuite_property adds its own
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    causes, _ = state.verdict()
    for name, value in (("nautilus.tier", state.files.tier), ("nautilus.run_id", state.files.run_id),
                        ("nautilus.verdict", verdict_line(causes, state.records)),
                        *((f"nautilus.root_cause.{i}", f"{c.headline()} | fix: {c.fix_line()}")
                          for i, c in enumerate(causes, 1))):
        xml.add_global_property(name, value)


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    state = run_state(session.config)
    if state is not None:
        junit_properties(session.config, state)  # before junitxml writes its file
    yield  # pytest-html and junitxml write their files first
    if state is None:
        return
    if session.shouldfail or session.shouldstop:
        state.partial = state.partial or "stopped early (-x / --maxfail)"
    _write_run_outputs(session.config, state, int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run that could not start (a bad inventory, a bad option of ours) still says so to alerting."""
    problem = config.stash.get(START_ERROR, None)
    if problem is None or hasattr(config, "workerinput") or config.option.markexpr not in TIERS:
        return
    tier, now = config.option.markexpr, time.time()
    path = textfile_dir(config) / f"nautilus_{tier}_run.prom"
    with shared_lock(out_dir(config)):
        write_atomically(path, machine.run_textfile(tier=tier, finished=now, duration_s=0.0, exit_code=4,
                                                    last_success=machine.previous_success(path, tier)))


def _write_run_outputs(config: pytest.Config, state: RunState, exit_code: int) -> None:
    files, finished = state.files, time.time()
    duration = finished - state.started
    causes, change = state.verdict()
    gate = config.stash.get(GATE, None)
    artifacts = {"html": report_path(config, "htmlpath"), "allure": report_path(config, "allure_report_dir"),
                 "junit": report_path(config, "xmlpath"), "json": str(files.summary)}
    document = machine.summary_document(
        state.records, causes, change, tier=files.tier, run_id=files.run_id, started=state.started,
        duration_s=duration, exit_code=exit_code, inventory=config.stash[RUN_FACTS].inventory_path,
        artifacts=artifacts, partial=state.partial, wait_healthy=gate.summary() if gate else None,
        rerun=rerun_command(config, causes), escalation=escalation_of(config, causes),
        system=config.stash[RUN_FACTS].system())
    machine.write_summary(files.summary, document)
    if state.partial:
        return  # a subset of the tier never speaks for it: no latest copy, no textfile, no last success
    folder = textfile_dir(config)
    checks_file, run_file = folder / f"nautilus_{files.tier}.prom", folder / f"nautilus_{files.tier}_run.prom"
    with shared_lock(files.out_dir):
        machine.write_summary(files.latest_summary, document)
        if state.owns_html and files.html.exists():
            write_atomically(files.latest_html, files.html.read_bytes())
        write_atomically(checks_file, machine.checks_textfile(state.records, causes, tier=files.tier))
        write_atomically(run_file, machine.run_textfile(
            tier=files.tier, finished=finished, duration_s=duration, exit_code=exit_code,
            last_success=machine.previous_success(run_file, files.tier)))
        prune(files.out_dir, files.tier, Policy(config.getoption("keep_runs"), config.getoption("keep_days")))


ESCALATION = pytest.StashKey[str | None]()


def escalation_of(config: pytest.Config, causes: list[Cause]) -> str | None:
    """The guide's level for the run, worked out once per run: the first report to ask also records, in the state
    folder, which engines are down since when (reports/outages.py), so an outage over an hour is Level 3."""
    if ESCALATION not in config.stash:
        failures = [Failure(r.check_id, r.area, r.severity, r.engine) for c in causes for r in c.records]
        escalation = level_for(failures)
        state = run_state(config)
        if state is not None and INVENTORY in config.stash and not hasattr(config, "workerinput"):
            now = datetime.now(timezone.utc)
            # Only engines whose running/answering checks ran in this run: a `-k redis` rerun says nothing of them.
            checked = {r.engine for r in state.records if r.engine and r.check_id in DOWN_CHECKS}
            try:
                since = outages.record(state_dir(config.stash[INVENTORY]), checked, outages.down_engines(failures), now)
            except OSError:
                since = {}  # an unwritable state folder costs the trigger, not the run's reports
            long = outages.outage_escalation(since, now)
            if long and (escalation is None or long.level >= escalation.level):
                escalation = long
        config.stash[ESCALATION] = escalation.line() if escalation else None
    return config.stash[ESCALATION]


def rerun_command(config: pytest.Config, causes: list[Cause]) -> str | None:
    """The command that reruns only the root causes, pasteable anywhere: this run's interpreter and node ids by
    absolute path (pytest finds the checkout's ini and plugin from them), with the run's inventory and folders."""
    if not causes:
        return None
    args = [sys.executable, "-m", "pytest"]
    inventory = config.stash[RUN_FACTS].inventory_path
    if inventory:
        args.append(f"--inventory={inventory}")
    for option, flag in (("state_dir", "--state-dir"), ("reports_dir", "--reports-dir")):
        if config.getoption(option, None):
            args.append(f"{flag}={config.getoption(option)}")  # made absolute once, as the run settled it
    args += [f"{config.rootpath}/{n}" for c in causes for n in (r.nodeid for r in c.records)]
    return " ".join(shlex.quote(a) for a in args)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = run_state(config)
    if state is None:
        return
    records = state.records
    causes, change = state.verdict()
    write = terminalreporter.write_line
    if causes:
        terminalreporter.section(f"root causes ({len(causes)}): fix these first", sep="=", red=True, bold=True)
        for cause in causes:
            write(cause.headline())
            for also in cause.also:
                write(f"    also failing on it: {also.label}: {also.headline}")
            write(f"    fix: {cause.fix_line()}   guide: {cause.main.guide}")
    blocked = [r for r in records if r.outcome == "blocked"]
    if blocked:
        by_root: dict[str, list[str]] = {}
        for r in blocked:
            by_root.setdefault(r.blocked_by, []).append(r.label)
        terminalreporter.section(f"blocked by those causes ({len(blocked)}): no fix of their own", sep="-")
        for root, names in sorted(by_root.items()):
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            write(f"{root} blocks {len(names)}: {shown}")
    if causes:
        write(f"rerun only the root causes: {rerun_command(config, causes)}")
        terminalreporter.section("escalation (the guide's levels)")
        write(escalation_of(config, causes))
    windows, deployed, gate = in_maintenance(records), deploy_line(records), config.stash.get(GATE, None)
    if windows or deployed or gate:
        terminalreporter.section("information: neither fails the run nor pages", sep="-")
    if gate:
        write(gate.line())
    for window, count in windows.items():
        write(f"{window} ({count} check{'s' * (count != 1)} not judged)")
    if deployed:
        write(deployed)
    if not state.partial:
        for line in change.lines():
            write(f"since the previous {state.files.tier} run: {line}")
    write(f"run id: {state.files.run_id}" + (f" (a partial run: {state.partial}; the tier's textfile and latest "
                                             "report are left as they were)" if state.partial else ""))
    for label, option in (("HTML report", "htmlpath"), ("Allure results", "allure_report_dir"),
                          ("JUnit XML", "xmlpath")):
        if report_path(config, option):
            write(f"{label}: {report_path(config, option)}")
    write(f"JSON summary: {state.files.summary}")
