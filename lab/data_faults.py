"""Faults in the lab's data services and host folders: PostgreSQL, Redis, backups, logs, WebSocket clients.

Everything injected here is lab-owned and recognisable, so healing removes
exactly that: sessions with application_name `lab-fault-*`, the tables
`lab_locktest` and `lab_bloat`, Redis keys `lab:fill:*`, the files
`planted-*.log` and the backup the empty-backup fault planted, the backups it
moved to `backups-aside/`, and the WebSocket holder the lab started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from . import BACKUP_ASIDE_DIR, BACKUP_DIR, LAB_DIR, LOG_DIR, STATE_DIR, LabError
from .docker_access import client, compose_env
from .maintenance import BACKUP_PREFIX, BACKUP_SUFFIX, backups_of, today
from .ownership import owned_container
from .topology import find

DAY_S = 86400
PLANTED_LOGS = {"planted-old.log": 10, "planted-ancient.log": 40}  # name: age in days
SESSION_MARK = "lab.pg_session"
REDIS_FILL_PATTERN = "lab:fill:*"
REDIS_FILL_TARGET = 0.93      # redis-fill: used_memory above 90 % of maxmemory, short of refusing writes
REDIS_VALUE = b"\xa5" * (256 << 10)
REDIS_POLICY = "noeviction"   # compose.yaml's maxmemory-policy
EVICT_POLICY = "allkeys-lru"
WS_HOLDER_CONTAINER = "nautilus-backend"
WS_HOLDER = "/opt/engine/ws_holder.py"
WS_MAX = 2000
SLOW_QUERY = "SELECT pg_sleep(1.2)"
SLOW_QUERY_RUNS = 3


# -- host folders -------------------------------------------------------------

def plant_old_logs() -> str:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for name, days in PLANTED_LOGS.items():
        path = LOG_DIR / name
        stamp = time.time() - days * DAY_S
        path.write_text(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))} "
                        f"lab fault old-log: a {days}-day-old log nobody rotated\n")
        os.utime(path, (stamp, stamp))
    return f"planted {', '.join(PLANTED_LOGS)} in {LOG_DIR} (10 and 40 days old)"


def set_backups_aside(plant_empty: bool) -> tuple[str, dict]:
    """Move today's backups to backups-aside/ (never deleted); optionally plant an empty one."""
    BACKUP_ASIDE_DIR.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in backups_of(today()):
        target = BACKUP_ASIDE_DIR / path.name
        if target.exists():
            raise LabError(f"{target} already exists: run python -m lab heal first")
        os.replace(path, target)
        moved.append(path.name)
    record = {"moved": moved}
    said = f"moved {len(moved)} backup(s) of today to {BACKUP_ASIDE_DIR}"
    if plant_empty:
        planted = BACKUP_DIR / f"{BACKUP_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}{BACKUP_SUFFIX}"
        planted.touch()
        record["planted"] = planted.name
        said += f"; planted the empty {planted.name}"
    return said, record


def heal_host(records: list[dict]) -> list[str]:
    done = []
    for name in PLANTED_LOGS:
        path = LOG_DIR / name
        if path.exists():
            path.unlink()
            done.append(f"removed {path}")
    for record in records:
        planted = record.get("planted")
        path = BACKUP_DIR / planted if planted else None
        if path is not None and path.exists() and path.stat().st_size == 0:  # only the empty file we made
            path.unlink()
            done.append(f"removed the planted empty backup {planted}")
    if BACKUP_ASIDE_DIR.is_dir():
        for path in sorted(BACKUP_ASIDE_DIR.iterdir()):
            target = BACKUP_DIR / path.name
            if target.exists():
                done.append(f"kept {path} aside: {target} exists")
                continue
            os.replace(path, target)
            done.append(f"restored {target.name}")
        if not any(BACKUP_ASIDE_DIR.iterdir()):
            BACKUP_ASIDE_DIR.rmdir()
    return done


# -- PostgreSQL -------------------------------------------------------------------

def pg_params() -> dict:
    return {"host": "127.0.0.1", "port": find("postgres").port, "dbname": "nautilus", "user": "nautilus",
            "password": compose_env()["NAUTILUS_POSTGRES_PASSWORD"], "connect_timeout": 5}


def pg_connect(app: str):
    import psycopg
    return psycopg.connect(**pg_params(), application_name=app, autocommit=True)


def slow_query() -> str:
    with pg_connect("lab-fault-slow-query") as conn:
        for _ in range(SLOW_QUERY_RUNS):
            conn.execute(SLOW_QUERY)
        mean = conn.execute("SELECT max(mean_exec_time) FROM pg_stat_statements "
                            "WHERE query LIKE 'SELECT pg_sleep(%'").fetchone()[0]
    return f"ran {SLOW_QUERY} {SLOW_QUERY_RUNS} times: pg_stat_statements mean {mean:.0f} ms"


