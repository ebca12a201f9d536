"""Containers' logs over a time window, scanned with the guide's grep patterns and its Knowledge Base.

Every container is read at once (threads), through `Docker.logs` with `since`
and a `tail` bound: the daemon sends at most the newest `max_lines` lines of
the window, so a huge log can neither exhaust memory nor take long. Only
counts and the latest few matching lines are kept, not the text. When the
window holds more lines than the bound, the scan says so (`truncated`): its
counts are then a lower bound.

>>> s = scan_text("ok\\nERROR a\\nrequest failed after 2500ms\\nslow query\\n", HOURLY)
>>> s.count("errors"), s.count("slow"), s.latest("slow"), s.truncated
(2, 2, ('request failed after 2500ms', 'slow query'), False)
"""
from __future__ import annotations

import bisect
import datetime
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .concurrent import in_parallel
from .docker_api import DockerHosts
from .errors import Unobservable, Unobserved
from .known_errors import KnownError, known_errors, log_pattern
from .targets import ContainerTarget

# The guide's greps. Full System Health Check and Log Management: grep -i "error\|exception\|failed".
ERRORS = re.compile(r"error|exception|failed", re.IGNORECASE)
# Slow Response Times: grep -i "slow\|timeout\|blocking"; Log Management: grep -E "slow|timeout|[0-9]{4,}ms".
# A duration counts from 1000 ms: not the decimals of one (Prometheus logs "wal_replay_duration=3.464223ms").
SLOW = re.compile(r"slow|timeout|blocking|(?<![0-9.])[0-9]{4,}ms", re.IGNORECASE)
# Weekly Maintenance Script: grep -i "error\|exception" over --since 168h (no "failed" there).
WEEKLY_ERRORS = re.compile(r"error|exception", re.IGNORECASE)
# Log Management's 24-hour summary: grep -i "error\|exception\|failed" and grep -i "warning\|warn".
WARNINGS = re.compile(r"warn", re.IGNORECASE)

KEEP_LATEST = 5  # matching lines kept as evidence per pattern
LINE_MAX_CHARS = 500  # a kept line is cut here: evidence, not an archive


@dataclass(frozen=True)
class Window:
    """What to read: how far back, the most lines to read per container, which patterns to count."""

    name: str
    seconds: int
    max_lines: int
    patterns: dict[str, re.Pattern]
    known: bool  # look for the Knowledge Base's errors too

    @property
    def label(self) -> str:
        return f"{self.seconds // 3600} h" if self.seconds % 3600 == 0 else f"{self.seconds} s"


# At ~150 bytes a line, 20 000 lines is ~3 MB per container; the lab's engines write ~30 lines an hour.
HOURLY = Window("hour", 3600, 20_000, {"errors": ERRORS, "slow": SLOW}, known=True)
WEEKLY = Window("week", 168 * 3600, 50_000, {"errors": WEEKLY_ERRORS}, known=False)
DAY = Window("day", 24 * 3600, 50_000, {"errors": ERRORS, "warnings": WARNINGS}, known=False)


@dataclass(frozen=True)
class KnownHit:
    error: KnownError
    line: str  # the latest line showing it


# A line the suite's own probe call caused is logged while the call is answered; the log's time stamp is when the
# line reached the log (Docker's) or when the engine wrote it, so the call's window is widened by these margins.
OWN_PROBE_BEFORE_S = 0.5
OWN_PROBE_AFTER_S = 1.5


@dataclass(frozen=True)
class LogScan:
    window: Window
    lines: int  # lines read
    counts: dict[str, int] = field(default_factory=dict)
    latest_lines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    known: tuple[KnownHit, ...] = ()
    # Per pattern, the time stamp of each matching line (None: the line carried none), to tell which lines fell
    # within the suite's own probe calls.
    stamps: dict[str, tuple[float | None, ...]] = field(default_factory=dict)

    def caused_by(self, pattern: str, calls: Iterable[tuple[float, float]]) -> int:
        """How many of the lines matching `pattern` were logged during one of `calls` (start, end unix times).

        >>> scan = scan_text("2026-01-01T00:00:10.2Z error a\\n2026-01-01T00:00:30Z error b\\n", HOURLY,
        ...                  stamp=docker_stamp)
        >>> start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
        >>> scan.count("errors"), scan.caused_by("errors", [(start + 10, start + 10.1)])
        (2, 1)
        """
        # A week of runs is thousands of calls and a window tens of thousands of lines: the widened calls are
        # merged into disjoint spans once, and each line finds its span by bisection.
        starts, ends = [], []
        for a, b in sorted((a - OWN_PROBE_BEFORE_S, b + OWN_PROBE_AFTER_S) for a, b in calls):
            if ends and a <= ends[-1]:
                ends[-1] = max(ends[-1], b)
            else:
                starts.append(a)
                ends.append(b)
        if not starts:
            return 0
        return sum(1 for stamp in self.stamps.get(pattern, ())
                   if stamp is not None and (i := bisect.bisect_right(starts, stamp) - 1) >= 0 and stamp <= ends[i])

    @property
    def truncated(self) -> bool:
        """The window held more lines than were read: counts cover only its newest `max_lines` lines."""
        return self.lines >= self.window.max_lines

    def count(self, pattern: str) -> int:
        return self.counts.get(pattern, 0)

    def latest(self, pattern: str) -> tuple[str, ...]:
        return self.latest_lines.get(pattern, ())

    def seen(self, pattern: str, own: int = 0) -> str:
        """How the count reads: `12`, or `at least 12` when the window was truncated; `own` lines (logged during
        the suite's own probe calls) are left out and said.

        >>> scan_text("error\\n" * 3, Window("t", 60, 3, {"errors": ERRORS}, False)).seen("errors")
        'at least 3 (only the newest 3 lines of the last 60 s were read)'
        >>> scan_text("error\\n" * 3, HOURLY).seen("errors", own=2)
        "1 (and 2 logged during the suite's own probe calls, not counted)"
        """
        text = str(self.count(pattern) - own)
        if own:
            text += f" (and {own} logged during the suite's own probe calls, not counted)"
        if self.truncated:
            text = f"at least {text} (only the newest {self.window.max_lines} lines of the last {self.window.label} were read)"
        return text


