"""Bounded under every fault, clean under hostile answers, harmless to what it inspects.

Each condition is made for real (the lab's hostile-body, trickle, hang and
slow faults, silent listeners, a host name resolved in a network namespace
with no way out); the bounds asserted are the suite's own timeouts plus a
fixed slack for process start-up, never a speed target (bench/ measures those).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import LAB_INVENTORY, ROOT, derived_inventory, lab_cli

MB = 1024 * 1024
MEMORY_BOUND_MB = 300
START_SLACK_S = 15  # interpreter, imports, collection and report writing on a busy 2-CPU machine
GUIDE_ENGINES = ("analytics", "risk", "factor", "ml", "features", "websocket", "strategy", "marketdata", "portfolio")


def measured_run(*args: str, inventory: Path = LAB_INVENTORY, reports: Path, prefix: tuple[str, ...] = ()):
    """The suite as a child process: (exit code, output, seconds, peak RSS in MB of that child)."""
    env = dict(os.environ)
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    cmd = [*prefix, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--inventory={inventory}",
           f"--reports-dir={reports}", f"--state-dir={reports / 'state'}", *args]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, output, time.monotonic() - started, usage.ru_maxrss / 1024


def assert_clean(output: str) -> None:
    """One-line findings, never a traceback of the suite itself."""
    assert "Traceback" not in output and "INTERNALERROR" not in output, output[-3000:]


@pytest.mark.lab_fault
def test_hostile_health_bodies_fail_cleanly_with_bounded_memory(tmp_path):
    found = {}
    try:
        for mode in ("not-json", "huge", "nested", "wrong-types", "bad-utf8"):
            lab_cli("fault", "hostile-body", "risk", "--text", mode)  # replaces the previous mode
            code, output, _, peak_mb = measured_run("-m", "emergency", "-k", "risk-engine", reports=tmp_path / mode)
            assert code == 1, output[-2000:]
            assert_clean(output)
            assert peak_mb < MEMORY_BOUND_MB, (mode, peak_mb)
            found[mode] = output
    finally:
        lab_cli("heal")
    assert "saw HTTP 200: '<html><body><h1>502 Bad Gateway" in found["not-json"]
    assert "cut at 1 MiB: the answer is larger" in found["huge"]
    assert "expected a JSON object from /health; saw HTTP 200: '[[[[" in found["nested"]
    assert "expected status in ['healthy']; saw ['healthy']" in found["wrong-types"]
    assert "expected messagebus_connected true; saw 'yes'" in found["wrong-types"]
    assert "saw 'healthy\ufffd" in found["bad-utf8"]


@pytest.mark.lab_fault
def test_malformed_metrics_and_a_megabyte_log_line(tmp_path):
    try:
        lab_cli("fault", "hostile-body", "risk", "--text", "bad-metrics")
        lab_cli("fault", "hostile-body", "risk", "--text", "long-log")
        code, output, _, peak_mb = measured_run("-m", "daily", "-k", "risk and (metrics or log)", reports=tmp_path)
    finally:
        lab_cli("heal")
    assert code == 1
    assert_clean(output)
    assert peak_mb < MEMORY_BOUND_MB
    assert "expected json metrics (inventory metrics.format); saw not a JSON object: '# TYPE x gauge" in output
    assert "\\x00\\x01" in output  # control characters from the engine shown as escapes, never raw
    assert "saw database-connection-timeout" in output and "zzzz[cut " not in output.split("saw")[0]


@pytest.mark.lab_fault
def test_a_trickling_and_a_hung_engine_end_within_one_timeout(tmp_path):
    inventory = yaml.safe_load(LAB_INVENTORY.read_text())
    # health is read with the engine's critical response time (5 s) as its read timeout
    timeouts = {"connect_s": 3, "read_s": 5, **inventory.get("timeouts", {})}
    try:
        lab_cli("fault", "trickle", "risk")
        lab_cli("fault", "hang", "ml")
        code, output, seconds, _ = measured_run("-m", "emergency", "-k", "engine", reports=tmp_path)
    finally:
        lab_cli("heal")
    assert code == 1
    assert_clean(output)
    whole = timeouts["connect_s"] + timeouts["read_s"]
    assert f"[risk-engine] expected GET http://127.0.0.1:8200/health to answer; saw answer not complete within " \
           f"{whole * 1000:.0f} ms (still arriving" in output
    assert "[ml-engine] expected GET http://127.0.0.1:8400/health to answer; saw no answer within" in output
    assert seconds < whole + START_SLACK_S, seconds  # both waited at once, each at most its own bound


@pytest.mark.lab_fault
def test_a_check_past_its_overall_bound_fails_saying_so(tmp_path):
    inventory = derived_inventory(tmp_path, timeouts={"connect_s": 3, "read_s": 5, "check_s": 1})
    try:
        lab_cli("fault", "slow", "risk", "--ms", "3000")
        code, output, seconds, _ = measured_run("-m", "emergency", "-k", "risk-engine", inventory=inventory,
                                                reports=tmp_path / "r")
    finally:
        lab_cli("heal")
    assert code == 1
    assert "] no verdict within 1 s (inventory timeouts.check_s)" in output
    assert seconds < 5 + START_SLACK_S


class SilentListeners:
    """Ports that accept a connection (the kernel does) and never say a word."""

    def __init__(self, count: int):
        self.sockets = []
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(128)
            self.sockets.append(s)
        self.ports = [s.getsockname()[1] for s in self.sockets]

    def close(self) -> None:
        for s in self.sockets:
            s.close()


@pytest.mark.usefixtures("lab")
def test_a_hundred_silent_engines_cost_one_timeout(tmp_path):
    listeners = SilentListeners(100)
    try:
        engines = {name: None for name in GUIDE_ENGINES}
        engines.update({f"silent{i:03d}": {"port": port, "docker": False} for i, port in enumerate(listeners.ports)})
        inventory = derived_inventory(tmp_path, engines=engines, timeouts={"connect_s": 1, "read_s": 5})
        code, output, seconds, peak_mb = measured_run("-m", "emergency", "-k", "engine_health", inventory=inventory,
                                                      reports=tmp_path / "r")
    finally:
        listeners.close()
    assert code == 1
    assert_clean(output)
    # health waits up to the critical response time (5 s by default) for an answer
    named = [line for line in output.splitlines() if "/health to answer; saw no answer within 5000 ms" in line]
    assert len({re.search(r"\[(silent\d{3})-engine\]", line)[1] for line in named}) == 100
    assert seconds < 1 + 5 + START_SLACK_S, seconds  # one timeout for all, not a hundred
    assert peak_mb < MEMORY_BOUND_MB


@pytest.mark.usefixtures("lab")
def test_a_host_name_that_does_not_resolve(tmp_path):
    """Resolved in a network namespace with only a loopback: the lookup fails here and sends nothing out."""
    if subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10).returncode != 0:
        pytest.fail("unshare --net is needed (root, util-linux)", pytrace=False)
    inventory = derived_inventory(
        tmp_path, hosts=[{"name": "gone", "address": "nautilus-gone.invalid", "docker": False}],
        engines={name: ({"docker": False} if name == "risk" else None) for name in GUIDE_ENGINES},
        services={}, prometheus=None)
    code, output, seconds, _ = measured_run("-m", "emergency", "-k", "risk-engine", inventory=inventory,
                                            reports=tmp_path / "r", prefix=("unshare", "--net"))
    assert code == 1
    assert_clean(output)
    assert "nautilus-gone.invalid" in output and "connection failed" in output
    assert seconds < 3 + START_SLACK_S
