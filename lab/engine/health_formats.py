"""What /health and /metrics answer in each contract (ENGINE_FLAVOUR guide or real), and the answers the
hostile-body and trickle faults put in their place. `engine` is the running Engine (app.py): its counters and
its faults are read, never changed."""
from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from engine_config import FLAVOUR, HOSTILE_TEXT, LIMITS, NAME


def health(engine) -> web.Response:
    faults = engine.faults
    unhealthy = "unhealthy" in faults
    status = ("unhealthy" if FLAVOUR == "guide" else "stopped") if unhealthy else "healthy"
    # bus-lie and idle-bus: the flag the suite must not trust on its own (DESIGN.md section 8)
    bus = engine.bus.connected() or "bus-lie" in faults or "idle-bus" in faults
    if NAME == "portfolio" and FLAVOUR == "real":
        body = {"status": status, "engine": NAME, "timestamp": time.time(),
                "metrics": {"uptime_seconds": engine.uptime(), "requests_processed": engine.requests},
                "integrations": {"messagebus_connected": bus, "database_connected": engine.database.conn is not None}}
    else:
        body = {"status": status, "engine": NAME, "uptime_seconds": engine.uptime(),
                "messagebus_connected": bus, "timestamp": time.time()}
    body.update(health_extras(engine))
    hostile = faults.get("hostile")
    if hostile:
        secret = hostile["secret"]
        body.update({"note": HOSTILE_TEXT, "api_key": secret,
                     "dsn": f"postgresql://nautilus:{secret}@postgres:5432/nautilus"})
    return web.json_response(body, status=503 if unhealthy and FLAVOUR == "guide" else 200)


def health_extras(engine) -> dict:
    # degraded: up and "healthy", but doing nothing useful (monitoring off, no limits, no definitions).
    degraded = "degraded" in engine.faults
    if NAME == "risk" and FLAVOUR == "guide":
        return {"monitoring_active": not degraded, "monitored_portfolios": len(engine.portfolios),
                "breach_alerts_sent": engine.breaches}
    if NAME == "risk":
        hour_ago = time.monotonic() - 3600
        return {"risk_checks_processed": engine.risk_checks, "breaches_detected": engine.breaches,
                "active_limits": 0 if degraded else len(LIMITS),
                "active_breaches": sum(t > hour_ago for t in engine.recent_breaches)}
    if NAME == "factor":
        return {"factors_calculated": engine.factors_calculated, "factor_definitions_loaded": 0 if degraded else 485}
    if NAME == "websocket" and FLAVOUR == "real":
        return {"active_connections": len(engine.sockets), "messages_sent": engine.messages_sent}
    return {}


def metrics(engine) -> web.Response:
    if FLAVOUR == "guide":
        return web.Response(text=prometheus_text(engine),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
    if NAME == "portfolio":
        raise web.HTTPNotFound(text=json.dumps({"detail": "Not Found"}), content_type="application/json")
    uptime = max(time.time() - engine.started, 0.001)
    body = {"total_requests": engine.requests, "requests_per_second": round(engine.requests / uptime, 3),
            "total_errors": engine.errors, "uptime": round(uptime, 1),
            "average_response_time_ms": round(1000 * engine.duration_sum / max(engine.timed, 1), 3)}
    if NAME == "risk":
        body.update(total_risk_checks=engine.risk_checks, total_breaches=engine.breaches)
    if NAME == "websocket":
        body.update(active_connections=len(engine.sockets), messages_sent=engine.messages_sent)
    return web.json_response(body)


def prometheus_text(engine) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{suffix} {value if isinstance(value, int) else repr(float(value))}"
                     for suffix, value in samples)

    ordered = sorted(engine.durations)
    quantiles = [(f'{{quantile="{q}"}}', ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0)
                 for q in (0.5, 0.9, 0.99)]
    family(f"{NAME}_requests_total", "counter", "HTTP requests served.", [("", engine.requests)])
    family(f"{NAME}_request_duration_seconds", "summary", "HTTP request duration in seconds.",
           quantiles + [("_sum", engine.duration_sum), ("_count", engine.timed)])
    family(f"{NAME}_errors_total", "counter", "HTTP requests that ended in a server error.", [("", engine.errors)])
    if NAME == "risk":
        family("risk_checks_total", "counter", "Risk checks run.", [("", engine.risk_checks)])
        family("risk_check_duration_seconds", "summary", "Risk check duration in seconds.",
               [("_sum", engine.risk_check_seconds), ("_count", engine.risk_checks)])
    if NAME == "websocket":
        family("websocket_connections_active", "gauge", "Open WebSocket connections.", [("", len(engine.sockets))])
        family("websocket_messages_sent_total", "counter", "WebSocket messages sent.", [("", engine.messages_sent)])
    family(f"{NAME}_uptime_seconds", "gauge", "Seconds since the engine started.", [("", engine.uptime())])
    return "\n".join(lines) + "\n"


async def hostile_answer(request: web.Request, mode: str) -> web.StreamResponse:
    """Answers a client must survive: never crash, never hold it all, never render it."""
    if mode == "not-json":
        return web.Response(text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")
    if mode == "nested":
        return web.Response(text="[" * 200_000 + "]" * 200_000, content_type="application/json")
    if mode == "wrong-types":
        return web.json_response({"status": ["healthy"], "engine": 7, "uptime_seconds": "forever",
                                  "messagebus_connected": "yes", "timestamp": None})
    if mode == "bad-utf8":
        return web.Response(body=b'{"status": "healthy\xff\xfe\xc3", "engine": "\xed\xa0\x80"}',
                            content_type="application/json")
    if mode == "bad-metrics":
        return web.Response(text='# TYPE x gauge\nx{a="unterminated 1\n}}} 12 13 14\n\x00\x01 nan nan\n',
                            content_type="text/plain")
    # huge: 50 MB of one JSON string, streamed so the engine itself stays small
    reply = web.StreamResponse(headers={"Content-Type": "application/json"})
    await reply.prepare(request)
    await reply.write(b'{"status": "healthy", "padding": "')
    block = b"x" * (1 << 20)
    for _ in range(50):
        await reply.write(block)
    await reply.write(b'"}')
    await reply.write_eof()
    return reply


async def trickle(engine, request: web.Request) -> web.StreamResponse:
    """A healthy body, one byte a second: every read gets a byte, the answer never ends in time."""
    body = json.dumps({"status": "healthy", "engine": NAME, "uptime_seconds": engine.uptime(),
                       "messagebus_connected": True, "timestamp": time.time()}).encode()
    reply = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
    await reply.prepare(request)
    for i in range(len(body)):
        if "trickle" not in engine.faults:
            await reply.write(body[i:])
            break
        await reply.write(body[i:i + 1])
        await asyncio.sleep(1)
    await reply.write_eof()
    return reply
