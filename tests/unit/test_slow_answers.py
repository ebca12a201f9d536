"""A slow answer is asked again and judged by the median of its tries: one hiccup passes, a slow engine fails.

A real local HTTP server answers with the delays each test queues.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from checks import test_engine_endpoints as ep
from checks import test_engine_health as health
from fixtures.verdict import Verdict
from observation.endpoints import sample_endpoints
from observation.engines import health_samples
from observation.http import HttpSample
from observation.own_probes import ProbeCalls
from observation.slow_answers import confirm_slow, median_try, slow

from test_engine_endpoint_checks import lab_like

FAILED = pytest.fail.Exception


class _Delayed(BaseHTTPRequestHandler):
    delays_s: list[float] = []  # one per call, in order; the last one repeats
    calls: list[str] = []

    def _answer(self):
        self.calls.append(self.path)
        delay = self.delays_s.pop(0) if len(self.delays_s) > 1 else self.delays_s[0]
        time.sleep(delay)
        data = json.dumps({"status": "healthy", "breaches_found": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def engine_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Delayed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Delayed.calls = []
    yield server.server_address[1]
    server.shutdown()


def risk_inventory(port):
    return lab_like(risk={"port": port, "metrics": {"format": "none"},
                          "thresholds": {"risk_check_ms": 150, "response_slow_ms": 150, "response_ok_ms": 100}})


def verdict():
    return Verdict("risk")


def test_one_slow_risk_check_among_fast_tries_passes_and_shows_every_try(engine_port, tmp_path):
    _Delayed.delays_s = [0.4, 0.0]
    inv = risk_inventory(engine_port)
    calls = ProbeCalls(tmp_path / "probes.json")
    found = sample_endpoints(inv, [inv.engines["risk"]], probe_calls=calls)
    judged = found.call("risk", "risk_check")
    assert len(_Delayed.calls) == 3 and len(judged.tries_ms) == 3 and judged.tries_ms[0] >= 400
    assert judged.elapsed_ms < 150
    ep.test_risk_check_time(inv.engines["risk"], found, inv, verdict())  # passes
    assert judged.evidence()["tries_ms"] == judged.tries_ms


def test_a_risk_check_slow_on_most_tries_fails_with_the_median(engine_port):
    _Delayed.delays_s = [0.4, 0.0, 0.3]
    inv = risk_inventory(engine_port)
    found = sample_endpoints(inv, [inv.engines["risk"]])
    with pytest.raises(FAILED) as failed:
        ep.test_risk_check_time(inv.engines["risk"], found, inv, verdict())
    assert "the median of 3 tries" in str(failed.value) and found.call("risk", "risk_check").elapsed_ms >= 300


def test_a_fast_answer_is_asked_once(engine_port):
    _Delayed.delays_s = [0.0]
    inv = risk_inventory(engine_port)
    found = sample_endpoints(inv, [inv.engines["risk"]])
    assert len(_Delayed.calls) == 1 and found.call("risk", "risk_check").tries_ms == []


def test_health_latency_asks_a_slow_health_again(engine_port):
    _Delayed.delays_s = [0.4, 0.0]
    inv = risk_inventory(engine_port)
    samples = health_samples(inv, [inv.engines["risk"]])
    assert len(_Delayed.calls) == 3
    health.test_engine_health_latency(inv.engines["risk"], samples, inv, verdict())  # passes

    _Delayed.delays_s = [0.3]
    samples = health_samples(inv, [inv.engines["risk"]])
    with pytest.raises(FAILED, match="the median of 3 tries"):
        health.test_engine_health_latency(inv.engines["risk"], samples, inv, verdict())


def test_a_failed_call_is_judged_as_it_is_and_a_failed_retry_counts_slowest():
    failed = HttpSample("u", error="no answer within 5000 ms", elapsed_ms=5000.0)
    assert not slow(failed, 100) and not slow(None, 100) and slow(HttpSample("u", 200, 101.0), 100)
    asked = []
    out = confirm_slow({"a": failed, "b": HttpSample("u", 200, 50.0)}, {"a": 100, "b": 100}, asked.append)
    assert asked == [] and out["a"] is failed
    picked = median_try([HttpSample("u", 200, 900.0), failed, HttpSample("u", 200, 40.0)])
    assert picked.elapsed_ms == 900.0 and picked.tries_ms == [900.0, 5000.0, 40.0]
