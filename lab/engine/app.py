#!/usr/bin/env python3
"""One Nautilus engine of the lab, configured by environment (see lab/README.md).

It serves either HTTP contract (ENGINE_FLAVOUR=guide or real), keeps a live
Redis connection with a heartbeat, writes rows to PostgreSQL, logs like a
service, and takes faults through /_lab/faults. Only Debian bookworm's
python3-aiohttp, python3-redis and python3-psycopg2 are used.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

NAME = os.environ.get("ENGINE_NAME", "analytics")
PORT = int(os.environ.get("ENGINE_PORT", "8100"))
FLAVOUR = os.environ.get("ENGINE_FLAVOUR", "guide")
STATE_DIR = Path(os.environ.get("LAB_STATE_DIR", "/lab-state"))
SERVICE = "backend" if NAME == "backend" else f"{NAME}-engine"
CLIENT_NAME = f"nautilus-{SERVICE}"
CRASH_MARKER = STATE_DIR / f"crash-{NAME}"
FAULT_KINDS = ("unhealthy", "slow", "bus-down", "bus-lie", "error-burst", "leak", "cpu", "hang", "crash-loop")
BEAT_S, BUS_FRESH_S, DB_BEAT_S = 2.0, 5.0, 10.0
BREACH_NOTIONAL, BREACH_PORTFOLIO_VALUE = 250_000, 5_000_000

logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger(SERVICE)


def crash_if_marked() -> None:
    """The guide's factor-engine start-up failure, replayed while the marker exists."""
    if not CRASH_MARKER.exists():
        return
    sys.stderr.write(
        "Traceback (most recent call last):\n"
        f'  File "/app/{NAME}_engine.py", line 27, in <module>\n'
        "    from enhanced_messagebus_client import MessagePriority, MessageBusConfig\n"
        "ImportError: cannot import name 'MessagePriority' from 'enhanced_messagebus_client' "
        "(/app/enhanced_messagebus_client.py)\n")
    sys.exit(1)


