"""Every engine's /health (or any of its endpoints), sampled at once."""
from __future__ import annotations

import requests

from .concurrent import in_parallel
from .http import HttpSample, request
from .inventory import Engine, Inventory
from .slow_answers import confirm_slow
from .targets import engine_url


def health_samples(inventory: Inventory, engines: list[Engine],
                   session: requests.Session | None = None) -> dict[str, HttpSample]:
    """GET the health path of every engine, all at once; keyed by engine name.

    The read timeout is the engine's critical response time, so a hung engine
    costs one timeout for the whole run, not one per engine. An answer slower
    than the engine's slow threshold is asked again before it counts as slow
    (slow_answers).
    """
    by_name = {engine.name: engine for engine in engines}

    def one(engine: Engine) -> HttpSample:
        limits = engine.limits(inventory.thresholds)
        return request(session, engine_url(inventory, engine, engine.health_path),
                       connect_timeout_s=inventory.timeouts.connect_s,
                       read_timeout_s=limits.response_critical_ms / 1000)

    first = dict(zip(by_name, in_parallel(one, engines)))
    slow_ms = {name: engine.limits(inventory.thresholds).response_slow_ms for name, engine in by_name.items()}
    return confirm_slow(first, slow_ms, lambda name: one(by_name[name]))
