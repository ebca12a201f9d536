#!/usr/bin/env python3
"""One Nautilus engine of the lab, configured by environment (see lab/README.md).

It serves either HTTP contract (ENGINE_FLAVOUR=guide or real), keeps a live
Redis connection with a heartbeat, writes rows to PostgreSQL, logs like a
service, and takes faults through /_lab/faults. Only Debian bookworm's
python3-aiohttp (3.8), python3-redis (4.3) and python3-psycopg2 (2.9) are used.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web

NAME = os.environ.get("ENGINE_NAME", "analytics")
PORT = int(os.environ.get("ENGINE_PORT", "8100"))
HOST = os.environ.get("ENGINE_HOST", "0.0.0.0")  # not set in the lab; a test outside Docker binds loopback
FLAVOUR = os.environ.get("ENGINE_FLAVOUR", "guide")
# Seconds before the engine listens, as a real engine loading its models or caches: `lab redeploy --start-delay`.
START_DELAY_S = float(os.environ.get("ENGINE_START_DELAY_S") or 0)
STATE_DIR = Path(os.environ.get("LAB_STATE_DIR", "/lab-state"))
REDIS = {"host": os.environ.get("REDIS_HOST", "redis"), "port": int(os.environ.get("REDIS_PORT", "6379"))}
# The password stays in this dict and is handed to libpq only: never logged, never served.
POSTGRES = {"host": os.environ.get("POSTGRES_HOST", "postgres"), "port": int(os.environ.get("POSTGRES_PORT", "5432")),
            "dbname": os.environ.get("POSTGRES_DB", "nautilus"), "user": os.environ.get("POSTGRES_USER", "nautilus"),
            "password": os.environ.get("POSTGRES_PASSWORD", "")}

SERVICE = "backend" if NAME == "backend" else f"{NAME}-engine"
CLIENT_NAME = f"nautilus-{SERVICE}"
CRASH_MARKER = STATE_DIR / f"crash-{NAME}"
FAULT_KINDS = ("unhealthy", "degraded", "slow", "bus-down", "bus-lie", "idle-bus", "error-burst", "known-error", "slow-log",
               "leak", "cpu", "hang", "crash-loop", "exit", "oom", "hostile", "trickle", "hostile-body", "conn-churn",
               "ws-stall", "no-data")
# hostile-body modes: what /health (or, for bad-metrics, /metrics) answers instead; long-log logs one line of 1 MB.
HOSTILE_MODES = ("not-json", "huge", "nested", "wrong-types", "bad-utf8", "bad-metrics", "long-log")
# The hostile fault: text a report must show as text (markup, terminal escapes) beside secrets it must never show.
HOSTILE_TEXT = "<script>document.title='owned'</script><b>bold?</b> \x1b[31mred?\x1b[0m"
# The troubleshooting guide's knowledge base: error texts the known-error fault can log.
KNOWN_ERRORS = ("MessageBus connection failed", "Database connection timeout", "Memory limit exceeded",
                "Health check timeout", "No space left on device", "Port already in use")
SLOW_OPERATIONS = ("order book rebuild", "risk limit recalculation", "factor matrix refresh",
                   "portfolio snapshot write", "market data replay")
OOM_CHUNK_MB, OOM_CAP_MB = 16, 4096  # the oom fault stops (and logs) at the cap if no limit killed it
BEAT_S, BUS_FRESH_S, DB_BEAT_S, DB_RETRY_S = 2.0, 5.0, 10.0, 5.0
WS_STATS_KEY = "nautilus:websocket:stats"
LIMITS = {"position_notional": 250_000.0, "portfolio_value": 5_000_000.0}
SCHEMA_LOCK = 0x6E617574  # any constant shared by every engine; "naut"
SCHEMA = ("CREATE TABLE IF NOT EXISTS engine_heartbeats (engine text, at timestamptz DEFAULT now())",
          "CREATE TABLE IF NOT EXISTS analytics_calculations "
          "(portfolio text, duration_ms double precision, at timestamptz DEFAULT now())",
          "CREATE TABLE IF NOT EXISTS risk_checks (portfolio text, breaches int, at timestamptz DEFAULT now())")
# The cpu fault's burner polls its parent so it never outlives the engine, even after a SIGKILL.
CPU_BURNER = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    sum(range(20000))\n"
HARMLESS_WARNINGS = ("Reference data cache refresh took {ms} ms (budget 1000 ms)",
                     "Heartbeat round trip {ms} ms above the 100 ms target",
                     "Market data snapshot {ms} ms behind schedule; catching up")

log = logging.getLogger(SERVICE)


def setup_logging() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # docker logs must see each line at once
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def container_id() -> str:
    """This container's id: Docker bind-mounts /etc/hostname from .../containers/<id>/; else the hostname."""
    try:
        found = re.search(r"/containers/([0-9a-f]{64})/", Path("/proc/self/mountinfo").read_text())
    except OSError:
        found = None
    return found.group(1) if found else socket.gethostname()


