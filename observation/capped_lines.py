"""Log text read as a stream with bounded memory: each line cut at a cap, the whole kept under a budget.

A container that logs megabyte-long lines (or a flood) must not make the
suite hold it all: a line keeps its first `line_cap` bytes and a marker, and
when the kept text passes `budget` bytes the oldest lines go first (the
newest are the ones a check judges). Lines are still counted.

>>> c = CappedLines(line_cap=8, budget=64)
>>> c.feed(b"short\\nthis line is far too long\\nsec"); c.feed(b"ond\\n")
>>> c.text().splitlines()
['short', 'this lin[cut 17 bytes]', 'second']
>>> c.lines_seen, c.lines_dropped
(3, 0)
"""
from __future__ import annotations

from collections import deque


class CappedLines:
    def __init__(self, line_cap: int = 2048, budget: int = 16 << 20):
        self.line_cap, self.budget = line_cap, budget
        self._kept: deque[bytes] = deque()
        self._kept_bytes = 0
        self._partial = bytearray()
        self._partial_cut = 0  # bytes of the current line dropped past the cap
        self.lines_seen = 0
        self.lines_dropped = 0

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = self.line_cap - len(self._partial)
            self._partial += piece[:max(room, 0)]
            self._partial_cut += max(len(piece) - max(room, 0), 0)
            if end < 0:
                return
            self._close_line()
            start = end + 1

    def _close_line(self) -> None:
        line = bytes(self._partial) + (f"[cut {self._partial_cut} bytes]".encode() if self._partial_cut else b"")
        self._partial, self._partial_cut = bytearray(), 0
        self.lines_seen += 1
        self._kept.append(line)
        self._kept_bytes += len(line) + 1
        while self._kept_bytes > self.budget and len(self._kept) > 1:
            self._kept_bytes -= len(self._kept.popleft()) + 1
            self.lines_dropped += 1

    def text(self) -> str:
        """The kept lines, each ending in a newline as read; an unfinished last line without one."""
        unfinished = bool(self._partial or self._partial_cut)
        if unfinished:
            self._close_line()
        body = b"\n".join(self._kept) + (b"\n" if self._kept and not unfinished else b"")
        return body.decode("utf-8", errors="replace")
