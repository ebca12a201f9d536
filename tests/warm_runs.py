"""Runs `python -m <module>` for the suite's own tests, forked from a warm interpreter (tests/warm_python.py).

`run` answers like `subprocess.run(..., capture_output=True, text=True, timeout=...)`: a CompletedProcess
with its stdout and stderr, or TimeoutExpired once the run, and all it started, has been killed. NAUTILUS_TESTS_COLD=1 starts each run as a plain subprocess instead, to compare
the two or to rule the warm interpreter out.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "warm_python.py"


class WarmPython:
    def __init__(self) -> None:
        self._server: subprocess.Popen | None = None
        self._pending = b""
        self._lock = threading.Lock()

    def run(self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
            ) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", module, *args]
        if os.environ.get("NAUTILUS_TESTS_COLD"):
            return subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout)
        with self._lock, tempfile.TemporaryDirectory(prefix="warm-run-") as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            server = self._started()
            request = {"module": module, "args": list(args), "cwd": str(cwd), "env": env, "out": str(out),
                       "err": str(err)}
            server.stdin.write((json.dumps(request) + "\n").encode())
            server.stdin.flush()
            pid = int(self._answer("pid", None))
            try:
                code = int(self._answer("exit", time.monotonic() + timeout))
            except subprocess.TimeoutExpired:
                os.killpg(pid, signal.SIGKILL)
                self._answer("exit", None)
                raise subprocess.TimeoutExpired(argv, timeout, output=_text(out), stderr=_text(err))
            return subprocess.CompletedProcess(argv, code, _text(out), _text(err))

    def close(self) -> None:
        if self._server is not None:
            self._server.stdin.close()
            self._server.wait(timeout=30)
            self._server = None

    def _started(self) -> subprocess.Popen:
        if self._server is None or self._server.poll() is not None:
            self._log = tempfile.TemporaryFile()
            self._server = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=self._log, cwd=SERVER.parent)
            self._pending = b""
        return self._server

    def _answer(self, word: str, deadline: float | None) -> str:
        """The value of the server's next line, which must start with `word`; TimeoutExpired past `deadline`."""
        fd = self._server.stdout.fileno()
        while b"\n" not in self._pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(word, 0)
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self._log.seek(0)
                    raise RuntimeError(f"the warm interpreter ({SERVER.name}) ended, exit {self._server.wait()}: "
                                       f"{self._log.read().decode(errors='replace')[-2000:]}")
                self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        said, _, value = line.decode().partition(" ")
        if said != word:
            raise RuntimeError(f"the warm interpreter answered {line!r}, expected {word}")
        return value


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


WARM = WarmPython()