def crash_if_marked() -> None:
    """The guide's factor-engine start-up failure, replayed while the marker names this container.

    Restarts of the same container (its restart policy) keep crashing; a rebuilt or
    recreated container (the guide's fix: `compose build --no-cache` + `up -d`) is a
    new one and starts cleanly, removing the stale marker.
    """
    if not CRASH_MARKER.exists():
        return
    try:
        marked = CRASH_MARKER.read_text().strip()
    except OSError:
        marked = ""
    me = container_id()
    if not marked or not (me.startswith(marked) or marked.startswith(me)):
        log.info("crash marker %s was written for container %s, not this one (%s): starting normally",
                 CRASH_MARKER, marked[:12] or "?", me[:12])
        try:
            CRASH_MARKER.unlink()
        except OSError:
            pass
        return
    sys.stderr.write(
        "Traceback (most recent call last):\n"
        f'  File "/app/{NAME}_engine.py", line 27, in <module>\n'
        "    from enhanced_messagebus_client import MessagePriority, MessageBusConfig\n"
        "ImportError: cannot import name 'MessagePriority' from 'enhanced_messagebus_client' "
        "(/app/enhanced_messagebus_client.py)\n")
    sys.stderr.flush()
    sys.exit(1)


def describe(exc: BaseException) -> str:
    """A short cause for a log line, without the words a log scan counts as errors:
    a dependency still starting up is not an incident, and its line must not look like one."""
    chain, link = [], exc
    while link is not None and len(chain) < 5:  # redis-py keeps the socket's exception as the context
        chain.append(link)
        link = link.__cause__ or link.__context__
    for kind, words in ((ConnectionRefusedError, "connection refused"), (socket.gaierror, "host name not resolvable"),
                        (TimeoutError, "timed out"), (ConnectionResetError, "connection reset"),
                        (BrokenPipeError, "connection closed")):
        if any(isinstance(link, kind) for link in chain):
            return words
    text = " ".join(str(link) for link in chain).lower()
    code = re.search(r"error (-?\d+) connecting", text)  # redis-py: "Error 111 connecting to host:port"
    if code:
        number = int(code.group(1))
        return ("connection refused" if number == errno.ECONNREFUSED else
                "host name not resolvable" if number < 0 else os.strerror(number).lower())
    for needle, words in (("refused", "connection refused"), ("password", "password rejected"),
                          ("starting up", "server starting up"), ("does not exist", "database missing"),
                          ("translate host", "host name not resolvable"), ("timeout", "timed out"),
                          ("closed", "connection closed"), ("terminat", "connection terminated by the server")):
        if needle in text:
            return words
    return type(exc).__name__


def bad_request(detail: str, **extra) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"status": "invalid", "detail": detail, **extra}),
                              content_type="application/json")


