"""What the lab tests saw each check do, kept as data: docs/coverage.md counts a lab proof only from these records.

Every run of the checks a lab test makes (tests/conftest.py run_checks, tests/outputs.py run_suite) is read from its
JUnit file and noted under the lab test that made it: which checks failed (on which targets) and which passed, and
which thresholds that run's inventory set apart from the lab's (a failure against a lowered bound is not a fault).
At the end of the session the notes are merged into reports/out/lab-proofs.json (NAUTILUS_LAB_PROOFS), test by
test, so a partial rerun refreshes only the tests it ran. `python -m checks.coverage --proofs FILE` turns a file
into docs/lab-proofs.json and docs/coverage.md.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = ROOT / "lab" / "inventory.yaml"
DEFAULT_FILE = ROOT / "reports" / "out" / "lab-proofs.json"

_runs: dict[str, dict] = {}


def records_file() -> Path:
    return Path(os.environ.get("NAUTILUS_LAB_PROOFS") or DEFAULT_FILE)


def current_test() -> str | None:
    """The lab test running now ("tests/lab/x.py::test_y[param]"), from what pytest sets for it."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.rsplit(" (", 1)[0] or None


def thresholds_of(document: dict) -> dict[str, object]:
    """Inventory-wide and per-engine thresholds, flattened ("engines.risk.cpu_warning_pct").

    >>> thresholds_of({"thresholds": {"a": 1}, "engines": {"risk": {"thresholds": {"b": 2}}, "ml": None}})
    {'a': 1, 'engines.risk.b': 2}
    """
    found = dict((document.get("thresholds") or {}))
    for name, engine in (document.get("engines") or {}).items():
        for key, value in ((engine or {}).get("thresholds") or {}).items():
            found[f"engines.{name}.{key}"] = value
    return found


def changed_thresholds(inventory: Path | None) -> list[str]:
    """The thresholds a run's inventory sets apart from the lab's own inventory."""
    if inventory is None:
        return []
    inventory = ROOT / inventory  # a relative path is the checkout's, where the runs are made
    if inventory.resolve() == LAB_INVENTORY.resolve():
        return []
    try:
        mine = thresholds_of(yaml.safe_load(Path(inventory).read_text()) or {})
    except (OSError, yaml.YAMLError):
        return ["unreadable inventory"]
    lab = thresholds_of(yaml.safe_load(LAB_INVENTORY.read_text()) or {})
    return sorted(name for name in set(mine) | set(lab) if mine.get(name) != lab.get(name))


def inventory_argument(args: tuple[str, ...] | list[str]) -> Path | None:
    """The --inventory a run was given.

    >>> inventory_argument(["-m", "daily", "--inventory=/x.yaml"]), inventory_argument(["--inventory", "y.yaml"])
    (PosixPath('/x.yaml'), PosixPath('y.yaml'))
    """
    args = list(args)
    for n, arg in enumerate(args):
        if arg.startswith("--inventory="):
            return Path(arg.split("=", 1)[1])
        if arg == "--inventory" and n + 1 < len(args):
            return Path(args[n + 1])
    return None


def outcomes_of(junit: Path) -> dict[str, tuple[str, str]]:
    """JUnit test case name -> outcome: passed, failed, blocked, cannot_observe, error or skipped."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name") or ""
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                message = (node.get("message") or "") + "\n" + (node.text or "")
                # A check that could not look proves nothing about the fault: only a failure of its fact counts.
                outcome = "blocked" if tag == "skipped" and "] blocked by " in message else \
                    "cannot_observe" if "] cannot observe: " in message else {"failure": "failed"}.get(tag, tag)
                break
        found[name] = outcome
    return found


def note(junits: list[Path], inventory: Path | None) -> None:
    """Record one run of the checks under the lab test that made it; a run outside a lab test is not recorded.

    Per test: the checks that failed with the lab's thresholds (and on which targets), those that failed only
    with thresholds changed (and which), and those that passed.
    """
    test = current_test()
    if not test or not test.startswith("tests/lab/"):
        return
    changed = changed_thresholds(inventory)
    seen = _runs.setdefault(test, {"failed": {}, "failed_with_changed_thresholds": {}, "passed": set()})
    for junit in junits:
        try:
            outcomes = outcomes_of(junit)
        except (OSError, ET.ParseError):
            continue
        for name, outcome in outcomes.items():
            function, _, target = name.partition("[")
            target = target.rstrip("]")
            if outcome == "passed":
                seen["passed"].add(function)
            elif outcome == "failed" and not changed:
                seen["failed"].setdefault(function, set()).add(target)
            elif outcome == "failed":
                lowered = seen["failed_with_changed_thresholds"].setdefault(function, {"targets": set(),
                                                                                     "thresholds": set()})
                lowered["targets"].add(target)
                lowered["thresholds"].update(changed)


def _plain(seen: dict) -> dict:
    return {"failed": {f: sorted(t) for f, t in sorted(seen["failed"].items())},
            "failed_with_changed_thresholds": {f: {k: sorted(v) for k, v in entry.items()}
                                               for f, entry in sorted(seen["failed_with_changed_thresholds"].items())},
            "passed": sorted(seen["passed"])}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def save() -> Path | None:
    """Merge this session's runs into the records file, test by test; None when nothing was recorded."""
    if not _runs:
        return None
    path = records_file()
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = {}
    tests = document.get("tests") or {}
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    commit = _commit()
    for test, seen in _runs.items():
        tests[test] = {"recorded": now, "commit": commit, **_plain(seen)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tests": dict(sorted(tests.items()))}, indent=1, sort_keys=False) + "\n")
    _runs.clear()
    return path