def docker_stamp(line: str) -> tuple[float | None, str]:
    """The time stamp Docker puts before a line (`docker logs --timestamps`: RFC 3339 in UTC) and the line itself.

    >>> docker_stamp("2026-12-07T16:17:04.808123456Z ERROR x")
    (1796660224.808123, 'ERROR x')
    >>> docker_stamp("[nautilus: log read stopped]")
    (None, '[nautilus: log read stopped]')
    """
    head, space, rest = line.partition(" ")
    if not space or len(head) < 20 or head[10] != "T" or not head.endswith("Z"):
        return None, line
    try:
        moment = datetime.datetime.strptime(head[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        fraction = float("0" + head[19:-1][:7]) if len(head) > 20 else 0.0
    except ValueError:
        return None, line
    return moment.timestamp() + fraction, rest


def scan_text(text: str, window: Window, entries: tuple[KnownError, ...] | None = None, *,
              stamp: Callable[[str], tuple[float | None, str]] | None = None) -> LogScan:
    """Count the window's patterns in `text` and find the Knowledge Base's errors; keeps only the latest lines.
    `stamp` splits a line into its time stamp and its text; an unstamped line takes the stamp of the one above
    (a traceback's lines belong to the line that started it).

    >>> [h.error.id for h in scan_text("bind: address already in use\\n", HOURLY).known]
    ['port-in-use']
    """
    entries = (entries if entries is not None else known_errors()) if window.known else ()
    prefilter = log_pattern(entries) if entries else None
    counts = {name: 0 for name in window.patterns}
    latest = {name: deque(maxlen=KEEP_LATEST) for name in window.patterns}
    stamps: dict[str, list[float | None]] = {name: [] for name in window.patterns}
    hits: dict[str, KnownHit] = {}
    lines, when = 0, None
    for line in text.splitlines():
        lines += 1
        if stamp is not None:
            stamped, line = stamp(line)
            when = stamped if stamped is not None else when
        for name, pattern in window.patterns.items():
            if pattern.search(line):
                counts[name] += 1
                latest[name].append(line[:LINE_MAX_CHARS])
                stamps[name].append(when)
        if prefilter and prefilter.search(line):
            for entry in entries:
                if entry.in_line(line):
                    hits[entry.id] = KnownHit(entry, line[:LINE_MAX_CHARS])  # the latest one wins
    order = {e.id: i for i, e in enumerate(entries)}
    return LogScan(window, lines, counts, {k: tuple(v) for k, v in latest.items()},
                   tuple(sorted(hits.values(), key=lambda h: order[h.error.id])),
                   {k: tuple(v) for k, v in stamps.items()})


def scan_container(hosts: DockerHosts, target: ContainerTarget, window: Window,
                   now: float | None = None) -> LogScan | Unobserved:
    """One container's logs over the window, scanned; Unobserved with the reason when Docker cannot give them."""
    since = int((now or time.time()) - window.seconds)
    try:
        text = hosts.get(target.host).logs(target.name, tail=window.max_lines, since=since, timestamps=True)
    except Unobservable as exc:
        return Unobserved(str(exc))
    return scan_text(text, window, stamp=docker_stamp)


def scan_containers(hosts: DockerHosts, chosen: list[ContainerTarget], window: Window) -> dict[tuple[str, str], LogScan | Unobserved]:
    """Every container's scan, all read at once; keyed by (host, container)."""
    now = time.time()  # one window for all, so the containers' counts compare
    scans = in_parallel(lambda t: scan_container(hosts, t, window, now), chosen)
    return {(t.host, t.name): scan for t, scan in zip(chosen, scans)}
