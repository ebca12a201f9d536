"""A slow answer asked again before it is called slow.

The engines are sampled all at once, so one answer can be slow only because
the burst itself, a garbage collection or a busy CI machine held it up. A
single late answer paged on every such hiccup. A slow one is therefore asked
again, one call at a time after the burst, and judged by the median of the
tries: one hiccup passes, an engine slow on most tries still fails, and every
try's time is kept as evidence.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .concurrent import in_parallel
from .http import HttpSample

RETRIES = 2  # three tries in all: the median is the middle one


def slow(sample: HttpSample | None, limit_ms: float) -> bool:
    """An answer that came, later than `limit_ms` (a failed call is judged as it is, never retried)."""
    return sample is not None and sample.error is None and sample.elapsed_ms is not None \
        and sample.elapsed_ms > limit_ms


def median_try(tries: list[HttpSample]) -> HttpSample:
    """The middle try by time, a failed try counted slowest; it carries every try's time in `tries_ms`.

    >>> pick = median_try([HttpSample("u", 200, 900.0), HttpSample("u", 200, 40.0), HttpSample("u", 200, 50.0)])
    >>> pick.elapsed_ms, pick.tries_ms
    (50.0, [900.0, 40.0, 50.0])
    >>> median_try([HttpSample("u", 200, 900.0), HttpSample("u", error="x", elapsed_ms=5.0),
    ...             HttpSample("u", 200, 950.0)]).elapsed_ms
    950.0
    """
    ranked = sorted(tries, key=lambda s: (s.error is not None, s.elapsed_ms or 0.0))
    return replace(ranked[len(ranked) // 2], tries_ms=[s.elapsed_ms for s in tries])


def confirm_slow(samples: dict, limits_ms: dict, again: Callable[[object], HttpSample],
                 retries: int = RETRIES) -> dict:
    """`samples` with each slow one (over its key's limit in `limits_ms`) replaced by the median of it and
    `retries` more calls of `again(key)`, made one after another; different keys are retried at the same time."""
    late = [key for key, sample in samples.items() if key in limits_ms and slow(sample, limits_ms[key])]

    def retried(key) -> HttpSample:
        return median_try([samples[key], *(again(key) for _ in range(retries))])

    return {**samples, **dict(zip(late, in_parallel(retried, late)))}


def timing(sample: HttpSample) -> str:
    """How long the judged answer took, and the tries it was the median of.

    >>> timing(HttpSample("u", 200, 50.0)), timing(median_try([HttpSample("u", 200, t) for t in (900., 40., 50.)]))
    ('50 ms', '50 ms (the median of 3 tries: 900, 40, 50 ms)')
    """
    if not sample.tries_ms:
        return f"{sample.elapsed_ms:.0f} ms"
    shown = ", ".join("failed" if t is None else f"{t:.0f}" for t in sample.tries_ms)
    return f"{sample.elapsed_ms:.0f} ms (the median of {len(sample.tries_ms)} tries: {shown} ms)"