class Engine:
    def __init__(self) -> None:
        self.started = time.time()
        self.faults: dict[str, dict] = {}
        self.running = asyncio.Event()  # cleared while the hang fault holds requests
        self.running.set()
        self.bus: aioredis.Redis | None = None
        self.last_beat = 0.0
        self.db = None
        self.db_pool = ThreadPoolExecutor(max_workers=1)  # one connection, used serially
        self.db_down_logged = False
        self.requests = self.errors = 0
        self.duration_sum = 0.0
        self.risk_checks = self.breaches = 0
        self.risk_check_seconds = 0.0
        self.portfolios: set[str] = set()
        self.calculations = 0
        self.factors_calculated = 0
        self.sockets: set[web.WebSocketResponse] = set()
        self.messages_sent = 0
        self.messages_rate = 0.0
        self.leaked: list[bytearray] = []
        self.leak_task: asyncio.Task | None = None
        self.cpu_child: subprocess.Popen | None = None

    # -- message bus ----------------------------------------------------------

    def bus_connected(self) -> bool:
        return time.time() - self.last_beat < BUS_FRESH_S and not self.bus_faulted()

    def bus_faulted(self) -> bool:
        return "bus-down" in self.faults or "bus-lie" in self.faults

    async def drop_bus(self) -> None:
        if self.bus is not None:
            bus, self.bus = self.bus, None
            try:
                await bus.close()
                await bus.connection_pool.disconnect()
            except Exception:
                pass

    async def bus_loop(self) -> None:
        sent_before, was_up = 0, False
        while True:
            if self.bus_faulted():
                if self.bus is not None:
                    await self.drop_bus()
                    log.warning("MessageBus disconnected (lab fault)")
                    was_up = False
                await asyncio.sleep(0.5)
                continue
            try:
                if self.bus is None:
                    self.bus = aioredis.Redis(host=os.environ.get("REDIS_HOST", "redis"),
                                              port=int(os.environ.get("REDIS_PORT", "6379")),
                                              socket_timeout=1, socket_connect_timeout=1, client_name=CLIENT_NAME)
                now = time.time()
                self.messages_rate = (self.messages_sent - sent_before) / BEAT_S
                sent_before = self.messages_sent
                pipe = self.bus.pipeline(transaction=False)
                pipe.set(f"nautilus:heartbeat:{NAME}", f"{now:.3f}", ex=15)
                pipe.xadd("nautilus:messagebus", {"engine": NAME, "kind": "heartbeat", "ts": f"{now:.3f}"},
                          maxlen=1000, approximate=True)
                if NAME == "websocket":
                    pipe.set("nautilus:websocket:stats", json.dumps(self.websocket_stats()), ex=15)
                await pipe.execute()
                self.last_beat = now
                if not was_up:
                    log.info("MessageBus connected (redis client %s)", CLIENT_NAME)
                    was_up = True
            except Exception as exc:
                if was_up:
                    log.warning("MessageBus connection lost: %s", exc.__class__.__name__)
                    was_up = False
                await self.drop_bus()
            await asyncio.sleep(BEAT_S)

    # -- database ---------------------------------------------------------------

    def _db_connect(self):
        conn = psycopg2.connect(host=os.environ.get("POSTGRES_HOST", "postgres"),
                                dbname=os.environ.get("POSTGRES_DB", "nautilus"),
                                user=os.environ.get("POSTGRES_USER", "nautilus"),
                                password=os.environ.get("POSTGRES_PASSWORD", ""),
                                connect_timeout=2, application_name=CLIENT_NAME,
                                options="-c statement_timeout=3000")
        conn.autocommit = True
        with conn.cursor() as cur:
            # Nine engines start together; the lock keeps their CREATE TABLEs apart.
            cur.execute("SELECT pg_advisory_lock(4242)")
            try:
                cur.execute("CREATE TABLE IF NOT EXISTS engine_heartbeats (engine text, at timestamptz DEFAULT now())")
                cur.execute("CREATE TABLE IF NOT EXISTS analytics_calculations "
                            "(portfolio text, duration_ms double precision, at timestamptz DEFAULT now())")
                cur.execute("CREATE TABLE IF NOT EXISTS risk_checks (portfolio text, breaches int, at timestamptz DEFAULT now())")
            finally:
                cur.execute("SELECT pg_advisory_unlock(4242)")
        return conn

    def _db_execute(self, sql: str, args: tuple) -> None:
        try:
            if self.db is None or self.db.closed:
                self.db = self._db_connect()
                log.info("Database connected")
                self.db_down_logged = False
            with self.db.cursor() as cur:
                cur.execute(sql, args)
        except psycopg2.Error as exc:
            if not self.db_down_logged:
                log.warning("Database unavailable: %s", str(exc).strip().splitlines()[0][:120])
                self.db_down_logged = True
            try:
                if self.db is not None:
                    self.db.close()
            except psycopg2.Error:
                pass
            self.db = None

    def record(self, sql: str, *args) -> None:
        asyncio.get_running_loop().run_in_executor(self.db_pool, self._db_execute, sql, args)

    async def db_loop(self) -> None:
        while True:
            self.record("INSERT INTO engine_heartbeats (engine) VALUES (%s)", NAME)
            await asyncio.sleep(DB_BEAT_S)

    async def chatter_loop(self) -> None:
        """What a live service does between requests: background work and the odd warning."""
        beats = 0
        while True:
            await asyncio.sleep(BEAT_S * 5)
            beats += 1
            if NAME == "factor":
                self.factors_calculated += 25
            if beats % 6 == 0:
                log.warning("Reference data cache refreshed late (%d ms behind schedule)", 150 + beats % 200)

    # -- HTTP -----------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if request.path.startswith("/_lab/"):
            return await handler(request)
        await self.running.wait()
        if "slow" in self.faults:
            await asyncio.sleep(self.faults["slow"]["ms"] / 1000)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        except Exception:
            log.exception("Unhandled request error on %s", request.path)
            response = web.json_response({"status": "error"}, status=500)
        self.requests += 1
        self.errors += response.status >= 500
        self.duration_sum += time.perf_counter() - started
        if isinstance(response, web.HTTPException):
            raise response
        return response

    def uptime(self) -> float:
        return round(time.time() - self.started, 1)

    async def health(self, request: web.Request) -> web.Response:
        unhealthy = "unhealthy" in self.faults
        status = ("unhealthy" if FLAVOUR == "guide" else "stopped") if unhealthy else "healthy"
        bus = self.bus_connected() or "bus-lie" in self.faults
        if NAME == "portfolio" and FLAVOUR == "real":
            body = {"status": status, "engine": NAME,
                    "metrics": {"uptime_seconds": self.uptime(), "requests_processed": self.requests},
                    "integrations": {"messagebus_connected": bus, "database_connected": self.db is not None}}
        else:
            body = {"status": status, "engine": NAME, "uptime_seconds": self.uptime(),
                    "messagebus_connected": bus, "timestamp": time.time()}
        body.update(self.health_extras())
        return web.json_response(body, status=503 if unhealthy and FLAVOUR == "guide" else 200)

    def health_extras(self) -> dict:
        if NAME == "risk" and FLAVOUR == "guide":
            return {"monitoring_active": True, "monitored_portfolios": len(self.portfolios),
                    "breach_alerts_sent": self.breaches}
        if NAME == "risk":
            return {"risk_checks_processed": self.risk_checks, "breaches_detected": self.breaches,
                    "active_limits": 12, "active_breaches": min(self.breaches, 3)}
        if NAME == "factor":
            return {"factors_calculated": self.factors_calculated, "factor_definitions_loaded": 485}
        if NAME == "websocket" and FLAVOUR == "real":
            return {"active_connections": len(self.sockets), "messages_sent": self.messages_sent}
        return {}

    async def metrics(self, request: web.Request) -> web.Response:
        if FLAVOUR == "real":
            if NAME == "portfolio":
                raise web.HTTPNotFound()
            uptime = max(self.uptime(), 0.1)
            body = {"total_requests": self.requests, "requests_per_second": round(self.requests / uptime, 3),
                    "total_errors": self.errors, "uptime": uptime}
            if NAME == "risk":
                body |= {"total_risk_checks": self.risk_checks, "total_breaches": self.breaches}
            return web.json_response(body)
        lines = []

        def metric(name: str, kind: str, help_text: str, *samples: tuple[str, float]) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
            lines.extend(f"{name}{suffix} {value}" for suffix, value in samples)

        metric(f"{NAME}_requests_total", "counter", "Requests served.", ("", self.requests))
        metric(f"{NAME}_request_duration_seconds", "summary", "Request duration.",
               ("_sum", round(self.duration_sum, 6)), ("_count", self.requests))
        metric(f"{NAME}_errors_total", "counter", "Requests that ended in a server error.", ("", self.errors))
        if NAME == "risk":
            metric("risk_checks_total", "counter", "Risk checks run.", ("", self.risk_checks))
            metric("risk_check_duration_seconds", "summary", "Risk check duration.",
                   ("_sum", round(self.risk_check_seconds, 6)), ("_count", self.risk_checks))
        if NAME == "websocket":
            metric("websocket_connections_active", "gauge", "Open WebSocket connections.", ("", len(self.sockets)))
            metric("websocket_messages_sent_total", "counter", "Messages sent.", ("", self.messages_sent))
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def calculate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        portfolio = request.match_info["portfolio"]
        body = await self.json_body(request) if request.method == "POST" and request.can_read_body else {}
        positions = body.get("positions") or [{"symbol": "SYN", "quantity": 10, "price": 100.0}]
        value = sum(float(p.get("quantity", 0)) * float(p.get("price", 0)) for p in positions)
        returns = [math.sin(i / 7.0) * 0.01 for i in range(250)]
        mean = sum(returns) / len(returns)
        volatility = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns)) * math.sqrt(252)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.calculations += 1
        self.record("INSERT INTO analytics_calculations (portfolio, duration_ms) VALUES (%s, %s)", portfolio, elapsed_ms)
        return web.json_response({"status": "calculated", "portfolio": portfolio, "calculation_time_ms": elapsed_ms,
                                  "metrics": {"portfolio_value": value, "annualised_volatility": volatility}})

    async def risk_check(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        portfolio = request.match_info["portfolio"]
        body = await self.json_body(request)
        positions = body.get("positions") or []
        notionals = [float(p.get("quantity", 0)) * float(p.get("price", 0)) for p in positions]
        value = float(body.get("portfolio_value", sum(notionals)))
        breaches = sum(n > BREACH_NOTIONAL for n in notionals) + (value > BREACH_PORTFOLIO_VALUE)
        for _ in range(breaches):
            log.warning("Risk limit breach detected for portfolio %s: exposure above limit", portfolio)
        elapsed = time.perf_counter() - started
        self.risk_checks += 1
        self.breaches += breaches
        self.risk_check_seconds += elapsed
        self.portfolios.add(portfolio)
        self.record("INSERT INTO risk_checks (portfolio, breaches) VALUES (%s, %s)", portfolio, breaches)
        return web.json_response({"status": "checked", "portfolio": portfolio, "breaches_found": breaches,
                                  "check_time_ms": round(elapsed * 1000, 3)})

    @staticmethod
    async def json_body(request: web.Request) -> dict:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text=json.dumps({"status": "invalid", "detail": "body is not JSON"}),
                                     content_type="application/json")
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text=json.dumps({"status": "invalid", "detail": "body must be an object"}),
                                     content_type="application/json")
        return body

    def websocket_stats(self) -> dict:
        return {"status": "success", "data": {
            "connection_stats": {"active_connections": len(self.sockets), "max_connections": 1000},
            "message_stats": {"messages_sent": self.messages_sent,
                              "messages_sent_per_second": round(self.messages_rate, 2)},
            "performance_stats": {"uptime_seconds": self.uptime()}}}

    async def websocket_stats_endpoint(self, request: web.Request) -> web.Response:
        return web.json_response(self.websocket_stats())

    async def backend_websocket_stats(self, request: web.Request) -> web.Response:
        stats = None
        if self.bus is not None:
            try:
                stats = await self.bus.get("nautilus:websocket:stats")
            except Exception:
                stats = None
        empty = {"status": "success", "data": {"connection_stats": {"active_connections": 0},
                                               "message_stats": {"messages_sent": 0, "messages_sent_per_second": 0}}}
        return web.json_response(json.loads(stats) if stats else empty)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        log.info("WebSocket connection established from %s (%d active)", request.remote, len(self.sockets))
        ticker = asyncio.create_task(self.tick(ws))
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            ticker.cancel()
            self.sockets.discard(ws)
            log.info("WebSocket connection closed (%d active)", len(self.sockets))
        return ws

    async def tick(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await ws.send_json({"type": "tick", "engine": NAME, "ts": time.time()})
            self.messages_sent += 1
            await asyncio.sleep(1)

    # -- faults -----------------------------------------------------------------

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"engine": NAME, "faults": self.faults})

    async def inject(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in FAULT_KINDS:
            return web.json_response({"error": f"unknown fault {kind}", "kinds": FAULT_KINDS}, status=400)
        params = await request.json() if request.can_read_body else {}
        if kind == "slow":
            self.faults[kind] = {"ms": int(params.get("ms") or 1500)}
        elif kind == "error-burst":
            count = int(params.get("count") or 20)
            for i in range(count):
                log.error("Order routing failed: upstream timeout after 3000 ms (synthetic lab fault %d/%d)", i + 1, count)
            return web.json_response({"engine": NAME, "faults": self.faults, "logged": count})
        elif kind == "leak":
            self.faults[kind] = {"mb_per_s": float(params.get("mb_per_s") or 20), "max_mb": float(params.get("max_mb") or 150)}
            if self.leak_task is None:
                self.leak_task = asyncio.create_task(self.leak(**self.faults[kind]))
        elif kind == "cpu":
            self.faults[kind] = {}
            if self.cpu_child is None:
                # A separate interpreter, not a fork: a forked child would share the
                # event loop's signal wakeup fd, and its SIGTERM would stop this engine.
                self.cpu_child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        elif kind == "hang":
            self.faults[kind] = {}
            self.running.clear()
        elif kind == "crash-loop":
            CRASH_MARKER.write_text(f"{time.time()}\n")
            log.critical("Engine crashing on purpose (lab fault crash-loop)")
            asyncio.get_running_loop().call_later(0.2, os._exit, 1)
            return web.json_response({"engine": NAME, "faults": {"crash-loop": {}}}, status=202)
        else:
            self.faults[kind] = {}
            if kind in ("bus-down", "bus-lie"):
                await self.drop_bus()
        log.warning("Lab fault injected: %s %s", kind, self.faults.get(kind, {}))
        return web.json_response({"engine": NAME, "faults": self.faults})

    async def clear(self, request: web.Request) -> web.Response:
        kind = request.match_info.get("kind")
        cleared = [name for name in ([kind] if kind else list(self.faults)) if name in self.faults]
        for name in cleared:
            self.faults.pop(name, None)
            if name == "leak" and self.leak_task is not None:
                self.leak_task.cancel()
                self.leak_task, self.leaked = None, []
            elif name == "cpu" and self.cpu_child is not None:
                self.cpu_child.kill()
                self.cpu_child.wait(2)
                self.cpu_child = None
            elif name == "hang":
                self.running.set()
        if cleared:
            log.info("Lab faults cleared: %s", ", ".join(cleared))
        return web.json_response({"engine": NAME, "faults": self.faults, "cleared": cleared})

    async def leak(self, mb_per_s: float, max_mb: float) -> None:
        chunk = 1024 * 1024
        while len(self.leaked) < max_mb:
            block = bytearray(chunk)
            block[::4096] = b"\x01" * len(block[::4096])  # touch every page so it is really resident
            self.leaked.append(block)
            await asyncio.sleep(1 / mb_per_s)

    # -- wiring -----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        routes = [web.get("/health", self.health), web.get("/metrics", self.metrics),
                  web.get("/_lab/faults", self.list_faults), web.post("/_lab/faults/{kind}", self.inject),
                  web.delete("/_lab/faults", self.clear), web.delete("/_lab/faults/{kind}", self.clear)]
        if NAME == "analytics":
            method = web.post if FLAVOUR == "guide" else web.get
            routes.append(method("/analytics/calculate/{portfolio}", self.calculate))
        if NAME == "risk":
            routes.append(web.post("/risk/check/{portfolio}", self.risk_check))
        if NAME == "websocket":
            routes.append(web.get("/ws", self.websocket))
            if FLAVOUR == "guide":
                routes.append(web.get("/websocket/stats", self.websocket_stats_endpoint))
        if NAME == "backend":
            routes.append(web.get("/api/v1/websocket/stats", self.backend_websocket_stats))
        app.add_routes(routes)
        app.on_startup.append(self.start_background)
        app.on_shutdown.append(self.shutdown)
        return app

    async def start_background(self, app: web.Application) -> None:
        self.tasks = [asyncio.create_task(loop()) for loop in (self.bus_loop, self.db_loop, self.chatter_loop)]
        log.info("%s started on port %d (%s contract)", SERVICE, PORT, FLAVOUR)

    async def shutdown(self, app: web.Application) -> None:
        log.info("%s shutting down", SERVICE)
        for ws in list(self.sockets):
            await ws.close()
        for task in self.tasks:
            task.cancel()
        if self.cpu_child is not None:
            self.cpu_child.kill()
        await self.drop_bus()
        self.db_pool.shutdown(wait=False)


def main() -> None:
    crash_if_marked()
    web.run_app(Engine().app(), port=PORT, print=None, shutdown_timeout=1, access_log=None)


if __name__ == "__main__":
    main()
