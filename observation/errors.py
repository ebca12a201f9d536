"""One way to say "cannot observe: reason", and one-line descriptions of library exceptions."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


class Unobservable(Exception):
    """The target cannot be looked at; the message is one line saying why.

    `fix` says what fits when it is not a remediation helper (a wrong password is fixed in the
    secret, not by restarting anything).
    """

    def __init__(self, reason: str, fix: str | None = None):
        super().__init__(reason)
        self.fix = fix


class NoAnswer(Unobservable):
    """The server itself did not answer: it refused the connection, timed out, or refused the command.

    For every other check it only means "cannot observe"; for the check whose very question is whether
    that server answers (redis-ping, postgres-ready) it is the finding. A refusal of the suite's own
    credentials is no NoAnswer: the server answered, the suite's secret is wrong.
    """


def unreachable_hint(reason: str, running: str) -> str:
    """What to look at next: a server that took the connection and then said nothing is hung, not stopped.
    `running` is what should run there, in the deployment's terms: its container, or the server itself.

    >>> unreachable_hint("timed out", "nautilus-redis"), unreachable_hint("connection refused", "nautilus-redis")
    ('it took the connection and did not answer: hung or overloaded?', 'is nautilus-redis running?')
    >>> unreachable_hint("connection refused", "the Redis server")
    'is the Redis server running?'
    """
    if "timed out" in reason or "timeout" in reason:
        return "it took the connection and did not answer: hung or overloaded?"
    return f"is {running} running?"


class ContainerMissing(Unobservable):
    """The container does not exist on its Docker host (an observation in itself, not an outage of Docker)."""


@dataclass(frozen=True)
class Unobserved:
    """A sample's value when it could not be taken: falsy, and it carries the reason.

    >>> bool(Unobserved("redis: connection refused")), Unobserved("x").reason
    (False, 'x')
    """

    reason: str
    fix: str | None = None  # what fits the reason, when it is no helper (set a secret): the Unobservable's own

    @classmethod
    def of(cls, exc: Unobservable) -> Unobserved:
        return cls(str(exc), exc.fix)

    def __bool__(self) -> bool:
        return False


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception, then what caused it, down to its deepest cause (a library wraps another's errors)."""
    while exc is not None:
        yield exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def describe(exc: BaseException) -> str:
    """One line for an exception from any client library: its deepest cause, without a traceback.

    >>> try:
    ...     try:
    ...         raise FileNotFoundError(2, "No such file or directory")
    ...     except OSError as inner:
    ...         raise RuntimeError("Error while fetching server API version") from inner
    ... except RuntimeError as outer:
    ...     describe(outer)
    'Error while fetching server API version: [Errno 2] No such file or directory'
    >>> describe(ConnectionRefusedError(111, "Connection refused"))
    '[Errno 111] Connection refused'
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    root = list(causes(exc))[-1]
    if root is not exc:
        cause = " ".join(str(root).split()) or type(root).__name__
        if cause not in text:
            text = f"{text}: {cause}"
    return text[:300]


def short_reason(exc: BaseException) -> str:
    """The operating system's reason when one is buried in the message (`connection refused`), else `describe`.

    >>> short_reason(ConnectionError("('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))"))
    'no such file or directory'
    >>> short_reason(ConnectionError("... [Errno 111] Connection refused'))"))
    'connection refused'
    >>> short_reason(TimeoutError("timed out"))
    'timed out'
    """
    text = describe(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.search(r"Error\(-?\d+, '([^']+)'\)", text)
    if found:
        return found.group(1).strip().lower()
    for known in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                  "Temporary failure in name resolution"):
        if known.lower() in text.lower():
            return known.lower()
    return text
