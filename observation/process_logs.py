"""The logs of an engine that runs as a plain process: its log file, or its systemd unit's journal.

The window is cut by each line's own time stamp (ISO-like, `2026-12-07 12:30:24,942` or `2026-12-07T12:30:24Z`,
local time when it names no zone); a line without one (a traceback) belongs to the line above it. A log with
no time stamp at all is judged on its newest lines when the file changed within the window. What is read is
then scanned by observation.logs, so a process engine is judged by the same greps and Knowledge Base as a
container.

>>> stamp_of("2026-12-07 12:30:24,942 ERROR x") == stamp_of("2026-12-07T12:30:24")
True
>>> stamp_of("Traceback (most recent call last):") is None
True
"""
from __future__ import annotations

import datetime
import re
import subprocess
import time
from pathlib import Path

from .errors import Unobservable
from .inventory import Engine
from .logs import LogScan, Window, scan_text

JOURNAL_TIMEOUT_S = 10
BYTES_PER_LINE = 400  # how much of a log file's end is read per line the window may hold
STAMP = re.compile(r"^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,]\d+)?(Z|[+-]\d{2}:?\d{2})?")


def stamp_of(line: str) -> float | None:
    """The unix time a log line starts with; None when it starts with none."""
    found = STAMP.match(line)
    if not found:
        return None
    day, clock, zone = found.groups()
    try:
        moment = datetime.datetime.fromisoformat(f"{day}T{clock}")
        if zone:
            zone = "+00:00" if zone == "Z" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
            return moment.replace(tzinfo=datetime.datetime.fromisoformat(f"2000-01-01T00:00:00{zone}").tzinfo
                                  ).timestamp()
        return time.mktime(moment.timetuple())
    except ValueError:
        return None


def own_stamp(line: str) -> tuple[float | None, str]:
    """A process log line keeps its time stamp in its text (for scan_text)."""
    return stamp_of(line), line


def within(lines: list[str], since: float) -> list[str]:
    """The lines stamped at or after `since`, with the unstamped lines that follow them.

    >>> within(["2020-01-01 00:00:00 old", "2099-01-01 00:00:00 new", "  continued"], time.time())
    ['2099-01-01 00:00:00 new', '  continued']
    """
    kept, keep = [], False
    for line in lines:
        stamp = stamp_of(line)
        if stamp is not None:
            keep = stamp >= since
        if keep:
            kept.append(line)
    return kept


def read_file_window(path: str, window: Window, now: float) -> str:
    since = now - window.seconds
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - window.max_lines * BYTES_PER_LINE))
            text = handle.read().decode("utf-8", "replace")
        modified = Path(path).stat().st_mtime
    except OSError as exc:
        raise Unobservable(f"log file {path} cannot be read ({exc.strerror or type(exc).__name__})",
                           fix="point process.log_file at the engine's log, readable by the suite's user") from None
    lines = text.splitlines()[-window.max_lines:]
    if any(stamp_of(line) is not None for line in lines):
        return "\n".join(within(lines, since))
    return "\n".join(lines) if modified >= since else ""  # no time stamps: the newest lines, if written lately


def read_journal_window(unit: str, window: Window, now: float) -> str:
    argv = ["journalctl", "-u", unit, "--since", f"@{int(now - window.seconds)}", "-n", str(window.max_lines),
            "--no-pager", "-o", "cat"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=JOURNAL_TIMEOUT_S)
    except FileNotFoundError:
        raise Unobservable(f"journal of {unit}: journalctl is not on this machine",
                           fix="set process.log_file to the engine's log file") from None
    except subprocess.TimeoutExpired:
        raise Unobservable(f"journal of {unit}: journalctl did not answer in {JOURNAL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise Unobservable(f"journal of {unit}: journalctl failed ({' '.join(done.stderr.split())[:160]})")
    return done.stdout


def log_source(engine: Engine) -> str:
    """Where the engine's log is read from, in words (for findings and fixes)."""
    if engine.process.log_file:
        return f"its log file {engine.process.log_file}"
    if engine.process.systemd_unit:
        return f"journalctl -u {engine.process.systemd_unit}"
    return "no log named in the inventory"


def scan_process(engine: Engine, window: Window, now: float | None = None) -> LogScan:
    """The engine's log over the window, scanned as a container's is; Unobservable when there is none to read."""
    now = now or time.time()
    if engine.process.log_file:
        return scan_text(read_file_window(engine.process.log_file, window, now), window, stamp=own_stamp)
    if engine.process.systemd_unit:
        return scan_text(read_journal_window(engine.process.systemd_unit, window, now), window, stamp=own_stamp)
    raise Unobservable(f"the inventory names no log for {engine.name}",
                       fix=f"set engines.{engine.name}.process.log_file (or .systemd_unit, for its journal)")
