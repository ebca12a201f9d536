#!/usr/bin/env python3
"""One Nautilus engine of the lab, configured by environment (see lab/README.md).

It serves either HTTP contract (ENGINE_FLAVOUR=guide or real), keeps a live
Redis connection with a heartbeat, writes rows to PostgreSQL, logs like a
service, and takes faults through /_lab/faults. Only Debian bookworm's
python3-aiohttp (3.8), python3-redis (4.3) and python3-psycopg2 (2.9) are used.

The entry point (`python3 app.py`); its parts sit beside it, imported by name (this
script's folder is first on sys.path): engine_config (environment and constants),
backends (Redis bus, PostgreSQL), health_formats (/health and /metrics of both
contracts), fault_table (what each fault kind does and undoes), crash_marker and
http_input.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import random
import subprocess
import sys
import time
import warnings

from aiohttp import WSCloseCode, WSMsgType, web

import fault_table
import health_formats
from backends import Database, MessageBus
from crash_marker import crash_if_marked
from engine_config import (FAULT_KINDS, FLAVOUR, HARMLESS_WARNINGS, HOST, LIMITS, NAME, PORT, SERVICE,
                           START_DELAY_S, log, setup_logging)
from fault_table import FAULTS, fault_state
from http_input import bad_request, finite, parse_positions, read_json

# The engine's own modules beside this script. Python shows a DeprecationWarning only when it is raised from
# code in __main__; all of the engine was __main__ once, so its parts' warnings (the venv's newer redis-py on
# close()) go to stderr as they did.
PARTS = ("backends", "crash_marker", "engine_config", "fault_table", "health_formats", "http_input")


def portfolio_figures(positions: list[tuple[str, float, float]]) -> dict:
    """Value, weights and a 60-day volatility from returns seeded by each symbol, so answers are stable."""
    notionals = {symbol: qty * price for symbol, qty, price in positions}
    value = sum(notionals.values())
    gross = sum(abs(n) for n in notionals.values()) or 1.0
    days = 60
    daily = [0.0] * days
    for symbol, notional in notionals.items():
        rng = random.Random(symbol)
        for day in range(days):
            daily[day] += notional / gross * rng.gauss(0.0004, 0.015)
    mean = sum(daily) / days
    vol = math.sqrt(sum((r - mean) ** 2 for r in daily) / (days - 1))
    return {"portfolio_value": round(float(value), 2), "positions": len(positions),
            "weights": {s: round(n / gross, 4) for s, n in notionals.items()},
            "annualised_volatility": round(vol * math.sqrt(252), 6),
            "value_at_risk_95_1d": round(1.645 * vol * abs(value), 2)}


class Engine:
    def __init__(self) -> None:
        self.started = time.time()
        self.faults: dict[str, dict] = {}
        self.hang_release: asyncio.Event | None = None
        self.tasks: list[asyncio.Task] = []
        self.bus = MessageBus(self.faults, self.websocket_stats)
        self.database = Database()
        # what /metrics and /health report
        self.requests = self.errors = 0
        self.timed, self.duration_sum = 0, 0.0  # WebSocket sessions are counted but not timed
        self.durations: collections.deque[float] = collections.deque(maxlen=1000)
        self.calculations = self.risk_checks = self.breaches = 0
        self.risk_check_seconds = 0.0
        self.recent_breaches: collections.deque[float] = collections.deque(maxlen=1000)
        self.portfolios: set[str] = set()
        self.factors_calculated = 0
        self.sockets: set[web.WebSocketResponse] = set()
        self.messages_sent = 0
        self.message_samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=11)
        # faults with something running (fault_table starts and stops them)
        self.leaked: list[bytearray] = []
        self.leak_task: asyncio.Task | None = None
        self.cpu_child: subprocess.Popen | None = None
        self.churn_task: asyncio.Task | None = None

    def uptime(self) -> float:
        return round(time.time() - self.started, 1)

    # -- what a live service does between requests ------------------------------

    async def housekeeping_loop(self) -> None:
        seconds = random.randrange(60)  # engines started together do not all warn in the same second
        while True:
            await asyncio.sleep(1)
            seconds += 1
            self.message_samples.append((time.monotonic(), self.messages_sent))
            if NAME == "factor" and seconds % 10 == 0:
                self.factors_calculated += 25
            if seconds % 60 == 0:
                template = HARMLESS_WARNINGS[(seconds // 60) % len(HARMLESS_WARNINGS)]
                log.warning(template.format(ms=random.randint(1100, 1900)))
            if seconds % 300 == 0:
                log.info("Status: %d requests served, uptime %.0f s", self.requests, self.uptime())

    def messages_per_second(self) -> float:
        if len(self.message_samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self.message_samples[0], self.message_samples[-1]
        return round((n1 - n0) / (t1 - t0), 2) if t1 > t0 else 0.0

    # -- HTTP -------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if request.path.startswith("/_lab/"):
            return await handler(request)  # control: never delayed, hung or counted
        if self.hang_release is not None:
            await self.hang_release.wait()
        started, status, session = time.perf_counter(), 500, False
        try:
            hostile = self.faults.get("hostile-body", {}).get("mode")
            if hostile and request.path == ("/metrics" if hostile == "bad-metrics" else "/health"):
                response = await health_formats.hostile_answer(request, hostile)
                status = response.status
                return response
            if "trickle" in self.faults and request.path == "/health":
                response = await health_formats.trickle(self, request)
                status = response.status
                return response
            if "slow" in self.faults:  # inside the timed part, so the engine's own duration metric sees it
                await asyncio.sleep(self.faults["slow"]["ms"] / 1000)
            response = await handler(request)
            status, session = response.status, isinstance(response, web.WebSocketResponse)
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away
            raise
        except Exception:
            log.exception("Unhandled exception while serving %s %s", request.method, request.path)
            raise web.HTTPInternalServerError(text=json.dumps({"status": "error"}), content_type="application/json")
        finally:
            self.requests += 1
            self.errors += status >= 500
            if not session:  # a WebSocket lasts minutes: it would swamp the latency figures
                elapsed = time.perf_counter() - started
                self.timed += 1
                self.duration_sum += elapsed
                self.durations.append(elapsed)

    async def health(self, request: web.Request) -> web.Response:
        return health_formats.health(self)

    async def metrics(self, request: web.Request) -> web.Response:
        return health_formats.metrics(self)

    async def calculate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        portfolio = request.match_info["portfolio"]
        positions = parse_positions(await read_json(request))
        if not positions:  # nothing sent: the engine's own model book
            positions = [("AAPL", 100, 189.5), ("MSFT", 40, 411.2), ("TLT", 80, 92.3)]
        figures = portfolio_figures(positions)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.calculations += 1
        self.database.record("INSERT INTO analytics_calculations (portfolio, duration_ms) VALUES (%s, %s)",
                             portfolio, elapsed_ms)
        if "noisy-calculate" in self.faults:  # as the platform's analytics engine logs a calculation without data
            count = self.faults["noisy-calculate"]["count"]
            for i in range(count):
                log.error("Calculation error %d/%d: insufficient market data for portfolio %s "
                          "(synthetic lab fault noisy-calculate)", i + 1, count, portfolio)
        # The platform's analytics engine says whether it had data to compute from, and where it came from.
        no_data = "no-data" in self.faults
        return web.json_response({"status": "success", "portfolio": portfolio, "results": figures,
                                  "calculation_time_ms": round(elapsed_ms, 3), "sufficient_data": not no_data,
                                  "primary_source": "none" if no_data else "lab-model"})

    async def risk_check(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        portfolio = request.match_info["portfolio"]
        body = await read_json(request)
        positions = parse_positions(body)
        value = (finite(body["portfolio_value"], "portfolio_value") if "portfolio_value" in body
                 else sum(abs(q * p) for _, q, p in positions))
        breaches = [f"position {symbol} notional {abs(q * p):,.0f} exceeds limit {LIMITS['position_notional']:,.0f}"
                    for symbol, q, p in positions if abs(q * p) > LIMITS["position_notional"]]
        if value > LIMITS["portfolio_value"]:
            breaches.append(f"portfolio value {value:,.0f} exceeds limit {LIMITS['portfolio_value']:,.0f}")
        for breach in breaches:
            log.warning("Risk limit breach detected for portfolio %s: %s", portfolio, breach)
            self.recent_breaches.append(time.monotonic())
        elapsed = time.perf_counter() - started
        self.risk_checks += 1
        self.breaches += len(breaches)
        self.risk_check_seconds += elapsed
        self.portfolios.add(portfolio)
        self.database.record("INSERT INTO risk_checks (portfolio, breaches) VALUES (%s, %s)", portfolio, len(breaches))
        return web.json_response({"status": "checked", "portfolio": portfolio, "breaches_found": len(breaches),
                                  "breaches": breaches, "portfolio_value": round(float(value), 2),
                                  "check_time_ms": round(elapsed * 1000, 3)})

    def websocket_stats(self) -> dict:
        return {"status": "success", "engine": NAME, "data": {
            "connection_stats": {"active_connections": len(self.sockets), "max_connections": 1000},
            "message_stats": {"messages_sent": self.messages_sent,
                              "messages_sent_per_second": self.messages_per_second()},
            "performance_stats": {"uptime_seconds": self.uptime()}}}

    async def websocket_stats_endpoint(self, request: web.Request) -> web.Response:
        return web.json_response(self.websocket_stats())

    async def backend_websocket_stats(self, request: web.Request) -> web.Response:
        published = await self.bus.read_published_stats()
        if published is None:  # the websocket engine has published nothing lately
            published = {"status": "success", "engine": "websocket", "data": {
                "connection_stats": {"active_connections": 0, "max_connections": 1000},
                "message_stats": {"messages_sent": 0, "messages_sent_per_second": 0.0},
                "performance_stats": {"uptime_seconds": 0.0}}}
        return web.json_response({**published, "source": "messagebus"})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=1, heartbeat=30)  # timeout: how long close() waits for the peer
        await ws.prepare(request)
        self.sockets.add(ws)
        log.info("WebSocket connection established from %s (%d active)", request.remote, len(self.sockets))
        ticker = asyncio.create_task(self.tick(ws))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT and message.data == "ping":
                    await ws.send_str("pong")
        finally:
            ticker.cancel()
            self.sockets.discard(ws)
            log.info("WebSocket connection closed (%d active)", len(self.sockets))
        return ws

    async def tick(self, ws: web.WebSocketResponse) -> None:
        symbols, price = ("AAPL", "MSFT", "EURUSD", "ES"), 100.0
        while not ws.closed:
            if "ws-stall" in self.faults:  # connected clients kept, fed nothing: a stalled feed
                await asyncio.sleep(1)
                continue
            price *= 1 + random.gauss(0, 0.001)
            try:
                await ws.send_json({"type": "market_tick", "symbol": random.choice(symbols),
                                    "price": round(price, 4), "ts": time.time()})
            except (ConnectionError, RuntimeError):
                return  # the peer left between two ticks; the reader logs the close
            self.messages_sent += 1
            await asyncio.sleep(1)

    # -- faults (fault_table.FAULTS says what each kind does) -----------------------

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response(fault_state(self))

    async def inject(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in FAULT_KINDS:
            raise bad_request(f"unknown fault {kind!r}", kinds=list(FAULT_KINDS))
        params = await read_json(request)
        return await FAULTS[kind].inject(self, kind, params)

    async def clear(self, request: web.Request) -> web.Response:
        kind = request.match_info.get("kind")
        if kind is not None and kind not in FAULT_KINDS:
            raise bad_request(f"unknown fault {kind!r}", kinds=list(FAULT_KINDS))
        cleared = [name for name in ([kind] if kind else list(self.faults)) if name in self.faults]
        for name in cleared:
            self.faults.pop(name)
            FAULTS[name].clear(self)
        if cleared:
            log.info("Lab faults cleared: %s", ", ".join(cleared))
        return web.json_response(fault_state(self, cleared=cleared))

    # -- wiring -------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        routes = [web.get("/health", self.health), web.get("/metrics", self.metrics),
                  web.get("/_lab/faults", self.list_faults), web.post("/_lab/faults/{kind}", self.inject),
                  web.delete("/_lab/faults", self.clear), web.delete("/_lab/faults/{kind}", self.clear)]
        if NAME == "analytics":
            routes.append((web.post if FLAVOUR == "guide" else web.get)("/analytics/calculate/{portfolio}",
                                                                         self.calculate))
        if NAME == "risk":
            routes.append(web.post("/risk/check/{portfolio}", self.risk_check))
        if NAME == "websocket":
            routes.append(web.get("/ws", self.websocket))
            if FLAVOUR == "guide":
                routes.append(web.get("/websocket/stats", self.websocket_stats_endpoint))
        if NAME == "backend":
            routes.append(web.get("/api/v1/websocket/stats", self.backend_websocket_stats))
        app.add_routes(routes)
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def on_startup(self, app: web.Application) -> None:
        log.info("Starting %s (%s contract) on port %d", SERVICE, FLAVOUR, PORT)
        self.tasks = [asyncio.create_task(loop()) for loop in (self.bus.loop, self.database.loop, self.housekeeping_loop)]

    async def on_shutdown(self, app: web.Application) -> None:
        """SIGTERM: runs after the listener closed and before open requests are awaited."""
        log.info("Shutting down %s", SERVICE)
        if self.hang_release is not None:
            self.hang_release.set()
        for task in self.tasks:
            task.cancel()
        fault_table.stop_cpu(self)
        fault_table.stop_leak(self)
        closing = [asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"))
                   for ws in list(self.sockets)]
        closing += [asyncio.ensure_future(self.bus.drop()),
                    asyncio.get_running_loop().run_in_executor(self.database.pool, self.database.close)]
        # At most a second: a peer that never answers or a hung database call is cut by the exit below.
        await asyncio.wait(closing, timeout=1)


def main() -> None:
    warnings.filterwarnings("default", category=DeprecationWarning, module=f"^({'|'.join(PARTS)})$")
    setup_logging()
    crash_if_marked()
    if FLAVOUR not in ("guide", "real"):
        sys.exit(f"ENGINE_FLAVOUR must be guide or real, not {FLAVOUR!r}")
    if START_DELAY_S:
        log.info("starting: %.0f s before listening", START_DELAY_S)
        time.sleep(START_DELAY_S)
    engine = Engine()
    web.run_app(engine.app(), host=HOST, port=PORT, shutdown_timeout=0.5, access_log=None,
                print=lambda _banner: log.info("Listening on %s:%d", HOST, PORT))
    log.info("%s stopped", SERVICE)
    logging.shutdown()
    # Skip the interpreter's join of executor threads: a database call stuck on a dead
    # server would otherwise hold docker stop for its whole timeout.
    os._exit(0)


if __name__ == "__main__":
    main()
