"""The warm interpreter answers like `subprocess.run` of `python -m <module>`: output, exit code, folder,
environment, and a run past its timeout killed with what it started."""
from __future__ import annotations

import os
import subprocess
import textwrap
import time

import pytest

from warm_runs import WarmPython

PROBE = textwrap.dedent("""
    import os, subprocess, sys, time
    print("out", os.getcwd(), os.environ.get("PROBE_WORD"), sys.argv[1:])
    print("err", file=sys.stderr)
    if sys.argv[1:] == ["hang"]:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(60)
    if sys.argv[1:] == ["raise"]:
        raise ValueError("boom")
    sys.exit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
""")


@pytest.fixture
def warm(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    runner = WarmPython()
    yield runner
    runner.close()


@pytest.mark.parametrize("cold", [False, True])
def test_output_exit_code_folder_and_environment(warm, tmp_path, monkeypatch, cold):
    if cold:
        monkeypatch.setenv("NAUTILUS_TESTS_COLD", "1")
    env = {"PATH": os.environ["PATH"], "PROBE_WORD": "kept"}
    done = warm.run("probe", ["3"], tmp_path, env, timeout=30)
    assert done.returncode == 3
    assert done.stdout == f"out {tmp_path} kept ['3']\n"
    assert done.stderr == "err\n"
    again = warm.run("probe", [], tmp_path, {"PATH": os.environ["PATH"]}, timeout=30)
    assert (again.returncode, again.stdout) == (0, f"out {tmp_path} None []\n")


def test_an_exception_is_printed_as_the_interpreter_would(warm, tmp_path):
    done = warm.run("probe", ["raise"], tmp_path, dict(os.environ), timeout=30)
    assert done.returncode == 1
    assert "ValueError: boom" in done.stderr and "Traceback" in done.stderr


def test_a_run_past_its_timeout_is_killed_with_what_it_started(warm, tmp_path):
    with pytest.raises(subprocess.TimeoutExpired) as raised:
        warm.run("probe", ["hang"], tmp_path, dict(os.environ), timeout=2)
    assert "out" in raised.value.output
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
    assert warm.run("probe", ["0"], tmp_path, dict(os.environ), timeout=30).returncode == 0  # the server serves on


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