def dead_tuples() -> str:
    with pg_connect("lab-fault-dead-tuples") as conn:
        conn.execute("DROP TABLE IF EXISTS lab_bloat")
        conn.execute("CREATE TABLE lab_bloat (id int, pad text) "
                     "WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)")
        conn.execute("INSERT INTO lab_bloat SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
        conn.execute("DELETE FROM lab_bloat WHERE id % 10 <> 0")
        conn.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15: the counters are visible at once
    return "lab_bloat: 20000 rows inserted, 18000 deleted, autovacuum off"


def start_session(kind: str) -> str:
    """Start `python -m lab.pg_session KIND` and wait until its sessions are in place."""
    stop_sessions(kind)
    params = pg_params()
    env = dict(os.environ, PGHOST=params["host"], PGPORT=str(params["port"]), PGDATABASE=params["dbname"],
               PGUSER=params["user"], PGPASSWORD=params["password"], PGCONNECT_TIMEOUT="5")
    STATE_DIR.mkdir(exist_ok=True)
    log_file = STATE_DIR / f"pg-session-{kind}.log"
    with log_file.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", SESSION_MARK, kind], cwd=LAB_DIR.parent, env=env,
                                start_new_session=True, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    (STATE_DIR / f"pg-session-{kind}.pid").write_text(str(proc.pid))
    app = f"lab-fault-{kind}"
    ready = ("SELECT count(*) FILTER (WHERE state = 'idle in transaction'), "
             "count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity WHERE application_name = %s"
             if kind == "held-lock" else
             "SELECT count(*) FILTER (WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(600)%%'), 1 "
             "FROM pg_stat_activity WHERE application_name = %s")
    deadline = time.monotonic() + 20
    with pg_connect("lab-fault-observer") as conn:
        while True:
            holding, waiting = conn.execute(ready, (app,)).fetchone()
            if holding >= 1 and waiting >= 1:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                stop_sessions(kind)
                raise LabError(f"{kind}: sessions not in place: {detail[0]}")
            time.sleep(0.2)
    if kind == "held-lock":
        return "lab_locktest locked ACCESS EXCLUSIVE by a session idle in transaction; a second session waits"
    return "a session runs SELECT pg_sleep(600)"


def stop_sessions(kind: str | None = None) -> list[str]:
    """SIGTERM to the lab's own session processes (checked by their command line)."""
    done = []
    for pid_file in STATE_DIR.glob(f"pg-session-{kind or '*'}.pid"):
        pid = int(pid_file.read_text().strip() or 0)
        if pid and SESSION_MARK in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)
            done.append(f"stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink()
        pid_file.with_suffix(".log").unlink(missing_ok=True)
    return done


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def heal_postgres(reset_statements: bool) -> list[str]:
    done = []
    with pg_connect("lab-heal") as conn:
        # Waiters first: a blocked statement ended by termination never completes, so
        # it never lands in pg_stat_statements as a slow query.
        for which in ("wait_event_type = 'Lock'", "true"):
            ended = conn.execute(
                "SELECT pid, application_name, pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                f"WHERE application_name LIKE 'lab-fault-%' AND pid <> pg_backend_pid() AND {which}").fetchall()
            done += [f"terminated postgres session {pid} ({app})" for pid, app, _ in ended]
        done += stop_sessions()
        conn.execute("SET lock_timeout = '5s'")
        for table in ("lab_locktest", "lab_bloat"):
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
                conn.execute(f"DROP TABLE {table}")
                done.append(f"dropped table {table}")
        if not reset_statements:
            reset_statements = conn.execute(
                "SELECT count(*) FROM pg_stat_statements WHERE query LIKE 'SELECT pg_sleep(%' "
                "AND mean_exec_time > 1000").fetchone()[0] > 0
        if reset_statements:
            conn.execute("SELECT pg_stat_statements_reset()")
            done.append("pg_stat_statements reset")
    return done


# -- Redis --------------------------------------------------------------------------

def redis_client():
    import redis
    return redis.Redis(host="127.0.0.1", port=find("redis").port, socket_timeout=10)


def _fill(r, until) -> int:
    """SET lab:fill:<n> in batches until until(info) says stop; returns keys written."""
    n = int(r.get("lab:fill:next") or 0)
    written = 0
    while True:
        info = {**r.info("memory"), **r.info("stats")}
        if until(info) or written > 4096:
            break
        pipe = r.pipeline(transaction=False)
        for i in range(n, n + 16):
            pipe.set(f"lab:fill:{i}", REDIS_VALUE)
        pipe.execute()
        n, written = n + 16, written + 16
    r.set("lab:fill:next", n)
    return written


def redis_fill() -> str:
    r = redis_client()
    maxmemory = int(r.config_get("maxmemory")["maxmemory"])
    if not maxmemory:
        raise LabError("redis has no maxmemory: nothing to fill towards")
    limit = REDIS_FILL_TARGET * maxmemory
    # Small steps near the target: the next batch must not reach maxmemory (noeviction refuses writes).
    written = _fill(r, lambda info: info["used_memory"] >= limit
                    or info["used_memory"] + 17 * len(REDIS_VALUE) * 1.3 > maxmemory)
    used = int(r.info("memory")["used_memory"])
    if used < 0.9 * maxmemory:
        raise LabError(f"redis-fill reached only {100 * used / maxmemory:.0f} % of maxmemory")
    return f"{written} keys lab:fill:* written: used_memory {100 * used / maxmemory:.1f} % of maxmemory"


def redis_evict() -> tuple[str, dict]:
    r = redis_client()
    before = r.config_get("maxmemory-policy")["maxmemory-policy"]
    r.config_set("maxmemory-policy", EVICT_POLICY)
    written = _fill(r, lambda info: int(info["evicted_keys"]) > 0)
    evicted = int(r.info("stats")["evicted_keys"])
    if not evicted:
        raise LabError("redis-evict: no key was evicted")
    return (f"maxmemory-policy {EVICT_POLICY}; {written} keys lab:fill:* written, evicted_keys {evicted}",
            {"policy": before})


def heal_redis(records: list[dict], restarted: bool = False) -> list[str]:
    """Redis as `up` leaves it. `restarted`: this heal brought Redis back; the engines' commands it refused while
    loading its data count as rejected calls until stats are reset, and over the few seconds since the start
    they weigh more than 1 % of all calls: the next test's redis-commandstats would judge the heal."""
    done = []
    r = redis_client()
    evicted = any(rec["kind"] == "redis-evict" for rec in records)
    policy = r.config_get("maxmemory-policy")["maxmemory-policy"]
    if policy == EVICT_POLICY:
        wanted = next((rec["policy"] for rec in records if rec.get("policy")), REDIS_POLICY)
        r.config_set("maxmemory-policy", wanted)
        done.append(f"redis maxmemory-policy back to {wanted}")
    keys, batch = 0, []
    for key in r.scan_iter(match=REDIS_FILL_PATTERN, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            keys += r.unlink(*batch)
            batch = []
    if batch:
        keys += r.unlink(*batch)
    if keys:
        done.append(f"unlinked {keys} redis keys {REDIS_FILL_PATTERN}")
        r.memory_purge()
    if evicted or restarted or int(r.info("stats")["evicted_keys"]) > 0:
        r.config_resetstat()
        done.append("redis CONFIG RESETSTAT")
    return done


# -- WebSocket clients ------------------------------------------------------------

def ws_active() -> int | None:
    """Open connections as the websocket engine reports them (either contract)."""
    port = find("websocket").port
    try:
        stats = requests.get(f"http://127.0.0.1:{port}/websocket/stats", timeout=5)
        if stats.ok:
            return int(stats.json()["data"]["connection_stats"]["active_connections"])
        return int(requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["active_connections"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def ws_connections(count: int) -> str:
    if not 1 <= count <= WS_MAX:
        raise LabError(f"--count must be between 1 and {WS_MAX}")
    stop_ws_holder()
    engine = find("websocket")
    url = f"ws://{engine.container}:{engine.port}/ws"
    backend = owned_container(client(), WS_HOLDER_CONTAINER)
    backend.exec_run(["python3", WS_HOLDER, url, str(count)], detach=True)
    deadline = time.monotonic() + 60
    while (ws_active() or 0) < count:
        if time.monotonic() > deadline:
            status = backend.exec_run(["cat", "/tmp/lab-ws-holder.status"]).output.decode().strip()
            stop_ws_holder()
            raise LabError(f"ws-connections: the holder reached {status or 'nothing'} "
                           f"(engine reports {ws_active()})")
        time.sleep(0.3)
    return f"{count} WebSocket connections to {url} held open from {WS_HOLDER_CONTAINER}"


def stop_ws_holder() -> list[str]:
    import docker
    try:
        backend = owned_container(client(), WS_HOLDER_CONTAINER)
        if backend.status != "running":
            return []
        out = backend.exec_run(["python3", WS_HOLDER, "--stop"]).output.decode().strip()
    except docker.errors.DockerException:
        return []
    return [f"{out} in {WS_HOLDER_CONTAINER}"] if out.startswith("stopped") else []
