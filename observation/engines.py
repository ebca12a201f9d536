"""Every engine's /health (or any of its endpoints), sampled at once."""
from __future__ import annotations

import requests

from .concurrent import in_parallel
from .http import HttpSample, request
from .inventory import Engine, Inventory
from .targets import engine_url


def health_samples(inventory: Inventory, engines: list[Engine],
                   session: requests.Session | None = None) -> dict[str, HttpSample]:
    """GET the health path of every engine, all at once; keyed by engine name.

    The read timeout is the engine's critical response time, so a hung engine
    costs one timeout for the whole run, not one per engine.
    """
    def one(engine: Engine) -> HttpSample:
        limits = engine.limits(inventory.thresholds)
        return request(session, engine_url(inventory, engine, engine.health_path),
                       connect_timeout_s=inventory.timeouts.connect_s,
                       read_timeout_s=limits.response_critical_ms / 1000)

    return dict(zip([e.name for e in engines], in_parallel(one, engines)))
