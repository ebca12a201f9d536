"""An engine's /metrics read as the inventory names it: Prometheus text or JSON, looked up by name.

Prometheus text is parsed with prometheus_client's own parser; a JSON document
is read by dotted path. Either way a name resolves to a number (a counter or
gauge, summed over its label sets) or is reported missing.

>>> m = read_metrics("# TYPE x_requests_total counter\\nx_requests_total{code=\\"200\\"} 90\\n"
...                  "x_requests_total{code=\\"500\\"} 10\\n", "prometheus")
>>> m.value("x_requests_total"), m.value("x_requests"), m.has("nope")
(100.0, 100.0, False)
>>> read_metrics({"total_requests": 5, "rates": {"rps": 0.5}}, "json").value("rates.rps")
0.5
>>> error_rate_pct(errors=3, requests=60)
5.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .jsonpath import MISSING, lookup

# Samples that are not one value of the metric (a summary's quantiles, a histogram's buckets).
_DISTRIBUTION_LABELS = frozenset({"quantile", "le"})


class MetricsUnreadable(ValueError):
    """The body is not metrics in the expected format; the message is one line saying what it is instead."""


@dataclass
class Metrics:
    format: str  # prometheus | json
    document: Any = None  # json: the parsed document
    families: dict[str, str] = field(default_factory=dict)  # prometheus: family name -> type
    samples: dict[str, float] = field(default_factory=dict)  # prometheus: sample name -> sum over label sets
    distributions: set[str] = field(default_factory=set)  # prometheus: quantile/bucket sample names (no one value)

    def has(self, name: str) -> bool:
        """Whether the metric (a family or one of its samples) or the JSON field exists."""
        if self.format == "json":
            return lookup(self.document, name) is not MISSING
        return name in self.families or name in self.samples or name in self.distributions

    def value(self, name: str) -> float | None:
        """The number behind `name`; None when it is absent or not a single number.

        A counter may be named with or without `_total` (the parser strips it from the family name).
        """
        if self.format == "json":
            found = lookup(self.document, name)
            return float(found) if _is_number(found) else None
        for candidate in (name, f"{name}_total"):
            if candidate in self.samples:
                return self.samples[candidate]
        return None

    def names(self) -> list[str]:
        """What the body offers, for a message that says what is there instead."""
        if self.format == "json":
            return sorted(self.document) if isinstance(self.document, dict) else []
        return sorted(set(self.samples) | self.distributions)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_metrics(body: Any, fmt: str) -> Metrics:
    """The metrics in an HTTP body (`HttpSample.body`: a parsed JSON document, or text).

    >>> read_metrics("not metrics at all", "prometheus")
    Traceback (most recent call last):
    ...
    observation.metrics.MetricsUnreadable: not Prometheus text (could not convert string to float: 'metrics')
    >>> read_metrics("<html>", "json")
    Traceback (most recent call last):
    ...
    observation.metrics.MetricsUnreadable: not a JSON object: '<html>'
    """
    if fmt == "json":
        if not isinstance(body, dict):
            shown = body if isinstance(body, str) else type(body).__name__
            raise MetricsUnreadable(f"not a JSON object: {str(shown)[:80]!r}")
        if not body:
            raise MetricsUnreadable("an empty JSON object: no field at all")
        return Metrics("json", document=body)
    if fmt != "prometheus":
        raise ValueError(f"metrics format {fmt!r} cannot be read")
    if isinstance(body, (dict, list)):
        raise MetricsUnreadable("JSON, not Prometheus text (set metrics.format: json in the inventory "
                                "if the engine serves JSON)")
    return _prometheus(str(body or ""))


def _prometheus(text: str) -> Metrics:
    metrics = Metrics("prometheus")
    try:
        for family in text_string_to_metric_families(text):
            metrics.families[family.name] = family.type
            for sample in family.samples:
                if _DISTRIBUTION_LABELS & set(sample.labels):
                    metrics.distributions.add(sample.name)
                    continue
                metrics.samples[sample.name] = metrics.samples.get(sample.name, 0.0) + sample.value
    except Exception as exc:  # the parser raises ValueError, IndexError, KeyError... on bad lines
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise MetricsUnreadable(f"not Prometheus text ({reason})") from None
    if not metrics.families:
        raise MetricsUnreadable("no metric in the body (empty or only comments)")
    return metrics


def error_rate_pct(errors: float, requests: float) -> float | None:
    """Errors as a percentage of requests; None when no request was served (nothing to judge).

    >>> error_rate_pct(0, 0) is None, error_rate_pct(1, 3)
    (True, 33.33)
    """
    if requests <= 0:
        return None
    return round(100.0 * errors / requests, 2)


def average_rate(count: float, seconds: float) -> float | None:
    """A counter's average per second over `seconds` (since start when `seconds` is the uptime).

    >>> average_rate(120, 60), average_rate(5, 0) is None
    (2.0, True)
    """
    if seconds <= 0:
        return None
    return round(count / seconds, 3)
