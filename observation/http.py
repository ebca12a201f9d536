"""One timed HTTP request that never raises, never waits past its timeouts and never reads more than a cap.

>>> HttpSample("http://127.0.0.1:1/health", error="connection refused").json is None
True
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from .errors import short_reason

MAX_BODY_BYTES = 1 << 20  # an engine's answer is a few KB; anything past a MiB is cut, never held whole
MAX_JSON_DEPTH = 64  # a health body nests a few levels; deeper is hostile, kept as text
CHUNK = 64 << 10


class TooSlow(Exception):
    """The answer kept coming, too slowly to finish within the request's time budget."""


def read_capped(raw, max_bytes: int, deadline: float) -> bytes:
    """At most `max_bytes + 1` bytes of the body, given up at `deadline` (time.monotonic()).

    The read timeout bounds each wait for the next packet; a server trickling
    one byte a second never trips it, so the whole answer also has a deadline.
    """
    chunks, size = [], 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            raise TooSlow(f"{size} bytes received")
        chunk = raw.read1(min(CHUNK, max_bytes + 1 - size), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def depth(value: Any) -> int:
    """How deep a parsed JSON document nests, counted without recursion.

    >>> depth({"a": [1, {"b": 2}]}), depth(3)
    (3, 0)
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_body(text: str) -> Any:
    """The JSON document, or the text when it is no JSON or nests deeper than MAX_JSON_DEPTH.

    >>> parse_body('{"status": "healthy"}'), parse_body("<html>"), parse_body("[" * 100000)[:3]
    ({'status': 'healthy'}, '<html>', '[[[')
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return document if depth(document) <= MAX_JSON_DEPTH else text


@dataclass
class HttpSample:
    url: str
    status: int | None = None
    elapsed_ms: float | None = None
    body: Any = None  # the JSON document when it parses, else the text
    error: str | None = None
    truncated: bool = False
    tries_ms: list[float] = field(default_factory=list)  # every try's time when a slow answer was asked again

    @property
    def json(self) -> dict | None:
        return self.body if isinstance(self.body, dict) else None

    @property
    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body)

    def evidence(self) -> dict:
        body = self.body if not isinstance(self.body, str) else self.body[:2000]
        return {"url": self.url, "status": self.status, "elapsed_ms": self.elapsed_ms, "body": body,
                "error": self.error, **({"truncated": True} if self.truncated else {}),
                **({"tries_ms": self.tries_ms} if self.tries_ms else {})}


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
    """Send one request and time it to the end of the body (read at most `max_bytes`).

    The whole exchange ends within connect + read timeout, however slowly the answer arrives.
    """
    sample = HttpSample(url)
    http = session or requests
    started = time.perf_counter()
    deadline = time.monotonic() + connect_timeout_s + read_timeout_s
    try:
        with http.request(method, url, json=body, timeout=(connect_timeout_s, read_timeout_s), stream=True) as reply:
            sample.status = reply.status_code
            raw = read_capped(reply.raw, max_bytes, deadline)
    except TooSlow as exc:
        sample.error = (f"answer not complete within {(connect_timeout_s + read_timeout_s) * 1000:.0f} ms "
                        f"(still arriving: {exc})")
    except requests.RequestException as exc:
        sample.error = reason(exc, read_timeout_s)
    except Exception as exc:  # urllib3 read errors surface raw here (a timeout or a reset mid-body)
        timed_out = "timed out" in str(exc).lower()
        sample.error = f"no answer within {read_timeout_s * 1000:.0f} ms" if timed_out else \
            f"connection failed: {short_reason(exc)}"
    else:
        sample.truncated = len(raw) > max_bytes
        text = raw[:max_bytes].decode("utf-8", errors="replace")
        sample.body = parse_body(text) if not sample.truncated else text
    sample.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return sample
