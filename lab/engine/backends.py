"""The engine's two backends: the message bus (Redis, a heartbeat every BEAT_S) and the database (PostgreSQL,
rows written from one thread). Both tolerate their server being away: they warn once and retry quietly."""
from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import psycopg2
import redis.asyncio as aioredis

from engine_config import (BEAT_S, BUS_FRESH_S, CLIENT_NAME, DB_BEAT_S, DB_RETRY_S, NAME, POSTGRES, REDIS, SCHEMA,
                           SCHEMA_LOCK, WS_STATS_KEY, log)


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


class MessageBus:
    """One Redis connection named CLIENT_NAME, beating every BEAT_S while no fault stops it.

    `faults` is the engine's live dict of active faults (bus-down, bus-lie and idle-bus act here);
    `published_stats` gives what the websocket engine publishes with each beat.
    """

    def __init__(self, faults: dict[str, dict], published_stats: Callable[[], dict]) -> None:
        self.faults = faults
        self.published_stats = published_stats
        self.client: aioredis.Redis | None = None
        self.last_beat = 0.0  # monotonic time of the last heartbeat Redis acknowledged
        self.up = False
        self.warned = False

    def faulted(self) -> bool:
        return "bus-down" in self.faults or "bus-lie" in self.faults

    def connected(self) -> bool:
        return not self.faulted() and time.monotonic() - self.last_beat < BUS_FRESH_S

    async def loop(self) -> None:
        while True:
            if self.faulted():
                await self.drop()
                await asyncio.sleep(0.2)  # short, so a cleared fault reconnects at once
                continue
            if "idle-bus" in self.faults:  # the connection stays open; nothing goes over it
                await asyncio.sleep(0.2)
                continue
            await self.heartbeat()
            await asyncio.sleep(BEAT_S)

    async def heartbeat(self) -> None:
        try:
            if self.client is None:
                # client_name makes redis-py send CLIENT SETNAME on every new connection.
                self.client = aioredis.Redis(**REDIS, client_name=CLIENT_NAME, socket_timeout=1,
                                             socket_connect_timeout=1, decode_responses=True)
            now = f"{time.time():.3f}"
            pipe = self.client.pipeline(transaction=False)
            pipe.set(f"nautilus:heartbeat:{NAME}", now, ex=15)
            pipe.xadd("nautilus:messagebus", {"engine": NAME, "kind": "heartbeat", "ts": now},
                      maxlen=1000, approximate=True)
            if NAME == "websocket":
                pipe.set(WS_STATS_KEY, json.dumps(self.published_stats()), ex=15)
            await asyncio.wait_for(pipe.execute(), 3)
        except Exception as exc:
            await self.drop()
            self.lost(exc)
            return
        self.last_beat = time.monotonic()
        if not self.up:
            log.info("MessageBus %s: redis %s:%s as client %s", "reconnected" if self.warned else "connected",
                     REDIS["host"], REDIS["port"], CLIENT_NAME)
            self.up, self.warned = True, False

    def lost(self, exc: BaseException) -> None:
        # One warning per outage: the loop retries every beat, quietly.
        if self.up:
            log.warning("MessageBus connection lost (%s); reconnecting in background", describe(exc))
        elif not self.warned:
            log.warning("MessageBus not reachable at %s:%s (%s); retrying in background",
                        REDIS["host"], REDIS["port"], describe(exc))
        self.up, self.warned = False, True

    async def drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.close(close_connection_pool=True), 1)
            except Exception:
                pass  # the socket is gone either way

    async def read_published_stats(self) -> dict | None:
        client = self.client
        if client is None or not self.connected() or "idle-bus" in self.faults:
            return None
        # Shielded: a request cancelled mid-command would leave a stale reply on a pooled
        # connection (redis-py 4.3). The callback reads any late exception so asyncio never logs it.
        read = asyncio.ensure_future(client.get(WS_STATS_KEY))
        read.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            raw = await asyncio.shield(read)
            return json.loads(raw) if raw else None
        except Exception:
            return None


class Database:
    """One connection used by one thread, so calls never interleave; rows are fire and forget."""

    def __init__(self) -> None:
        self.conn = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")
        self.pending = 0
        self.retry_at = 0.0
        self.warned = False

    def connect(self):
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

    def execute(self, sql: str, args: tuple) -> None:
        """Runs in the db thread. While the database is away, rows are dropped, not queued."""
        try:
            if self.conn is None:
                if time.monotonic() < self.retry_at:
                    return
                self.conn = self.connect()
                log.info("Database %s: %s@%s:%s/%s", "reconnected" if self.warned else "connected",
                         POSTGRES["user"], POSTGRES["host"], POSTGRES["port"], POSTGRES["dbname"])
                self.warned = False
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
        except Exception as exc:
            self.lost(exc)

    def lost(self, exc: BaseException) -> None:
        if not self.warned:
            state = "connection lost" if self.conn is not None else "not reachable"
            log.warning("Database %s (%s); rows are skipped until it is back", state, describe(exc))
            self.warned = True
        self.close()
        self.retry_at = time.monotonic() + DB_RETRY_S

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def record(self, sql: str, *args) -> None:
        """Fire and forget: a request never waits for the database."""
        if self.pending >= 50:  # the database hangs: drop rather than pile up
            return
        self.pending += 1
        future = asyncio.get_running_loop().run_in_executor(self.pool, self.execute, sql, args)
        future.add_done_callback(self.written)

    def written(self, _future) -> None:
        self.pending -= 1

    async def loop(self) -> None:
        while True:
            self.record("INSERT INTO engine_heartbeats (engine) VALUES (%s)", NAME)
            await asyncio.sleep(DB_BEAT_S)
