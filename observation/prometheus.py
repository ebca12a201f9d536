"""Prometheus's HTTP API: scrape targets and range queries, each call with the inventory's timeouts; free of pytest.

Every answer is a value: a list/dict on success, an `Unobserved` saying why
otherwise (Prometheus down, a bad query, a timeout), so a check says
"cannot observe" in one line instead of raising.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from .errors import Unobserved
from .http import request

WEEK_S = 7 * 86400
HOUR_S = 3600
MAX_ANSWER_BYTES = 4 << 20  # 168 points x a few dozen series stays far below this


@dataclass(frozen=True)
class Prometheus:
    url: str
    connect_s: float
    read_s: float
    session: object = None

    def get(self, path: str, params: dict | None = None) -> dict | Unobserved:
        """The `data` of a successful API answer."""
        url = self.url.rstrip("/") + path + ("?" + urlencode(params) if params else "")
        sample = request(self.session, url, connect_timeout_s=self.connect_s, read_timeout_s=self.read_s,
                         max_bytes=MAX_ANSWER_BYTES)
        if sample.error:
            return Unobserved(f"Prometheus at {self.url}: {sample.error}")
        body = sample.json
        if body is None:
            return Unobserved(f"Prometheus at {self.url}: HTTP {sample.status}, not a JSON API answer"
                              + (" (answer over 4 MiB)" if sample.truncated else ""))
        if body.get("status") != "success":
            return Unobserved(f"Prometheus at {self.url} refused {path}: {body.get('errorType')}: "
                              f"{str(body.get('error'))[:200]}")
        return body.get("data")

    def targets(self) -> list[dict] | Unobserved:
        data = self.get("/api/v1/targets", {"state": "active"})
        return data if isinstance(data, Unobserved) else data.get("activeTargets") or []

    def query_range(self, query: str, seconds: float = WEEK_S, step_s: float = HOUR_S,
                    end: float | None = None) -> list[dict] | Unobserved:
        """A matrix over the last `seconds`, one point per `step_s` (a week by the hour: 169 points a series)."""
        end = time.time() if end is None else end
        data = self.get("/api/v1/query_range", {"query": query, "start": f"{end - seconds:.3f}",
                                                "end": f"{end:.3f}", "step": f"{step_s:g}"})
        return data if isinstance(data, Unobserved) else data.get("result") or []


# How Prometheus says a target answered in a format other than its own: its text parser meets a JSON body's `{`
# (Prometheus 2: `"INVALID" is not a valid start token`), or it refuses the content type (Prometheus 3:
# `received unsupported Content-Type "application/json"`). The target answers; it is no engine to start.
FORMAT_MISMATCH = re.compile(r'"INVALID" is not a valid start token|unsupported Content-Type', re.IGNORECASE)
FORMAT_MISMATCH_FIX = ("metrics format mismatch: Prometheus expects its text format, the engine serves JSON; "
                       "set metrics.format or the scrape config")


@dataclass(frozen=True)
class DownTarget:
    job: str
    instance: str
    health: str
    last_error: str

    @property
    def format_mismatch(self) -> bool:
        """Scraped, answered, and unreadable to Prometheus: a JSON body where its text format was expected.

        >>> DownTarget("e", "a:1", "down", '"INVALID" is not a valid start token').format_mismatch
        True
        >>> DownTarget("e", "a:1", "down", "connection refused").format_mismatch
        False
        """
        return bool(FORMAT_MISMATCH.search(self.last_error))

    def line(self) -> str:
        what = "metrics format mismatch: " if self.format_mismatch else ""
        return f"{self.job}/{self.instance}: {self.health}" + (f" ({what}{self.last_error})" if self.last_error else "")


def down_targets(targets: list[dict]) -> list[DownTarget]:
    """Active targets whose last scrape did not succeed.

    >>> down_targets([{"labels": {"job": "e", "instance": "a:1"}, "health": "up"},
    ...               {"labels": {"job": "e", "instance": "b:2"}, "health": "down", "lastError": "refused"}])
    [DownTarget(job='e', instance='b:2', health='down', last_error='refused')]
    """
    return [DownTarget((t.get("labels") or {}).get("job", "?"), (t.get("labels") or {}).get("instance", "?"),
                       t.get("health", "unknown"), t.get("lastError") or "")
            for t in targets if t.get("health") != "up"]


def series_values(series: dict) -> list[tuple[float, float]]:
    """(timestamp, value) of one matrix series, NaN and infinities dropped (an idle hour has 0/0).

    >>> series_values({"values": [[1, "0.5"], [2, "NaN"], [3, "+Inf"]]})
    [(1.0, 0.5)]
    """
    points = []
    for stamp, raw in series.get("values") or []:
        value = float(raw)
        if value == value and value not in (float("inf"), float("-inf")):
            points.append((float(stamp), value))
    return points


def instance_port(instance: str) -> int | None:
    """The port of a target's `instance` label (`analytics-engine:8100` -> 8100), which ties it to the inventory.

    >>> instance_port("analytics-engine:8100"), instance_port("[::1]:9090"), instance_port("nohost")
    (8100, 9090, None)
    """
    head, sep, port = instance.rpartition(":")
    return int(port) if sep and head and re.fullmatch(r"[0-9]{1,5}", port) else None


def exports_duration(engine) -> bool:
    """An engine whose inventory names a Prometheus request-duration metric (a summary or histogram)."""
    return engine.metrics.format == "prometheus" and bool(engine.metrics.names.get("duration"))


def mean_duration_query(metric: str, step_s: float) -> str:
    """Mean request duration per step from a summary's or histogram's _sum and _count (seconds).

    >>> mean_duration_query("analytics_request_duration_seconds", 3600)
    'sum(rate(analytics_request_duration_seconds_sum[3600s])) / sum(rate(analytics_request_duration_seconds_count[3600s]))'
    """
    window = f"[{step_s:g}s]"
    return f"sum(rate({metric}_sum{window})) / sum(rate({metric}_count{window}))"


@dataclass(frozen=True)
class Trend:
    """A week of one figure at one point per step; `worst` is the highest step."""

    points: list[tuple[float, float]]

    @property
    def worst(self) -> tuple[float, float] | None:
        return max(self.points, key=lambda p: p[1]) if self.points else None

    @property
    def mean(self) -> float | None:
        return sum(v for _, v in self.points) / len(self.points) if self.points else None

    def hourly(self, scale: float = 1.0, digits: int = 1) -> dict[str, float]:
        """Evidence: the points as {"YYYY-mm-dd HH:MM": value} (UTC)."""
        return {time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)): round(v * scale, digits) for t, v in self.points}
