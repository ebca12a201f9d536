"""Connection churn: how many new connections Redis accepts a second, from INFO's total_connections_received.

An engine that opens a connection for every read (no pool) costs Redis a TCP handshake, a client structure and
often AUTH and CLIENT SETNAME each time; connected_clients stays low, so only the rate shows it. Two readings
on one client, `window_s` apart: the suite's own reading adds no connection to the count.

>>> ChurnSample(first=100, second=150, seconds=5.0).per_second
10.0
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import redis

from .errors import Unobservable, short_reason


@dataclass(frozen=True)
class ChurnSample:
    first: int  # total_connections_received at the start of the window
    second: int  # and at its end
    seconds: float

    @property
    def new_connections(self) -> int:
        return max(0, self.second - self.first)  # a restart of Redis in between resets the counter

    @property
    def per_second(self) -> float:
        return round(self.new_connections / self.seconds, 1) if self.seconds > 0 else 0.0


def _received(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


def sample_churn(client: redis.Redis, window_s: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> ChurnSample:
    """Two readings `window_s` apart on the same connection; Unobservable when Redis stops answering."""
    try:
        started, first = clock(), _received(client)
        sleep(window_s)
        second, ended = _received(client), clock()
    except (redis.RedisError, KeyError, ValueError) as exc:
        raise Unobservable(f"redis: INFO stats failed ({short_reason(exc)})") from None
    return ChurnSample(first, second, ended - started)
