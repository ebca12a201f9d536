"""A warm interpreter for the suite's own tests: the big libraries imported once, each run forked from it.

A check run started as `python -m pytest` spends about two seconds importing pytest, the Docker SDK,
redis-py, psycopg, pydantic and requests before it collects anything, and the lab tests start several
hundred runs. This server imports those libraries once, then forks a child for each run. The child is a
new process that runs the module as `python -m` would (`pytest`, or `lab`), with the run's own arguments,
folder and environment. Of the project, only the plain packages (observation/, remediation/) are imported
before the fork: each run still reads its own inventory and loads the suite's pytest plugins (fixtures/,
reports/) and checks as pytest always does, through their entry points and with their asserts rewritten.
What is left out is only import time; bench/run.py measures the real start-up, and the lab tests that are
about start-up start their own `python -m pytest`.

Requests are JSON lines on stdin: {"module", "args", "cwd", "env", "out", "err"} (the files for its stdout
and stderr). For each, the server answers
"pid N" once the child runs, then "exit N" (the child's exit code, or minus the signal that ended it).
"""
from __future__ import annotations

import atexit
import importlib
import importlib.metadata
import json
import os
import pkgutil
import runpy
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Libraries only: a pytest plugin imported here could no longer have its asserts rewritten by pytest.
PRELOAD = ("pytest", "docker", "redis", "psycopg", "requests", "urllib3", "pydantic", "yaml", "jinja2",
           "allure_commons", "psutil", "filelock", "tenacity", "rich.console", "xml.etree.ElementTree", "asyncio",
           "concurrent.futures", "email.message", "http.client")
# The project's packages that are neither pytest plugins nor checks nor entry points (no `__main__`).
PROJECT_PRELOAD = ("observation", "remediation")


def preload() -> None:
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass  # not installed in this venv (the lab's extras differ): the child imports what it needs
    importlib.metadata.entry_points()  # pytest's plugin lookup then reads the distributions from a warm cache
    sys.path.insert(0, str(ROOT))
    try:
        for package in PROJECT_PRELOAD:
            for found in pkgutil.iter_modules([str(ROOT / package)]):
                if found.name != "__main__":
                    importlib.import_module(f"{package}.{found.name}")
    finally:
        sys.path.remove(str(ROOT))


def serve(base_path: list[str]) -> None:
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_child(request, base_path)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)


def run_child(request: dict, base_path: list[str]) -> None:
    """Become `python -m <module> <args>` run in `cwd` with `env`, its output in `out` and `err`; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: a run that overstays is killed with whatever it started
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path in ((1, request["out"]), (2, request["err"])):
            opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        quiet = os.open(os.devnull, os.O_RDONLY)
        os.dup2(quiet, 0)
        os.close(quiet)
        sys.argv = [request["module"], *request["args"]]
        sys.path[:] = [request["cwd"], *base_path]  # as `python -m` puts the current folder first
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - whatever the run raised is its output, as the interpreter would print it
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    base = sys.path[1:]  # without this script's folder, which a `python -m` run would not have
    preload()
    serve(base)