async def read_json(request: web.Request) -> dict:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:  # includes bad UTF-8
        raise bad_request("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body


def finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{what} must be a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise bad_request(f"{what} must be a finite number")
    return number


def parse_positions(body: dict) -> list[tuple[str, float, float]]:
    raw = body.get("positions", [])
    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        raise bad_request("positions must be a list of objects")
    return [(str(p.get("symbol", "?")), finite(p.get("quantity", 0), "quantity"), finite(p.get("price", 0), "price"))
            for p in raw]


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
        # message bus
        self.bus: aioredis.Redis | None = None
        self.last_beat = 0.0  # monotonic time of the last heartbeat Redis acknowledged
        self.bus_up = False
        self.bus_warned = False
        # database: one connection used by one thread, so calls never interleave
        self.db = None
        self.db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")
        self.db_pending = 0
        self.db_retry_at = 0.0
        self.db_warned = False
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
        # faults with something running
        self.leaked: list[bytearray] = []
        self.leak_task: asyncio.Task | None = None
        self.cpu_child: subprocess.Popen | None = None
        self.churn_task: asyncio.Task | None = None

    def uptime(self) -> float:
        return round(time.time() - self.started, 1)

    # -- message bus ----------------------------------------------------------

    def bus_faulted(self) -> bool:
        return "bus-down" in self.faults or "bus-lie" in self.faults

    def bus_connected(self) -> bool:
        return not self.bus_faulted() and time.monotonic() - self.last_beat < BUS_FRESH_S

    async def bus_loop(self) -> None:
        while True:
            if self.bus_faulted():
                await self.drop_bus()
                await asyncio.sleep(0.2)  # short, so a cleared fault reconnects at once
                continue
            if "idle-bus" in self.faults:  # the connection stays open; nothing goes over it
                await asyncio.sleep(0.2)
                continue
            await self.heartbeat()
            await asyncio.sleep(BEAT_S)

    async def heartbeat(self) -> None:
        try:
            if self.bus is None:
                # client_name makes redis-py send CLIENT SETNAME on every new connection.
                self.bus = aioredis.Redis(**REDIS, client_name=CLIENT_NAME, socket_timeout=1,
                                          socket_connect_timeout=1, decode_responses=True)
            now = f"{time.time():.3f}"
            pipe = self.bus.pipeline(transaction=False)
            pipe.set(f"nautilus:heartbeat:{NAME}", now, ex=15)
            pipe.xadd("nautilus:messagebus", {"engine": NAME, "kind": "heartbeat", "ts": now},
                      maxlen=1000, approximate=True)
            if NAME == "websocket":
                pipe.set(WS_STATS_KEY, json.dumps(self.websocket_stats()), ex=15)
            await asyncio.wait_for(pipe.execute(), 3)
        except Exception as exc:
            await self.drop_bus()
            self.bus_lost(exc)
            return
        self.last_beat = time.monotonic()
        if not self.bus_up:
            log.info("MessageBus %s: redis %s:%s as client %s", "reconnected" if self.bus_warned else "connected",
                     REDIS["host"], REDIS["port"], CLIENT_NAME)
            self.bus_up, self.bus_warned = True, False

    def bus_lost(self, exc: BaseException) -> None:
        # One warning per outage: the loop retries every beat, quietly.
        if self.bus_up:
            log.warning("MessageBus connection lost (%s); reconnecting in background", describe(exc))
        elif not self.bus_warned:
            log.warning("MessageBus not reachable at %s:%s (%s); retrying in background",
                        REDIS["host"], REDIS["port"], describe(exc))
        self.bus_up, self.bus_warned = False, True

    async def drop_bus(self) -> None:
        bus, self.bus = self.bus, None
        if bus is not None:
            try:
                await asyncio.wait_for(bus.close(close_connection_pool=True), 1)
            except Exception:
                pass  # the socket is gone either way

    async def read_published_stats(self) -> dict | None:
        bus = self.bus
        if bus is None or not self.bus_connected() or "idle-bus" in self.faults:
            return None
        # Shielded: a request cancelled mid-command would leave a stale reply on a pooled
        # connection (redis-py 4.3). The callback reads any late exception so asyncio never logs it.
        read = asyncio.ensure_future(bus.get(WS_STATS_KEY))
        read.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            raw = await asyncio.shield(read)
            return json.loads(raw) if raw else None
        except Exception:
            return None

    # -- database ---------------------------------------------------------------

    def db_connect(self):
        conn = psycopg2.connect(**POSTGRES, connect_timeout=2, application_name=CLIENT_NAME,
                                options="-c statement_timeout=3000 -c lock_timeout=3000",
                                keepalives=1, keepalives_idle=10, keepalives_interval=3, keepalives_count=3)
        try:
            # Nine engines start together: the transaction-scoped lock serialises their
            # CREATE TABLE IF NOT EXISTS, which otherwise can race on the catalog.
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for ddl in SCHEMA:
                    cur.execute(ddl)
            conn.autocommit = True
        except BaseException:
            conn.close()
            raise
        return conn

    def db_execute(self, sql: str, args: tuple) -> None:
        """Runs in the db thread. While the database is away, rows are dropped, not queued."""
        try:
            if self.db is None:
                if time.monotonic() < self.db_retry_at:
                    return
                self.db = self.db_connect()
                log.info("Database %s: %s@%s:%s/%s", "reconnected" if self.db_warned else "connected",
                         POSTGRES["user"], POSTGRES["host"], POSTGRES["port"], POSTGRES["dbname"])
                self.db_warned = False
            with self.db.cursor() as cur:
                cur.execute(sql, args)
        except Exception as exc:
            self.db_lost(exc)

    def db_lost(self, exc: BaseException) -> None:
        if not self.db_warned:
            state = "connection lost" if self.db is not None else "not reachable"
            log.warning("Database %s (%s); rows are skipped until it is back", state, describe(exc))
            self.db_warned = True
        self.db_close()
        self.db_retry_at = time.monotonic() + DB_RETRY_S

    def db_close(self) -> None:
        db, self.db = self.db, None
        if db is not None:
            try:
                db.close()
            except Exception:
                pass

    def record(self, sql: str, *args) -> None:
        """Fire and forget: a request never waits for the database."""
        if self.db_pending >= 50:  # the database hangs: drop rather than pile up
            return
        self.db_pending += 1
        future = asyncio.get_running_loop().run_in_executor(self.db_pool, self.db_execute, sql, args)
        future.add_done_callback(self.db_written)

    def db_written(self, _future) -> None:
        self.db_pending -= 1

    async def db_loop(self) -> None:
        while True:
            self.record("INSERT INTO engine_heartbeats (engine) VALUES (%s)", NAME)
            await asyncio.sleep(DB_BEAT_S)

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
                response = await self.hostile_answer(request, hostile)
                status = response.status
                return response
            if "trickle" in self.faults and request.path == "/health":
                response = await self.trickle(request)
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

    async def hostile_answer(self, request: web.Request, mode: str) -> web.StreamResponse:
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

    async def trickle(self, request: web.Request) -> web.StreamResponse:
        """A healthy body, one byte a second: every read gets a byte, the answer never ends in time."""
        body = json.dumps({"status": "healthy", "engine": NAME, "uptime_seconds": self.uptime(),
                           "messagebus_connected": True, "timestamp": time.time()}).encode()
        reply = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        await reply.prepare(request)
        for i in range(len(body)):
            if "trickle" not in self.faults:
                await reply.write(body[i:])
                break
            await reply.write(body[i:i + 1])
            await asyncio.sleep(1)
        await reply.write_eof()
        return reply

    async def health(self, request: web.Request) -> web.Response:
        unhealthy = "unhealthy" in self.faults
        status = ("unhealthy" if FLAVOUR == "guide" else "stopped") if unhealthy else "healthy"
        # bus-lie and idle-bus: the flag the suite must not trust on its own (DESIGN.md section 8)
        bus = self.bus_connected() or "bus-lie" in self.faults or "idle-bus" in self.faults
        if NAME == "portfolio" and FLAVOUR == "real":
            body = {"status": status, "engine": NAME, "timestamp": time.time(),
                    "metrics": {"uptime_seconds": self.uptime(), "requests_processed": self.requests},
                    "integrations": {"messagebus_connected": bus, "database_connected": self.db is not None}}
        else:
            body = {"status": status, "engine": NAME, "uptime_seconds": self.uptime(),
                    "messagebus_connected": bus, "timestamp": time.time()}
        body.update(self.health_extras())
        hostile = self.faults.get("hostile")
        if hostile:
            secret = hostile["secret"]
            body.update({"note": HOSTILE_TEXT, "api_key": secret,
                         "dsn": f"postgresql://nautilus:{secret}@postgres:5432/nautilus"})
        return web.json_response(body, status=503 if unhealthy and FLAVOUR == "guide" else 200)

    def health_extras(self) -> dict:
        # degraded: up and "healthy", but doing nothing useful (monitoring off, no limits, no definitions).
        degraded = "degraded" in self.faults
        if NAME == "risk" and FLAVOUR == "guide":
            return {"monitoring_active": not degraded, "monitored_portfolios": len(self.portfolios),
                    "breach_alerts_sent": self.breaches}
        if NAME == "risk":
            hour_ago = time.monotonic() - 3600
            return {"risk_checks_processed": self.risk_checks, "breaches_detected": self.breaches,
                    "active_limits": 0 if degraded else len(LIMITS),
                    "active_breaches": sum(t > hour_ago for t in self.recent_breaches)}
        if NAME == "factor":
            return {"factors_calculated": self.factors_calculated, "factor_definitions_loaded": 0 if degraded else 485}
        if NAME == "websocket" and FLAVOUR == "real":
            return {"active_connections": len(self.sockets), "messages_sent": self.messages_sent}
        return {}

    async def metrics(self, request: web.Request) -> web.Response:
        if FLAVOUR == "guide":
            return web.Response(text=self.prometheus_text(),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        if NAME == "portfolio":
            raise web.HTTPNotFound(text=json.dumps({"detail": "Not Found"}), content_type="application/json")
        uptime = max(time.time() - self.started, 0.001)
        body = {"total_requests": self.requests, "requests_per_second": round(self.requests / uptime, 3),
                "total_errors": self.errors, "uptime": round(uptime, 1),
                "average_response_time_ms": round(1000 * self.duration_sum / max(self.timed, 1), 3)}
        if NAME == "risk":
            body.update(total_risk_checks=self.risk_checks, total_breaches=self.breaches)
        if NAME == "websocket":
            body.update(active_connections=len(self.sockets), messages_sent=self.messages_sent)
        return web.json_response(body)

    def prometheus_text(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
            lines.extend(f"{name}{suffix} {value if isinstance(value, int) else repr(float(value))}"
                         for suffix, value in samples)

        ordered = sorted(self.durations)
        quantiles = [(f'{{quantile="{q}"}}', ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0)
                     for q in (0.5, 0.9, 0.99)]
        family(f"{NAME}_requests_total", "counter", "HTTP requests served.", [("", self.requests)])
        family(f"{NAME}_request_duration_seconds", "summary", "HTTP request duration in seconds.",
               quantiles + [("_sum", self.duration_sum), ("_count", self.timed)])
        family(f"{NAME}_errors_total", "counter", "HTTP requests that ended in a server error.", [("", self.errors)])
        if NAME == "risk":
            family("risk_checks_total", "counter", "Risk checks run.", [("", self.risk_checks)])
            family("risk_check_duration_seconds", "summary", "Risk check duration in seconds.",
                   [("_sum", self.risk_check_seconds), ("_count", self.risk_checks)])
        if NAME == "websocket":
            family("websocket_connections_active", "gauge", "Open WebSocket connections.", [("", len(self.sockets))])
            family("websocket_messages_sent_total", "counter", "WebSocket messages sent.", [("", self.messages_sent)])
        family(f"{NAME}_uptime_seconds", "gauge", "Seconds since the engine started.", [("", self.uptime())])
        return "\n".join(lines) + "\n"

    async def calculate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        portfolio = request.match_info["portfolio"]
        positions = parse_positions(await read_json(request))
        if not positions:  # nothing sent: the engine's own model book
            positions = [("AAPL", 100, 189.5), ("MSFT", 40, 411.2), ("TLT", 80, 92.3)]
        figures = portfolio_figures(positions)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.calculations += 1
        self.record("INSERT INTO analytics_calculations (portfolio, duration_ms) VALUES (%s, %s)",
                    portfolio, elapsed_ms)
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
        self.record("INSERT INTO risk_checks (portfolio, breaches) VALUES (%s, %s)", portfolio, len(breaches))
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
        published = await self.read_published_stats()
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

    # -- faults -------------------------------------------------------------------

    def fault_state(self, **extra) -> dict:
        return {"engine": NAME, "faults": self.faults, **extra}

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.fault_state())

    async def inject(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in FAULT_KINDS:
            raise bad_request(f"unknown fault {kind!r}", kinds=list(FAULT_KINDS))
        params = await read_json(request)
        if kind == "error-burst":
            count = int(self.param(params, "count", 20, 1, 10_000))
            for i in range(count):
                log.error("Order routing failed: upstream timeout after 3000 ms (synthetic lab fault %d/%d)",
                          i + 1, count)
            return web.json_response(self.fault_state(logged=count))
        if kind == "known-error":
            text = params.get("text") or KNOWN_ERRORS[0]
            if text not in KNOWN_ERRORS:
                raise bad_request("text must be one of the knowledge base's errors", texts=list(KNOWN_ERRORS))
            log.error("%s (synthetic lab fault known-error)", text)
            return web.json_response(self.fault_state(logged=1, text=text))
        if kind == "slow-log":
            count = int(self.param(params, "count", 5, 1, 10_000))
            for i in range(count):
                log.warning("slow operation: %s took %dms", SLOW_OPERATIONS[i % len(SLOW_OPERATIONS)], 2500 + 100 * i)
            return web.json_response(self.fault_state(logged=count))
        if kind == "hostile-body":
            mode = params.get("text") or "not-json"
            if mode not in HOSTILE_MODES:
                raise bad_request("text must be one of the hostile modes", modes=list(HOSTILE_MODES))
            if mode == "long-log":
                log.error("Database connection timeout %s (synthetic lab fault hostile-body long-log)", "z" * (1 << 20))
                return web.json_response(self.fault_state(logged=1))
            self.faults[kind] = {"mode": mode}
            log.warning("Lab fault injected: hostile-body %s", mode)
            return web.json_response(self.fault_state())
        if kind == "hostile":
            secret = str(params.get("text") or "lab-hostile-secret")
            self.faults[kind] = {"secret": secret}
            log.error("Database connection timeout %s api_key=%s (synthetic lab fault hostile)", HOSTILE_TEXT, secret)
            return web.json_response(self.fault_state())
        if kind == "crash-loop":
            return self.crash_loop()
        if kind == "exit":
            code = int(self.param(params, "code", 1, 0, 255))
            log.critical("Lab fault exit: the process exits now with code %d", code)
            asyncio.get_running_loop().call_later(0.3, self.exit_now, code)
            return web.json_response(self.fault_state(exiting=code), status=202)
        if kind == "oom":
            log.critical("Lab fault oom: allocating memory until the container's limit is hit")
            asyncio.get_running_loop().call_later(0.3, self.exhaust_memory)
            return web.json_response(self.fault_state(allocating=True), status=202)
        self.faults[kind] = await self.start_fault(kind, params)
        log.warning("Lab fault injected: %s %s", kind, json.dumps(self.faults[kind]))
        return web.json_response(self.fault_state())

    @staticmethod
    def param(params: dict, key: str, default: float, low: float, high: float) -> float:
        value = params.get(key)
        value = default if value is None else finite(value, key)
        if not low <= value <= high:
            raise bad_request(f"{key} must be between {low:g} and {high:g}")
        return value

    async def start_fault(self, kind: str, params: dict) -> dict:
        """Starts what the fault needs and returns its parameters as listed by GET."""
        if kind == "slow":
            return {"ms": int(self.param(params, "ms", 1500, 0, 600_000))}
        if kind in ("bus-down", "bus-lie"):
            self.faults[kind] = {}  # before the drop, so the bus loop does not reconnect in between
            if self.bus is not None:
                await self.drop_bus()
                log.warning("MessageBus disconnected (lab fault %s)", kind)
                self.bus_up = False
        elif kind == "leak":
            leak = {"mb_per_s": self.param(params, "mb_per_s", 20, 0.1, 1000),
                    "max_mb": self.param(params, "max_mb", 150, 1, 4096)}
            if self.leak_task is not None:
                self.leak_task.cancel()
            self.leak_task = asyncio.create_task(self.leak(**leak))
            return leak
        elif kind == "cpu" and (self.cpu_child is None or self.cpu_child.poll() is not None):
            # A fresh interpreter, not a fork: a forked child would share the event loop's
            # signal wakeup fd, and a signal sent to it would stop this engine.
            self.cpu_child = subprocess.Popen([sys.executable, "-c", CPU_BURNER, str(os.getpid())],
                                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        elif kind == "hang" and self.hang_release is None:
            self.hang_release = asyncio.Event()
        elif kind == "conn-churn":
            per_s = self.param(params, "count", 50, 1, 500)
            if self.churn_task is not None:
                self.churn_task.cancel()
            self.churn_task = asyncio.create_task(self.churn(per_s))
            return {"per_s": per_s}
        return {}

    async def churn(self, per_s: float) -> None:
        """A new Redis connection for every read, as an engine without a connection pool does."""
        while True:
            conn = aioredis.Redis(**REDIS, socket_timeout=1, socket_connect_timeout=1)
            try:
                await conn.get(WS_STATS_KEY)
            except Exception:
                pass  # the fault is the connecting, not the answer
            finally:
                try:
                    await conn.close(close_connection_pool=True)
                except Exception:
                    pass
            await asyncio.sleep(1 / per_s)

    def crash_loop(self) -> web.Response:
        try:
            STATE_DIR.mkdir(parents=True, exist_ok=True)
            CRASH_MARKER.write_text(container_id() + "\n")  # only this container crashes at start
        except OSError as exc:
            return web.json_response(self.fault_state(detail=f"cannot write the crash marker: {exc}"), status=500)
        self.faults["crash-loop"] = {"marker": str(CRASH_MARKER)}
        log.critical("Lab fault crash-loop: exiting now; every start of this container fails while %s exists",
                     CRASH_MARKER)
        asyncio.get_running_loop().call_later(0.3, self.crash)
        return web.json_response(self.fault_state(), status=202)

    def crash(self) -> None:
        self.exit_now(1)

    def exit_now(self, code: int) -> None:
        self.stop_cpu()
        sys.stdout.flush()
        os._exit(code)

    def exhaust_memory(self) -> None:
        """Blocks the event loop on purpose: written pages, fast, until the kernel's OOM killer ends us."""
        hoard = []
        while len(hoard) * OOM_CHUNK_MB < OOM_CAP_MB:
            hoard.append(bytearray(b"\x5a") * (OOM_CHUNK_MB << 20))
        hoard.clear()
        log.warning("Lab fault oom: %d MB allocated and not killed; is there no memory limit?", OOM_CAP_MB)

    async def clear(self, request: web.Request) -> web.Response:
        kind = request.match_info.get("kind")
        if kind is not None and kind not in FAULT_KINDS:
            raise bad_request(f"unknown fault {kind!r}", kinds=list(FAULT_KINDS))
        cleared = [name for name in ([kind] if kind else list(self.faults)) if name in self.faults]
        for name in cleared:
            self.faults.pop(name)
            self.stop_fault(name)
        if cleared:
            log.info("Lab faults cleared: %s", ", ".join(cleared))
        return web.json_response(self.fault_state(cleared=cleared))

    def stop_fault(self, kind: str) -> None:
        if kind == "leak":
            self.stop_leak()
        elif kind == "cpu":
            self.stop_cpu()
        elif kind == "hang" and self.hang_release is not None:
            self.hang_release.set()  # every held request goes on
            self.hang_release = None
        elif kind == "conn-churn" and self.churn_task is not None:
            self.churn_task.cancel()
            self.churn_task = None

    async def leak(self, mb_per_s: float, max_mb: float) -> None:
        while len(self.leaked) < max_mb:
            self.leaked.append(bytearray(b"\xa5") * (1 << 20))  # written, so every page is resident
            await asyncio.sleep(1 / mb_per_s)
        log.warning("In-memory cache holds %d MB and stopped growing", len(self.leaked))

    def stop_leak(self) -> None:
        if self.leak_task is not None:
            self.leak_task.cancel()
            self.leak_task = None
        self.leaked.clear()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages unless asked
        except (OSError, AttributeError):
            pass

    def stop_cpu(self) -> None:
        child, self.cpu_child = self.cpu_child, None
        if child is not None:
            child.kill()
            child.wait(timeout=2)

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
        self.tasks = [asyncio.create_task(loop()) for loop in (self.bus_loop, self.db_loop, self.housekeeping_loop)]

    async def on_shutdown(self, app: web.Application) -> None:
        """SIGTERM: runs after the listener closed and before open requests are awaited."""
        log.info("Shutting down %s", SERVICE)
        if self.hang_release is not None:
            self.hang_release.set()
        for task in self.tasks:
            task.cancel()
        self.stop_cpu()
        self.stop_leak()
        closing = [asyncio.ensure_future(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"))
                   for ws in list(self.sockets)]
        closing += [asyncio.ensure_future(self.drop_bus()),
                    asyncio.get_running_loop().run_in_executor(self.db_pool, self.db_close)]
        # At most a second: a peer that never answers or a hung database call is cut by the exit below.
        await asyncio.wait(closing, timeout=1)


def main() -> None:
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
