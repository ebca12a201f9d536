"""Remediation helpers against the real lab: they act only when told, and say what they see."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import LAB_INVENTORY, ROOT, lab_container, run_checks
from remediation.invocation import render

INVENTORY = f"--inventory={LAB_INVENTORY}"


def remediation(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NAUTILUS_AUDIT_LOG=str(tmp_path / "audit.log"))
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    return subprocess.run([sys.executable, "-m", "remediation", *args, INVENTORY], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def started_at(name: str) -> str:
    return lab_container(name).attrs["State"]["StartedAt"]


@pytest.mark.lab_fault
def test_restart_engine_dry_run_then_apply(tmp_path, lab_password):
    before = started_at("nautilus-risk-engine")
    dry = remediation("restart-engine", "risk", tmp_path=tmp_path)
    assert dry.returncode == 0 and "dry run: nothing changed" in dry.stdout
    assert started_at("nautilus-risk-engine") == before and not (tmp_path / "audit.log").exists()

    done = remediation("restart-engine", "risk", "--apply", "--yes", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "nautilus-risk-engine is running and healthy" in done.stdout
    assert started_at("nautilus-risk-engine") != before
    saved = next(line for line in done.stdout.splitlines() if line.startswith("diagnostics saved to "))
    bundle = ROOT / saved.removeprefix("diagnostics saved to ")
    files = {p.name for p in bundle.iterdir()}
    assert {"containers.json", "engine-health.json", "host.json", "nautilus-postgres.log"} <= files
    assert all(lab_password not in p.read_text(errors="replace") for p in bundle.iterdir())
    audit = json.loads((tmp_path / "audit.log").read_text().splitlines()[-1])
    assert (audit["helper"], audit["target"]) == ("restart-engine", "nautilus-risk-engine")


@pytest.mark.lab_fault
def test_free_port_names_the_holder_and_kills_nothing(tmp_path, fault):
    fault("port-taken", "marketdata")
    done = remediation("free-port", "8800", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    holder = [line for line in done.stdout.splitlines() if "held by process" in line]
    assert holder and "python -m lab.port_holder 8800" in holder[0]
    pid = int(holder[0].split("process ")[1].split(":")[0])
    os.kill(pid, 0)  # still alive: the helper only reports
    assert "nothing was killed" in done.stdout


@pytest.mark.lab_fault
def test_crash_loop_is_detected_and_diagnosed(tmp_path, fault):
    fault("crash-loop", "factor")
    deadline = time.monotonic() + 30
    while lab_container("nautilus-factor-engine").attrs["RestartCount"] < 3:
        assert time.monotonic() < deadline, "the crash loop did not loop"
        time.sleep(0.5)
    run = run_checks(tmp_path, "-m", "emergency", "-k", "restart_looping", INVENTORY)
    assert run.failed == {"test_container_not_restart_looping[nautilus-factor-engine]"}
    assert render(['diagnose-startup', 'nautilus-factor-engine']) in \
        run.messages["test_container_not_restart_looping[nautilus-factor-engine]"]
    diagnosis = remediation("diagnose-startup", "nautilus-factor-engine", tmp_path=tmp_path)
    assert "known cause: the guide's factor-engine import error" in diagnosis.stdout


@pytest.mark.lab_fault
def test_check_messagebus_sees_the_engine_missing(tmp_path, fault):
    fault("bus-down", "ml")
    done = remediation("check-messagebus", "ml", tmp_path=tmp_path)
    assert "a Redis client named nautilus-ml-engine: ABSENT from CLIENT LIST" in done.stdout
