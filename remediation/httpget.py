"""One timed HTTP GET (an engine's /health), which never raises and never waits past its timeout."""
from __future__ import annotations

import time
from typing import Any

import requests

from .errors import short_reason

TIMEOUT_S = 5


def reason(exc: requests.RequestException, timeout_s: float = TIMEOUT_S) -> str:
    """The short reason a request failed.

    >>> reason(requests.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=8300): Max retries exceeded "
    ...     "(Caused by NewConnectionError(\\"...: Failed to establish a new connection: [Errno 111] Connection refused\\"))"))
    'connection refused'
    """
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_s:g} s"
    return short_reason(exc)


def timed_get(url: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """{url, status, elapsed_ms, body (JSON, else text), error}."""
    started = time.perf_counter()
    result: dict[str, Any] = {"url": url, "status": None, "elapsed_ms": None, "body": None, "error": None}
    try:
        reply = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        result["error"] = reason(exc, timeout_s)
    else:
        result["status"] = reply.status_code
        try:
            result["body"] = reply.json()
        except ValueError:
            result["body"] = reply.text[:4000]
    result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result
