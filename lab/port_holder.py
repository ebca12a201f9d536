"""`python -m lab.port_holder PORT [--answer STATUS]`: hold a TCP port on 127.0.0.1 (the port-taken fault), or answer
HTTP on it as an engine would, with /health saying STATUS (the port-impostor fault: another program on the port).

`hold_port` starts the holder and `release_port_holders` stops it: the port-taken and port-impostor faults, their
heal, and `python -m lab down`."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import LAB_DIR, STATE_DIR, LabError

HOLDER_MARK = "lab.port_holder"  # the module the holder runs as: the mark on its command line


def impostor(status: str):
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": status, "service": "not-a-nautilus-engine"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Answer


def hold_port(port: int, answer: str | None = None) -> int:
    """Start a lab-owned process listening on 127.0.0.1:port (answering HTTP with /health status `answer` when
    given); returns its pid."""
    extra = ["--answer", answer] if answer else []
    proc = subprocess.Popen([sys.executable, "-m", HOLDER_MARK, str(port), *extra], start_new_session=True,
                            cwd=LAB_DIR.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / f"port-holder-{port}.pid").write_text(str(proc.pid))
    time.sleep(0.3)
    if proc.poll() is not None:
        raise LabError(f"could not hold port {port}: something else already listens there")
    return proc.pid


def release_port_holders(port: int | None = None) -> None:
    # Only processes we started and marked are ever signalled.
    for pid_file in STATE_DIR.glob(f"port-holder-{port or '*'}.pid"):
        pid = int(pid_file.read_text().strip() or 0)
        if pid and HOLDER_MARK in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)
        pid_file.unlink()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


if __name__ == "__main__":
    port = int(sys.argv[1])
    if "--answer" in sys.argv:
        ThreadingHTTPServer(("127.0.0.1", port), impostor(sys.argv[sys.argv.index("--answer") + 1])).serve_forever()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    while True:
        time.sleep(3600)
