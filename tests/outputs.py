"""Running the checks as an operator does and reading what they leave behind, as each output's reader would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema
from prometheus_client.parser import text_string_to_metric_families

import lab_records
from warm_runs import WARM

ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = ROOT / "lab" / "inventory.yaml"
JUNIT_SCHEMA = Path(__file__).resolve().parent / "unit" / "junit-xunit2.xsd"


def run_suite(reports: Path, *args: str, wait: bool = True, state: Path | None = None, inventory: Path = LAB_INVENTORY,
              env: dict | None = None):
    """A check run with the suite naming every file under `reports`, its state in `state` (default: reports/state).

    Waited for, it is forked from the warm interpreter (tests/warm_runs.py); with `wait=False`, a plain
    `python -m pytest` the caller watches."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    pytest_args = ["-p", "no:cacheprovider", "-q", f"--inventory={inventory}", f"--reports-dir={reports}",
                   f"--state-dir={state or reports / 'state'}", *args]
    if not wait:
        return subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, env=full_env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done = WARM.run("pytest", pytest_args, ROOT, full_env, timeout=300)
    junit = artifacts_of(done.stdout + done.stderr).get("junit")
    lab_records.note([junit] if junit and junit.exists() else [], inventory)
    return done


def artifacts_of(output: str) -> dict[str, Path]:
    """The files a run names at its end (HTML, Allure results, JUnit, JSON)."""
    names = {"HTML report": "html", "Allure results": "allure", "JUnit XML": "junit", "JSON summary": "json"}
    found = {}
    for line in output.splitlines():
        label, _, value = line.partition(": ")
        if label in names:
            found[names[label]] = Path(value.strip())
    return found


def series(textfile: Path) -> dict:
    """{(metric, labels): value} of a Prometheus textfile, through prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(textfile.read_text()) for s in family.samples}


def junit_counts(path: Path) -> dict[str, int]:
    """The testsuite's counts, once the file is shown to validate against the xunit2 schema."""
    xmlschema.XMLSchema(JUNIT_SCHEMA).validate(str(path))
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}


def summary(path: Path) -> dict:
    return json.loads(path.read_text())


def build_allure(out: Path, tier: str = "daily") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reports.allure_report", "--tier", tier, f"--out-dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
