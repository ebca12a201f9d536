"""One timed HTTP request that never raises, never waits past its timeouts and never reads more than a cap.

>>> HttpSample("http://127.0.0.1:1/health", error="connection refused").json is None
True
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from .errors import short_reason

MAX_BODY_BYTES = 1 << 20  # an engine's answer is a few KB; anything past a MiB is cut, never held whole


@dataclass
class HttpSample:
    url: str
    status: int | None = None
    elapsed_ms: float | None = None
    body: Any = None  # the JSON document when it parses, else the text
    error: str | None = None
    truncated: bool = False

    @property
    def json(self) -> dict | None:
        return self.body if isinstance(self.body, dict) else None

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    def evidence(self) -> dict:
        body = self.body if not isinstance(self.body, str) else self.body[:2000]
        return {"url": self.url, "status": self.status, "elapsed_ms": self.elapsed_ms, "body": body,
                "error": self.error, **({"truncated": True} if self.truncated else {})}


def reason(exc: requests.RequestException, read_timeout_s: float) -> str:
    """The short reason a request failed.

    >>> reason(requests.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=8300): Max retries exceeded "
    ...     "(Caused by NewConnectionError(\\"...: Failed to establish a new connection: [Errno 111] Connection refused\\"))"), 5)
    'connection failed: connection refused'
    >>> reason(requests.ReadTimeout("read timed out"), 1.5)
    'no answer within 1500 ms'
    """
    if isinstance(exc, requests.ConnectTimeout):
        return "connection failed: timed out"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {read_timeout_s * 1000:.0f} ms"
    return f"connection failed: {short_reason(exc)}"


def request(session: requests.Session | None, url: str, *, method: str = "GET", body: Any = None,
            connect_timeout_s: float = 3, read_timeout_s: float = 5,
            max_bytes: int = MAX_BODY_BYTES) -> HttpSample:
    """Send one request and time it to the end of the body (read at most `max_bytes`)."""
    sample = HttpSample(url)
    http = session or requests
    started = time.perf_counter()
    try:
        with http.request(method, url, json=body, timeout=(connect_timeout_s, read_timeout_s), stream=True) as reply:
            sample.status = reply.status_code
            raw = reply.raw.read(max_bytes + 1, decode_content=True)
    except requests.RequestException as exc:
        sample.error = reason(exc, read_timeout_s)
    except Exception as exc:  # urllib3 read errors surface raw here (a timeout or a reset mid-body)
        timed_out = "timed out" in str(exc).lower()
        sample.error = f"no answer within {read_timeout_s * 1000:.0f} ms" if timed_out else \
            f"connection failed: {short_reason(exc)}"
    else:
        sample.truncated = len(raw) > max_bytes
        text = raw[:max_bytes].decode("utf-8", errors="replace")
        try:
            sample.body = json.loads(text) if not sample.truncated else text
        except ValueError:
            sample.body = text
    sample.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return sample
