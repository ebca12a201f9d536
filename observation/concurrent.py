"""Run one observation per target at the same time, never one after another."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_WORKERS = 128  # threads waiting on I/O: 100 silent engines cost one timeout, not four


def in_parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`[fn(x) for x in items]`, all at once on threads, in the order given.

    >>> in_parallel(lambda x: x * 2, [1, 2, 3])
    [2, 4, 6]
    """
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))
