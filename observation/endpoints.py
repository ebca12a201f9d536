"""Every engine's /metrics and the optional endpoints the inventory names, called once, all at once.

The calls are the guide's own probes: `calculate` and `risk_check` are real
requests (on the platform and in the lab they write a row for the probe
portfolio), sent with the method and body the inventory gives.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests

from .concurrent import in_parallel
from .http import HttpSample, request
from .inventory import Endpoint, Engine, Inventory
from .own_probes import ProbeCalls
from .slow_answers import confirm_slow
from .targets import engine_url

PROBE_PORTFOLIO = "health-probe"  # the portfolio named in probe calls, so their rows are recognisable
# The endpoints a check judges, with the threshold (a Thresholds field) that bounds their answer time.
TIMED_ENDPOINTS = {"calculate": "analytics_calculation_ms", "risk_check": "risk_check_ms"}
SAMPLED_ENDPOINTS = (*TIMED_ENDPOINTS, "websocket_stats")


@dataclass
class EndpointSamples:
    """Keyed by engine name; an engine absent from `metrics` serves none (format none)."""

    metrics: dict[str, HttpSample] = field(default_factory=dict)
    calls: dict[str, dict[str, HttpSample]] = field(default_factory=dict)  # engine -> endpoint name -> sample

    def call(self, engine: str, endpoint: str) -> HttpSample | None:
        return self.calls.get(engine, {}).get(endpoint)


def endpoint_path(endpoint: Endpoint) -> str:
    """
    >>> endpoint_path(Endpoint(path="/risk/check/{portfolio}", method="POST"))
    '/risk/check/health-probe'
    """
    return endpoint.path.replace("{portfolio}", PROBE_PORTFOLIO)


def read_timeout_s(inventory: Inventory, engine: Engine, endpoint: str | None) -> float:
    """The engine's critical response time, or twice the endpoint's own limit when that is longer:
    long enough to measure how slow a slow answer is, short enough that a hung engine costs one wait."""
    limits = engine.limits(inventory.thresholds)
    limit_ms = getattr(limits, TIMED_ENDPOINTS[endpoint]) if endpoint in TIMED_ENDPOINTS else 0
    return max(limits.response_critical_ms, 2 * limit_ms) / 1000


def sample_endpoints(inventory: Inventory, engines: list[Engine], session: requests.Session | None = None,
                     probe_calls: ProbeCalls | None = None) -> EndpointSamples:
    """GET every engine's metrics and call each sampled endpoint it has, all in parallel; each endpoint call's
    start and end are noted in `probe_calls` (the log checks discount the lines logged meanwhile)."""
    jobs: list[tuple[Engine, str | None]] = []
    for engine in engines:
        if engine.metrics.format != "none":
            jobs.append((engine, None))
        # The endpoints a check judges: the timed ones, the WebSocket figures, and any whose answer has rules.
        jobs += [(engine, name) for name, endpoint in engine.endpoints.items()
                 if name in SAMPLED_ENDPOINTS or endpoint.rules]

    def one(job: tuple[Engine, str | None]) -> HttpSample:
        engine, name = job
        if name is None:
            path, method, body = engine.metrics.path, "GET", None
        else:
            endpoint = engine.endpoints[name]
            path, method, body = endpoint_path(endpoint), endpoint.method, endpoint.body
        started = time.time()
        try:
            return request(session, engine_url(inventory, engine, path), method=method, body=body,
                           connect_timeout_s=inventory.timeouts.connect_s,
                           read_timeout_s=read_timeout_s(inventory, engine, name))
        finally:
            if name is not None and probe_calls is not None:
                probe_calls.note(engine.name, started, time.time())

    first = dict(enumerate(in_parallel(one, jobs)))
    # A timed answer later than its limit is asked again before it counts as slow (slow_answers).
    limits_ms = {i: getattr(engine.limits(inventory.thresholds), TIMED_ENDPOINTS[name])
                 for i, (engine, name) in enumerate(jobs) if name in TIMED_ENDPOINTS}
    found = EndpointSamples()
    for i, sample in confirm_slow(first, limits_ms, lambda i: one(jobs[i])).items():
        engine, name = jobs[i]
        if name is None:
            found.metrics[engine.name] = sample
        else:
            found.calls.setdefault(engine.name, {})[name] = sample
    return found
