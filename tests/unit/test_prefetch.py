"""The order in which the session's samples start: what a sample takes or waits for starts before it."""
from __future__ import annotations

import fixtures.database_samples  # noqa: F401  (registers the samples)
import fixtures.engine_samples  # noqa: F401
import fixtures.resource_samples  # noqa: F401
import fixtures.samplers  # noqa: F401
from fixtures.prefetch import _SAMPLES, _TIMING, _order


def test_samples_start_after_what_they_take_and_wait_for():
    order = _order({"engine_reach", "container_usage", "container_states", "health_samples"})
    assert order.index("container_states") < order.index("container_usage") < order.index("engine_reach")


def test_timing_samples_are_the_ones_that_time_an_answer():
    assert {"health_samples", "endpoint_samples", "redis_samples", "service_samples", "port_probes"} == _TIMING
    assert _SAMPLES["engine_reach"][1] == ("container_usage",)
