"""A connection opened once, on first use; a failure to connect is remembered as one line.

Every check that needs a backend that cannot be reached is told the same
reason at once, instead of each waiting for its own timeout.

>>> calls = []
>>> def refuse():
...     calls.append(1)
...     raise ConnectionRefusedError(111, "Connection refused")
>>> backend = Lazy("redis", refuse)
>>> backend.try_get(), backend.try_get(), len(calls)
((None, 'redis: connection refused'), (None, 'redis: connection refused'), 1)
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from .errors import NoAnswer, Unobservable, short_reason


class Lazy:
    def __init__(self, label: str, connect: Callable[[], Any], close: Callable[[Any], None] | None = None):
        self.label = label
        self._connect = connect
        self._close = close
        self._lock = threading.Lock()
        self._client: Any = None
        self._error: str | None = None
        self._fix: str | None = None
        self._kind: type[Unobservable] = Unobservable  # NoAnswer stays NoAnswer for every later caller

    def get(self) -> Any:
        """The client, or Unobservable with the reason (and the fix, when the connection said which)."""
        client, error = self.try_get()
        if error:
            raise self._kind(error, self._fix)
        return client

    def try_get(self) -> tuple[Any, str | None]:
        """(client, None) or (None, reason); connects on the first call only."""
        with self._lock:
            if self._client is None and self._error is None:
                try:
                    self._client = self._connect()
                except Unobservable as exc:
                    self._error, self._fix = f"{self.label}: {exc}", exc.fix
                    # Only NoAnswer is kept: another subclass's constructor (DaemonDown's) reads its arguments otherwise.
                    self._kind = NoAnswer if isinstance(exc, NoAnswer) else Unobservable
                except Exception as exc:  # any client library failure becomes one line
                    self._error = f"{self.label}: {short_reason(exc)}"
            return self._client, self._error

    def close(self) -> None:
        if self._client is not None and self._close:
            try:
                self._close(self._client)
            except Exception:
                pass
