"""The error a helper raises, and the failures a helper reports in one line."""
from __future__ import annotations

from observation.errors import ContainerMissing, Unobservable, describe, short_reason  # noqa: F401 (re-exported)


class RemediationError(Exception):
    """A helper cannot go on; the message is one line saying why and what to do."""


# What stops a helper: its own refusal, or the platform it cannot observe (Docker down, container missing).
FAILURES = (RemediationError, Unobservable)
