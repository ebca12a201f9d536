"""Fixtures for the suite's own tests: the lab, and running the checks against it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml

from lab import LABEL, LABEL_VALUE
from lab.ownership import owned_container

import lab_records
from warm_runs import WARM

ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = ROOT / "lab" / "inventory.yaml"
LAB_DIR_TESTS = ROOT / "tests" / "lab"
# Docker filters selecting only what the lab created.
LAB_OWNED = {"label": f"{LABEL}={LABEL_VALUE}"}
LAB_LABELS = {LABEL: LABEL_VALUE}


def lab_docker() -> docker.DockerClient:
    return docker.from_env(timeout=30)


def lab_container(name: str):
    """A lab container by name, refused when a container of that name is not the lab's (lab/ownership.py)."""
    return owned_container(lab_docker(), name)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test runs: when lab tests are selected, refuse at once on a host holding the platform's objects."""
    if not any(LAB_DIR_TESTS in Path(str(item.fspath)).parents for item in session.items):
        return
    done = subprocess.run([sys.executable, "-m", "lab", "check"], cwd=ROOT, text=True, capture_output=True,
                          timeout=120)
    if done.returncode != 0:
        pytest.exit((done.stderr.strip() or done.stdout.strip()).splitlines()[-1], returncode=4)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """What the lab tests saw the checks do, written as data for docs/coverage.md (tests/lab_records.py)."""
    WARM.close()
    written = lab_records.save()
    if written:
        session.config.get_terminal_writer().line(f"lab check results recorded in {written}")


def lab_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = WARM.run("lab", list(args), ROOT, dict(os.environ), timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"python -m lab {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def lab():
    """The lab, up and healthy. A lab that cannot start fails every lab test, loudly: a skip would hide it."""
    done = subprocess.run([sys.executable, "-m", "lab", "up"], cwd=ROOT, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail("the lab did not come up (python -m lab up failed; its output is above)", pytrace=False)
    yield
    if not os.environ.get("NAUTILUS_LAB_KEEP"):
        lab_cli("down", check=False)


@pytest.fixture
def _unhealed(lab) -> dict:
    """Whether a fault was injected since the last heal, shared by `fault` and `heal`."""
    return {"faults": False}


@pytest.fixture
def fault(_unhealed):
    """Inject lab faults; the lab is healed after the test, pass or fail, unless the test's own heal came last."""

    def inject(kind: str, target: str, *extra: str) -> None:
        _unhealed["faults"] = True
        lab_cli("fault", kind, target, *extra)

    yield inject
    if _unhealed["faults"]:
        lab_cli("heal")


@pytest.fixture
def heal(_unhealed):
    """Clear every lab fault and wait until the stack is healthy again."""

    def do() -> None:
        lab_cli("heal")
        # Only once it succeeded: a heal that failed is tried again after the test.
        _unhealed["faults"] = False

    return do


def derived_inventory(tmp_path: Path, thresholds: dict | None = None, **changes) -> Path:
    """The lab inventory with top-level `changes` and threshold overrides, written where its relative paths
    still resolve (they are made absolute: they were relative to lab/, not to the copy)."""
    document = yaml.safe_load(LAB_INVENTORY.read_text())
    for key in ("log_dir", "backup_dir", "compose_file", "state_dir"):
        if document.get(key) and not str(document[key]).startswith("/"):
            document[key] = str((LAB_INVENTORY.parent / document[key]).resolve())
    document.update(changes)
    document["thresholds"] = {**(document.get("thresholds") or {}), **(thresholds or {})}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@dataclass
class CheckRun:
    returncode: int
    outcomes: dict[str, str]   # "test_name[param]" -> passed | failed | blocked | error | skipped
    messages: dict[str, str]
    output: str

    @property
    def failed(self) -> set[str]:
        """What did not pass for a reason to act on: root causes and what they block."""
        return {name for name, outcome in self.outcomes.items() if outcome in ("failed", "error", "blocked")}

    @property
    def roots(self) -> set[str]:
        """What JUnit counts as failures: the root causes alone."""
        return {name for name, outcome in self.outcomes.items() if outcome in ("failed", "error")}


def run_checks(tmp_path: Path, *args: str, env: dict | None = None, reports: bool = False) -> CheckRun:
    """Run the operational checks in a subprocess, as an SRE would, and read the JUnit result.

    Each run remembers only itself (a fresh state folder), so restarts that this or other lab
    tests caused on purpose are not "restarts since the last run"; a test about that check
    passes its own --state-dir to two runs.
    """
    stamp = time.monotonic_ns()
    junit = tmp_path / f"junit-{stamp}.xml"
    state = () if any(a.startswith("--state-dir") for a in args) else (f"--state-dir={tmp_path / f'state-{stamp}'}",)
    # The HTML and Allure reports cost about a fifth of a run's CPU: only a test that reads them has them written,
    # by asking (reports=True) or by naming its own files. The reports' own tests read every file of full runs.
    if any(arg.startswith(("--html", "--alluredir")) for arg in args):
        writers: tuple[str, ...] = ()
    elif reports:
        writers = (f"--html={tmp_path / 'report.html'}", f"--alluredir={tmp_path / 'allure'}")
    else:
        writers = ("-p", "no:html", "-p", "no:allure_pytest")
    cmd = ["-p", "no:cacheprovider", "-q", f"--junitxml={junit}", *writers, *state, *args]
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    done = WARM.run("pytest", cmd, ROOT, full_env, timeout=300)
    lab_records.note([junit] if junit.exists() else [], lab_records.inventory_argument(args))
    outcomes, messages = {}, {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name")
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    messages[name] = node.get("message", "") + "\n" + (node.text or "")
                    # A blocked check is a skip for JUnit (no failure of its own); its message names the cause.
                    outcome = "blocked" if tag == "skipped" and "] blocked by " in messages[name] else \
                        {"failure": "failed"}.get(tag, tag)
                    break
            outcomes[name] = outcome
    return CheckRun(done.returncode, outcomes, messages, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def lab_password(lab) -> str:
    return (ROOT / "lab" / ".state" / "postgres-password").read_text().strip() \
        if not os.environ.get("NAUTILUS_POSTGRES_PASSWORD") else os.environ["NAUTILUS_POSTGRES_PASSWORD"]


def fill_connections(admin, password: str, application: str) -> list:
    """Open sessions of `application` until only PostgreSQL's superuser-reserved slots are left; returns them."""
    import psycopg
    limit, reserved = (int(admin.execute(f"SHOW {name}").fetchone()[0])
                       for name in ("max_connections", "superuser_reserved_connections"))
    used = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()[0]
    return [psycopg.connect(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus", password=password,
                            application_name=application, connect_timeout=5) for _ in range(limit - reserved - used)]
