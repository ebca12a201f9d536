"""The engine endpoint checks judged on constructed samples, and the metrics parsing and sampling beneath them.

No Docker and no lab: every check is called with the samples its fixtures would hand it,
and the sampling runs against a tiny local HTTP server.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from checks import test_engine_endpoints as ep
from fixtures.verdict import Verdict
from observation.endpoints import EndpointSamples, read_timeout_s, sample_endpoints
from observation.errors import Unobservable, Unobserved
from observation.http import HttpSample
from observation.inventory import load_inventory
from observation.metrics import MetricsUnreadable, error_rate_pct, read_metrics
from observation.reach import Reach, connect_from

from test_docker_failures import api_error

FAILED, SKIPPED = pytest.fail.Exception, pytest.skip.Exception
INV = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
ANALYTICS, RISK, WEBSOCKET = INV.engines["analytics"], INV.engines["risk"], INV.engines["websocket"]

PROM = """# HELP analytics_requests_total HTTP requests served.
# TYPE analytics_requests_total counter
analytics_requests_total{code="200"} 950
analytics_requests_total{code="500"} 50
# TYPE analytics_request_duration summary
analytics_request_duration{quantile="0.5"} 0.01
analytics_request_duration_sum 3.2
analytics_request_duration_count 1000
# TYPE analytics_errors_total counter
analytics_errors_total 50
"""
WS_PROM = "websocket_connections_active 3\nwebsocket_messages_sent_total 900\n"


def verdict():
    return Verdict("target")


def lab_like(**engines):
    """An inventory with per-engine overrides, as a file would give them."""
    import tempfile

    import yaml
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"engines": engines}, f)
        f.flush()
        return load_inventory(f.name, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})


def http(body, status=200, elapsed_ms=12.0, error=None, url="http://127.0.0.1:8100/metrics"):
    return HttpSample(url, status, elapsed_ms, body, error)


def samples(metrics=None, calls=None):
    return EndpointSamples(metrics=metrics or {}, calls=calls or {})


# -- parsing and maths --------------------------------------------------------

def test_prometheus_values_sum_label_sets_and_accept_names_with_or_without_total():
    m = read_metrics(PROM, "prometheus")
    assert m.value("analytics_requests_total") == 1000 and m.value("analytics_requests") == 1000
    assert m.has("analytics_request_duration") and m.value("analytics_request_duration") is None  # a summary
    assert m.value("analytics_request_duration_count") == 1000


@pytest.mark.parametrize("body, reason", [
    ("analytics_requests_total{code=\"200\" 5\n", "not Prometheus text"),
    ("this is not metrics\n", "not Prometheus text"),
    ("# only a comment\n", "no metric in the body"),
    ("", "no metric in the body"),
    ({"total_requests": 3}, "JSON, not Prometheus text"),
])
def test_malformed_prometheus_is_refused_in_one_line(body, reason):
    with pytest.raises(MetricsUnreadable, match=reason):
        read_metrics(body, "prometheus")


@pytest.mark.parametrize("body, reason", [("<html>oops</html>", "not a JSON object"), ({}, "empty JSON object"),
                                          (None, "not a JSON object")])
def test_malformed_json_metrics_are_refused(body, reason):
    with pytest.raises(MetricsUnreadable, match=reason):
        read_metrics(body, "json")


def test_json_metrics_are_read_by_dotted_path_and_only_numbers_count():
    m = read_metrics({"total_requests": 10, "nested": {"errors": 1}, "flag": True, "text": "7"}, "json")
    assert m.value("nested.errors") == 1 and m.value("flag") is None and m.value("text") is None
    assert m.has("text") and not m.has("missing.path")


def test_error_rate_maths():
    assert error_rate_pct(5, 100) == 5.0 and error_rate_pct(0, 10) == 0.0 and error_rate_pct(0, 0) is None


# -- engine-metrics-readable -----------------------------------------------------

def test_readable_prometheus_metrics_pass():
    ep.test_engine_metrics_readable(ANALYTICS, samples({"analytics": http(PROM)}), verdict())


def test_a_missing_metric_name_fails_readable_and_says_what_is_there():
    body = PROM.replace("analytics_errors_total", "analytics_failures_total")
    with pytest.raises(FAILED, match=r"missing \['analytics_errors_total \(errors\)'\]; the body has .*analytics_failures_total"):
        ep.test_engine_metrics_readable(ANALYTICS, samples({"analytics": http(body)}), verdict())


def test_malformed_metrics_fail_readable():
    with pytest.raises(FAILED, match="expected prometheus metrics .*; saw not Prometheus text"):
        ep.test_engine_metrics_readable(ANALYTICS, samples({"analytics": http("<html>bad gateway</html>")}), verdict())


def test_no_answer_and_404_fail_readable():
    with pytest.raises(FAILED, match="saw no answer within 5000 ms"):
        ep.test_engine_metrics_readable(ANALYTICS, samples({"analytics": http(None, None, None,
                                                                             "no answer within 5000 ms")}), verdict())
    with pytest.raises(FAILED, match="expected HTTP 200 .*; saw HTTP 404"):
        ep.test_engine_metrics_readable(ANALYTICS, samples({"analytics": http({"detail": "Not Found"}, 404)}), verdict())


def test_json_engine_with_missing_field_fails_readable():
    inv = lab_like(features={"metrics": {"format": "json", "names": {"requests": "total_requests",
                                                                       "errors": "total_errors"}}})
    engine = inv.engines["features"]
    ep.test_engine_metrics_readable(engine, samples({"features": http({"total_requests": 4, "total_errors": 0})}),
                                    verdict())
    with pytest.raises(FAILED, match=r"missing \['total_errors \(errors\)'\]"):
        ep.test_engine_metrics_readable(engine, samples({"features": http({"total_requests": 4})}), verdict())


def test_readable_applies_only_to_engines_serving_metrics():
    inv = lab_like(portfolio={"metrics": {"format": "none"}})
    assert not ep.serves_metrics(inv.engines["portfolio"]) and ep.serves_metrics(ANALYTICS)


# -- engine-error-rate ----------------------------------------------------------

def test_error_rate_at_the_limit_passes_and_above_fails_saying_since_start():
    ep.test_engine_error_rate(ANALYTICS, samples({"analytics": http(PROM)}), INV, verdict())  # 50/1000 = 5%
    body = PROM.replace("analytics_errors_total 50", "analytics_errors_total 80")
    with pytest.raises(FAILED, match=r"at most 5% of requests ending in an error \(counters since the engine started\); "
                                     r"saw 80 errors in 1000 requests = 8% since start"):
        ep.test_engine_error_rate(ANALYTICS, samples({"analytics": http(body)}), INV, verdict())


def test_error_rate_with_no_request_skips_and_unreadable_metrics_cannot_observe():
    body = "analytics_requests_total 0\nanalytics_errors_total 0\n"
    with pytest.raises(SKIPPED, match="no request served since the engine started"):
        ep.test_engine_error_rate(ANALYTICS, samples({"analytics": http(body)}), INV, verdict())
    with pytest.raises(Unobservable, match="analytics_errors_total .* missing"):
        ep.test_engine_error_rate(ANALYTICS, samples({"analytics": http("analytics_requests_total 3\n")}), INV, verdict())
    with pytest.raises(Unobservable, match="not Prometheus text .*see engine-metrics-readable"):
        ep.test_engine_error_rate(ANALYTICS, samples({"analytics": http("garbage here")}), INV, verdict())


def test_error_rate_applies_only_when_both_counters_are_named():
    assert ep.names_metrics("requests", "errors")(ANALYTICS)
    assert not ep.names_metrics("requests", "errors")(RISK)  # the guide names only risk checks for risk


# -- probe calls ------------------------------------------------------------------

def calc(status=200, elapsed_ms=40.0, error=None, body=None):
    body = body if body is not None else {"status": "success"}
    return samples(calls={"analytics": {"calculate": http(body, status, elapsed_ms, error,
                                                          "http://127.0.0.1:8100/analytics/calculate/health-probe")}})


def test_calculation_time_passes_fast_and_fails_slow_error_or_timeout():
    ep.test_analytics_calculation_time(ANALYTICS, calc(), INV, verdict())
    with pytest.raises(FAILED, match=r"POST /analytics/calculate/health-probe answered within 1000 ms; saw 1500 ms"):
        ep.test_analytics_calculation_time(ANALYTICS, calc(elapsed_ms=1500), INV, verdict())
    with pytest.raises(FAILED, match=r"a 2xx answer to POST .*; saw HTTP 500"):
        ep.test_analytics_calculation_time(ANALYTICS, calc(status=500, body={"status": "error"}), INV, verdict())
    with pytest.raises(FAILED, match="to answer within 1000 ms; saw no answer within 5000 ms"):
        ep.test_analytics_calculation_time(ANALYTICS, calc(None, None, "no answer within 5000 ms"), INV, verdict())


def test_risk_check_time_shows_breaches_and_fails_past_100_ms():
    answer = {"status": "checked", "breaches_found": 2}
    ok = samples(calls={"risk": {"risk_check": http(answer, 200, 30.0, url="http://127.0.0.1:8200/risk/check/health-probe")}})
    v = verdict()
    ep.test_risk_check_time(RISK, ok, INV, v)
    assert ("evidence:breaches_found", "2") in v.records and ("measured:risk_check_ms", "30.0") in v.records
    slow = samples(calls={"risk": {"risk_check": http(answer, 200, 180.0)}})
    with pytest.raises(FAILED, match=r"POST /risk/check/health-probe answered within 100 ms; saw 180 ms"):
        ep.test_risk_check_time(RISK, slow, INV, verdict())


# What the platform's analytics engine answered on a deployment with no data behind it: HTTP 200, nothing computed.
NO_DATA = {"portfolio_id": "health-probe", "sufficient_data": False, "primary_source": "none", "metrics": {}}
COMPUTED = {"portfolio_id": "health-probe", "sufficient_data": True, "primary_source": "postgres", "metrics": {}}
ANSWER_RULES = {"calculate": {"rules": {"sufficient_data": {"equals": True}, "primary_source": {"not_in": ["none"]}}}}


def test_a_probe_answering_200_with_nothing_computed_fails_its_rules():
    analytics = lab_like(analytics={"endpoints": ANSWER_RULES}).engines["analytics"]
    assert analytics.endpoints["calculate"].path == "/analytics/calculate/{portfolio}"  # merged over the guide's
    ep.test_engine_probe_answer(analytics, calc(body=COMPUTED), verdict())
    with pytest.raises(FAILED, match=r"saw calculate primary_source = 'none' \(must not be any of \['none'\]\); "
                                     r"calculate sufficient_data = False \(must be True\)$"):
        ep.test_engine_probe_answer(analytics, calc(body=NO_DATA), verdict())
    ep.test_analytics_calculation_time(analytics, calc(body=NO_DATA), INV, verdict())  # in time all the same


def test_a_probe_answer_missing_a_ruled_field_or_not_json_fails():
    analytics = lab_like(analytics={"endpoints": ANSWER_RULES}).engines["analytics"]
    with pytest.raises(FAILED, match=r"primary_source = no such field \(must not be any of"):
        ep.test_engine_probe_answer(analytics, calc(body={"sufficient_data": True}), verdict())
    with pytest.raises(FAILED, match=r"a 2xx JSON object answering POST /analytics/calculate/health-probe; saw HTTP 500"):
        ep.test_engine_probe_answer(analytics, calc(status=500, body={"detail": "boom"}), verdict())


def test_probe_answers_are_judged_only_where_the_inventory_gives_rules_and_such_endpoints_are_called():
    spec = ep.test_engine_probe_answer.pytestmark[-1].args[0]
    inv = lab_like(analytics={"endpoints": ANSWER_RULES},
                   ml={"endpoints": {"predict": {"path": "/ml/status", "rules": {"ready": {"equals": True}}}}})
    assert [e.name for e in inv.engine_list() if spec.applies(e)] == ["analytics", "ml"]
    assert not spec.applies(ANALYTICS)  # the guide's inventory has no rules on answers
    called = []

    def fake_request(session, url, **kwargs):
        called.append(url)
        return http({"ready": True}, url=url)
    import observation.endpoints as endpoints
    original, endpoints.request = endpoints.request, fake_request
    try:
        found = sample_endpoints(inv, [inv.engines["ml"]])
    finally:
        endpoints.request = original
    assert found.call("ml", "predict").json == {"ready": True} and "http://127.0.0.1:8400/ml/status" in called
    ep.test_engine_probe_answer(inv.engines["ml"], found, verdict())


# -- websocket ----------------------------------------------------------------------

def stats(connections, rate=1.0, status=200, error=None):
    body = {"data": {"connection_stats": {"active_connections": connections},
                     "message_stats": {"messages_sent_per_second": rate}}} if status == 200 else {"detail": "x"}
    return samples(calls={"websocket": {"websocket_stats": http(body, status, 5.0, error,
                                                                "http://127.0.0.1:8600/websocket/stats")}},
                   metrics={"websocket": http(WS_PROM)})


def test_websocket_connections_warn_from_750_and_name_critical_at_800():
    ep.test_websocket_connections(WEBSOCKET, stats(749), INV, verdict())
    with pytest.raises(FAILED, match=r"fewer than 750 active connections \(WARNING from 750, CRITICAL at 800\); "
                                     r"saw 760 active connections .*\(WARNING"):
        ep.test_websocket_connections(WEBSOCKET, stats(760), INV, verdict())
    with pytest.raises(FAILED, match=r"saw 812 active connections .*\(CRITICAL"):
        ep.test_websocket_connections(WEBSOCKET, stats(812), INV, verdict())


def test_websocket_falls_back_to_metrics_when_stats_do_not_answer():
    v = verdict()
    ep.test_websocket_connections(WEBSOCKET, stats(0, error="connection failed: connection refused", status=None), INV, v)
    assert ("measured:active_connections", "3") in v.records


def test_messages_must_flow_when_clients_are_connected():
    ep.test_websocket_messages_flowing(WEBSOCKET, stats(5, rate=4.5), verdict())
    with pytest.raises(FAILED, match="messages flowing to the 5 connected clients .*; saw 0 messages per second"):
        ep.test_websocket_messages_flowing(WEBSOCKET, stats(5, rate=0.0), verdict())
    with pytest.raises(SKIPPED, match="no active WebSocket connection"):
        ep.test_websocket_messages_flowing(WEBSOCKET, stats(0, rate=0.0), verdict())


def test_websocket_rate_from_counters_is_averaged_since_start():
    inv = lab_like(websocket={"metrics": {"format": "json", "names": {
        "connections": "active_connections", "messages": "messages_sent", "uptime": "uptime"}},
        "endpoints": {"websocket_stats": None}})
    engine = inv.engines["websocket"]
    assert "websocket_stats" not in engine.endpoints and ep.websocket_observable(engine)
    flowing = samples({"websocket": http({"active_connections": 2, "messages_sent": 600, "uptime": 300})})
    ep.test_websocket_messages_flowing(engine, flowing, verdict())
    stalled = samples({"websocket": http({"active_connections": 2, "messages_sent": 0, "uptime": 300})})
    with pytest.raises(FAILED, match="saw 0 messages per second from metrics active_connections "
                                     r"\(messages per second averaged since start\)"):
        ep.test_websocket_messages_flowing(engine, stalled, verdict())


def test_websocket_with_nothing_readable_cannot_observe():
    broken = stats(0, error="no answer within 5000 ms", status=None)
    broken.metrics["websocket"] = http(None, None, None, "no answer within 5000 ms")
    with pytest.raises(Unobservable, match="websocket/stats: no answer within 5000 ms; GET .*/metrics: no answer"):
        ep.test_websocket_connections(WEBSOCKET, broken, INV, verdict())


# -- reach ---------------------------------------------------------------------------

def test_reach_checks_pass_on_a_connect_and_fail_with_the_exec_output():
    good = {("risk", "redis"): Reach("redis:6379", True, "connected to redis:6379 (172.18.0.2)\n"),
            ("risk", "postgres"): Reach("postgres:5432", False,
                                        "cannot connect to postgres:5432: [Errno -2] Name or service not known\n")}
    v = verdict()
    ep.test_engine_reaches_redis(RISK, good, v)
    assert any("connected to redis:6379" in text for name, text in v.records if name.startswith("evidence:"))
    v = verdict()
    with pytest.raises(FAILED, match=r"a TCP connection from nautilus-risk-engine to postgres:5432; "
                                     r"saw cannot connect to postgres:5432: \[Errno -2\] Name or service not known$"):
        ep.test_engine_reaches_postgres(RISK, good, v)
    assert dict(v.records)["advice"].startswith("check that the engine shares PostgreSQL's network")
    with pytest.raises(Unobservable, match="not running"):
        ep.test_engine_reaches_redis(RISK, {("risk", "redis"): Unobserved("container x is not running (Docker host "
                                                                          "'local' refused to exec the connect probe: "
                                                                          "409 Conflict)")}, verdict())


def test_postgres_login_passes_on_a_login_and_fails_with_the_engines_own_settings_as_the_fix():
    logged_in = {("risk", "postgres-login"): Reach("postgres:5432", True, "logged in with the engine's POSTGRES_* "
                                                   "settings as nautilus to database nautilus\n")}
    v = verdict()
    ep.test_engine_postgres_login(RISK, logged_in, v)
    assert "advice" not in dict(v.records)
    refused = {("risk", "postgres-login"): Reach("postgres:5432", False, "login with the engine's POSTGRES_* settings "
                                                 "failed: FATAL: password authentication failed for user \"nautilus\"\n")}
    v = verdict()
    with pytest.raises(FAILED, match=r"a login to PostgreSQL at postgres:5432 with nautilus-risk-engine's own settings; "
                                     r"saw login with the engine's POSTGRES_\* settings failed: FATAL: password"):
        ep.test_engine_postgres_login(RISK, refused, v)
    advice = dict(v.records)["advice"]
    assert "PostgreSQL itself needs no restart" in advice and "restart postgres" not in advice


class FakeExecApi:
    def __init__(self, code, output=b"", error=None):
        self.code, self.output, self.error, self.cmd = code, output, error, None

    def exec_create(self, container, cmd, **options):
        if self.error:
            raise self.error
        self.cmd, self.options = cmd, options
        return {"Id": "e1"}

    def exec_start(self, exec_id):
        return self.output

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.code}


def test_connect_from_reads_exit_code_and_refuses_a_broken_probe():
    api = FakeExecApi(0, b"connected to redis:6379 (10.0.0.2)\n")
    assert connect_from(api, "c", "redis", 6379, 3).ok and api.cmd[-3:] == ["redis", "6379", "3"]
    assert api.options["environment"] == {"RES_OPTIONS": "timeout:3 attempts:1"}  # a name lookup is bounded too
    assert not connect_from(FakeExecApi(1, b"cannot connect to redis:6379: timed out\n"), "c", "redis", 6379, 3).ok
    with pytest.raises(Unobservable, match="exit code 127"):
        connect_from(FakeExecApi(127, b"exec: python3: not found"), "c", "redis", 6379, 3)
    with pytest.raises(Unobservable, match=r"^container c is not running \(Docker refused to exec the connect probe: "
                                           r"409 Conflict\)$"):
        connect_from(FakeExecApi(0, error=api_error(409, "Container 3f2a is not running")), "c", "redis", 6379, 3)


def test_the_connect_script_really_connects_and_reports(tmp_path):
    import socket
    import subprocess
    import sys
    from observation.reach import CONNECT_SCRIPT
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    done = subprocess.run([sys.executable, "-c", CONNECT_SCRIPT, "127.0.0.1", str(port), "2"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 0 and done.stdout.startswith(f"connected to 127.0.0.1:{port}")
    listener.close()
    done = subprocess.run([sys.executable, "-c", CONNECT_SCRIPT, "127.0.0.1", str(port), "2"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 1 and "cannot connect to 127.0.0.1:" in done.stdout


# -- sampling -------------------------------------------------------------------------

class _Engine(BaseHTTPRequestHandler):
    seen: list = []

    def _answer(self, code, body, kind="application/json"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.seen.append(("GET", self.path, None))
        if self.path == "/metrics":
            self._answer(200, PROM, "text/plain")
        else:
            self._answer(404, "{}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.seen.append(("POST", self.path, json.loads(self.rfile.read(length) or b"null")))
        self._answer(200, json.dumps({"status": "success"}))

    def log_message(self, *args):
        pass


def test_sample_endpoints_calls_metrics_and_the_named_endpoints_with_their_method_and_body():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        inv = lab_like(analytics={"port": server.server_address[1]})
        found = sample_endpoints(inv, [inv.engines["analytics"]])
    finally:
        server.shutdown()
    assert found.metrics["analytics"].status == 200
    assert found.call("analytics", "calculate").json == {"status": "success"}
    assert ("POST", "/analytics/calculate/health-probe",
            {"positions": [{"symbol": "AAPL", "quantity": 100, "price": 150}]}) in _Engine.seen


def test_probe_read_timeout_covers_twice_the_limit():
    assert read_timeout_s(INV, ANALYTICS, "calculate") == 5.0
    inv = lab_like(analytics={"thresholds": {"analytics_calculation_ms": 4000}})
    assert read_timeout_s(inv, inv.engines["analytics"], "calculate") == 8.0


class BatchExecApi(FakeExecApi):
    """Runs the exec'd command here, as the container's python3 would: the batch script for real."""

    def exec_start(self, exec_id):
        import subprocess
        import sys
        done = subprocess.run([sys.executable, *self.cmd[1:]], capture_output=True, timeout=30)
        self.code = done.returncode
        return done.stdout + done.stderr


def test_one_exec_runs_every_probe_and_judges_each_as_its_own_exec_would():
    import socket

    from observation.reach import Probe, probes_from
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()
    api = BatchExecApi(0)
    found = probes_from(api, "c", [Probe(("127.0.0.1", port), False), Probe(("127.0.0.1", dead), False),
                                   Probe(("127.0.0.1", dead), True)], 2)
    listener.close()
    assert api.cmd[:2] == ["python3", "-c"]  # one exec for all three
    assert found[0].ok and found[0].line().startswith(f"connected to 127.0.0.1:{port}")
    assert not found[1].ok and found[1].line().startswith(f"cannot connect to 127.0.0.1:{dead}")
    # This machine's python may have no psycopg2: then the login is 'cannot observe' (exit 3), as in such an image.
    if isinstance(found[2], Unobserved):
        assert "exit code 3" in found[2].reason and "no psycopg2" in found[2].reason
    else:
        assert not found[2].ok and "login with the engine's POSTGRES_* settings failed" in found[2].line()


def test_a_batch_that_cannot_run_makes_every_probe_cannot_observe():
    from observation.reach import Probe, probes_from
    probes = [Probe(("redis", 6379), False), Probe(("postgres", 5432), True)]
    found = probes_from(FakeExecApi(127, b"exec: python3: not found"), "c", probes, 3)
    assert [type(f) for f in found] == [Unobserved, Unobserved] and "exit code 127" in found[0].reason
    found = probes_from(FakeExecApi(0, error=api_error(409, "Container 3f2a is not running")), "c", probes, 3)
    assert found[1].reason == ("container c is not running (Docker refused to exec the connect and login probes: "
                               "409 Conflict)")
