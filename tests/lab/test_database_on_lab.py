"""The PostgreSQL and Redis statistics checks against the lab: each bad fact made real, failed exactly, healed.

Lab faults are used where the lab has them (held-lock, long-query, slow-query,
dead-tuples, redis-fill, redis-evict, stop); the other conditions are created
here with psycopg / redis-py / the Docker SDK and always undone in `finally`.
Counters Redis keeps since start (rejected connections, command errors) are
healed with CONFIG RESETSTAT, as the lab's own heal does for evictions.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import redis

from conftest import LAB_INVENTORY, ROOT, derived_inventory, lab_container, run_checks

MINE = ("checks/test_postgres.py", "checks/test_redis.py")
INVENTORY = f"--inventory={LAB_INVENTORY}"
APP = "lab-test-database"  # not the suite's own name: these sessions must be judged


def run(tmp_path, tier: str):
    return run_checks(tmp_path, "-m", tier, INVENTORY, *MINE)


def assert_failed_exactly(result, expected: set[str]) -> None:
    assert result.outcomes, f"no checks ran:\n{result.output[-3000:]}"
    assert result.failed == expected, (f"unexpected: {sorted(result.failed - expected)}; "
                                       f"missing: {sorted(expected - result.failed)}\n{result.output[-3000:]}")


def pg(lab_password, **kw) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", dbname="nautilus", user="nautilus", password=lab_password,
                           application_name=APP, autocommit=True, connect_timeout=5, **kw)


def end_sessions(lab_password) -> None:
    with pg(lab_password) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (APP,))


@pytest.fixture
def rds(lab):
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10, decode_responses=True)
    yield client
    client.close()


@pytest.mark.usefixtures("lab")
@pytest.mark.parametrize("tier,count", [("daily", 13), ("weekly", 6)])
def test_healthy_lab_passes_database_checks(tmp_path, tier, count):
    started = time.monotonic()
    result = run(tmp_path, tier)
    assert_failed_exactly(result, set())
    assert len(result.outcomes) == count
    assert time.monotonic() - started < 30


# -- PostgreSQL ----------------------------------------------------------------

@pytest.mark.lab_fault
def test_held_lock_fails_idle_in_transaction_and_blocked(tmp_path, fault, heal):
    fault("held-lock", "postgres")
    time.sleep(6)  # past the lab's 5 s limits
    result = run(tmp_path, "daily")
    assert_failed_exactly(result, {"test_postgres_idle_in_transaction", "test_postgres_blocked_queries"})
    assert "(app lab-fault-held-lock" in result.messages["test_postgres_idle_in_transaction"]
    assert "waiting, blocked by pid" in result.messages["test_postgres_blocked_queries"]
    assert "in state idle in transaction" in result.messages["test_postgres_blocked_queries"]
    heal()
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_long_query_fails(tmp_path, fault, heal):
    fault("long-query", "postgres")
    time.sleep(6)
    result = run(tmp_path, "daily")
    assert_failed_exactly(result, {"test_postgres_long_queries"})
    assert "SELECT pg_sleep(600)" in result.messages["test_postgres_long_queries"]
    heal()
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_slow_query_fails(tmp_path, fault, heal):
    fault("slow-query", "postgres")
    result = run(tmp_path, "daily")
    assert_failed_exactly(result, {"test_postgres_slow_queries"})
    assert "SELECT pg_sleep($1)" in result.messages["test_postgres_slow_queries"]
    heal()
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_dead_tuples_fail(tmp_path, fault, heal):
    fault("dead-tuples", "postgres")
    result = run(tmp_path, "weekly")
    assert_failed_exactly(result, {"test_postgres_dead_tuples"})
    assert "public.lab_bloat 90 % (18000 dead)" in result.messages["test_postgres_dead_tuples"]
    heal()
    assert_failed_exactly(run(tmp_path, "weekly"), set())


@pytest.mark.lab_fault
def test_missing_pg_stat_statements_cannot_observe(tmp_path, lab_password):
    with pg(lab_password) as conn:
        conn.execute("DROP EXTENSION pg_stat_statements")
        try:
            result = run(tmp_path, "daily")
        finally:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    assert_failed_exactly(result, {"test_postgres_slow_queries"})
    assert "cannot observe: pg_stat_statements is not installed" in result.messages["test_postgres_slow_queries"]
    assert "CREATE EXTENSION pg_stat_statements" in result.messages["test_postgres_slow_queries"]
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_unused_index_fails_and_young_statistics_are_not_judged(tmp_path, lab_password):
    # The lab's statistics count from its PostgreSQL's start, minutes ago: by default the check declines to judge
    # them (every index would read "never scanned"); with db_index_stats_min_days 0 it judges at once.
    at_once = f"--inventory={derived_inventory(tmp_path, thresholds={'db_index_stats_min_days': 0})}"
    with pg(lab_password) as conn:
        conn.execute("CREATE TABLE lab_test_unused (id int PRIMARY KEY, note text)")
        try:
            conn.execute("CREATE INDEX lab_test_unused_note ON lab_test_unused (note)")
            young = run(tmp_path, "weekly")
            judged = run_checks(tmp_path, "-m", "weekly", at_once, *MINE)
        finally:
            conn.execute("DROP TABLE IF EXISTS lab_test_unused")
    assert_failed_exactly(young, set())
    assert young.outcomes["test_postgres_unused_indexes"] == "skipped", young.output[-3000:]
    assert "statistics too young to judge index use" in young.output  # the skip's reason (-ra)
    assert_failed_exactly(judged, {"test_postgres_unused_indexes"})
    message = judged.messages["test_postgres_unused_indexes"]
    assert "lab_test_unused_note on public.lab_test_unused" in message and "lab_test_unused_pkey" not in message
    assert_failed_exactly(run_checks(tmp_path, "-m", "weekly", at_once, *MINE), set())


@pytest.mark.lab_fault
def test_connections_near_max_fail(tmp_path, lab_password):
    with pg(lab_password) as conn:
        used, limit = conn.execute("SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
                                   "current_setting('max_connections')::int FROM pg_stat_activity").fetchone()
    extra = int(limit * 0.85) - used  # past 80 %, leaving slots for the suite and the engines
    conns: list = []
    try:
        threads = [threading.Thread(target=lambda: conns.append(pg(lab_password))) for _ in range(extra)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        result = run(tmp_path, "daily")
    finally:
        for c in conns:
            c.close()
    assert_failed_exactly(result, {"test_postgres_connections"})
    assert "lab-test-database @ " in result.messages["test_postgres_connections"] or \
        "of max_connections (100)" in result.messages["test_postgres_connections"]
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_more_than_twenty_active_fail(tmp_path, lab_password):
    conns = [pg(lab_password) for _ in range(21)]
    threads = [threading.Thread(target=_sleep, args=(c,), daemon=True) for c in conns]
    try:
        [t.start() for t in threads]
        time.sleep(0.5)
        result = run(tmp_path, "daily")  # sampled within ~3 s: below the lab's 5 s long-query limit
    finally:
        end_sessions(lab_password)  # terminated, so the sleeps never land in pg_stat_statements
        for c in conns:
            c.close()
    assert_failed_exactly(result, {"test_postgres_active_connections"})
    assert "21 active: lab-test-database x21" in result.messages["test_postgres_active_connections"]
    assert_failed_exactly(run(tmp_path, "daily"), set())


def _sleep(conn) -> None:
    try:
        conn.execute("SELECT pg_sleep(60)")
    except psycopg.Error:
        pass  # terminated by the test


# -- Redis -------------------------------------------------------------------------

@pytest.mark.lab_fault
def test_redis_fill_fails_memory(tmp_path, fault, heal):
    fault("redis-fill", "redis")
    result = run(tmp_path, "daily")
    assert_failed_exactly(result, {"test_redis_memory"})
    assert "CRITICAL" in result.messages["test_redis_memory"]
    heal()
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_redis_evict_fails_evictions(tmp_path, fault, heal):
    fault("redis-evict", "redis")
    result = run(tmp_path, "daily")
    # Evicting means Redis sits at maxmemory: the memory check fails with it.
    assert_failed_exactly(result, {"test_redis_evictions", "test_redis_memory"})
    assert "keys evicted in the last" in result.messages["test_redis_evictions"]
    heal()
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_no_maxmemory_fails_memory(tmp_path, rds):
    before = rds.config_get("maxmemory")["maxmemory"]
    rds.config_set("maxmemory", 0)
    try:
        result = run(tmp_path, "daily")
    finally:
        rds.config_set("maxmemory", before)
    assert_failed_exactly(result, {"test_redis_memory"})
    assert "no maxmemory set" in result.messages["test_redis_memory"]
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_rejected_connections_fail(tmp_path, rds):
    before = rds.config_get("maxclients")["maxclients"]
    extra: list[redis.Redis] = []
    try:
        rds.config_set("maxclients", int(rds.info("clients")["connected_clients"]) + 2)
        for _ in range(5):
            client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
            extra.append(client)
            try:
                client.ping()
            except redis.ConnectionError:
                pass  # "max number of clients reached": the rejection this test is after
        for client in extra:
            client.close()
        rds.config_set("maxclients", before)
        assert int(rds.info("stats")["rejected_connections"]) > 0
        result = run(tmp_path, "daily")
    finally:
        rds.config_set("maxclients", before)
        rds.config_resetstat()
    assert_failed_exactly(result, {"test_redis_rejected_connections"})
    assert "rejected in the last" in result.messages["test_redis_rejected_connections"]
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_failing_commands_fail_commandstats(tmp_path, rds):
    rds.set("lab:test:not-a-number", "x")
    try:
        for _ in range(50):
            try:
                rds.incr("lab:test:not-a-number")
            except redis.ResponseError:
                pass
            try:  # an idempotent consumer-group create: BUSYGROUP from the second on, expected and not counted
                rds.xgroup_create("lab:test:stream", "lab-test-group", mkstream=True)
            except redis.ResponseError:
                pass
        result = run(tmp_path, "weekly")
    finally:
        rds.delete("lab:test:not-a-number", "lab:test:stream")
        rds.config_resetstat()
    assert_failed_exactly(result, {"test_redis_commandstats"})
    assert "incrby: 100 % (50 failed" in result.messages["test_redis_commandstats"]
    assert "xgroup" not in result.messages["test_redis_commandstats"]
    assert_failed_exactly(run(tmp_path, "weekly"), set())


BUSY_SCRIPT = "local i = 0 while i < tonumber(ARGV[1]) do i = i + 1 end return i"


@pytest.mark.lab_fault
def test_blocked_redis_fails_latency(tmp_path, rds):
    # A Lua loop blocks Redis as a slow command would; calibrated to ~300 ms a call.
    start = time.perf_counter()
    rds.eval(BUSY_SCRIPT, 0, 3_000_000)
    loops = int(3_000_000 * 0.3 / max(time.perf_counter() - start, 0.01))
    stop = threading.Event()
    # Two clients back to back, so Redis is never free for long: any PING waits behind a script.
    busy = [redis.Redis(host="127.0.0.1", port=6379, socket_timeout=10) for _ in range(2)]

    def block(client):
        while not stop.is_set():
            client.eval(BUSY_SCRIPT, 0, loops)

    workers = [threading.Thread(target=block, args=(c,), daemon=True) for c in busy]
    [w.start() for w in workers]
    try:
        result = run(tmp_path, "daily")
    finally:
        stop.set()
        for w, c in zip(workers, busy):
            w.join(timeout=10)
            c.close()
    assert_failed_exactly(result, {"test_redis_latency"})
    assert "within 50 ms" in result.messages["test_redis_latency"]  # the lab inventory's bound
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_failed_snapshot_fails_persistence(tmp_path, rds):
    container = lab_container("nautilus-redis")
    mode = container.exec_run(["stat", "-c", "%a", "/data"]).output.decode().strip()
    # By default a failed snapshot makes Redis refuse every write (MISCONF), which takes the
    # engines off the bus and the suite's own handshake with them; this test is after the
    # persistence check alone, so writes stay allowed while the snapshot fails.
    stop_writes = rds.config_get("stop-writes-on-bgsave-error")["stop-writes-on-bgsave-error"]
    rds.config_set("stop-writes-on-bgsave-error", "no")
    try:
        container.exec_run(["chmod", "555", "/data"], user="root")
        rds.bgsave()
        _wait_bgsave(rds)
        assert rds.info("persistence")["rdb_last_bgsave_status"] == "err"
        result = run(tmp_path, "daily")
    finally:
        container.exec_run(["chmod", mode, "/data"], user="root")
        _wait_bgsave(rds)
        rds.bgsave()
        _wait_bgsave(rds)
        rds.config_set("stop-writes-on-bgsave-error", stop_writes)
    assert_failed_exactly(result, {"test_redis_persistence"})
    assert "rdb_last_bgsave_status is err" in result.messages["test_redis_persistence"]
    assert_failed_exactly(run(tmp_path, "daily"), set())


def _wait_bgsave(rds) -> None:
    deadline = time.monotonic() + 30
    while rds.info("persistence")["rdb_bgsave_in_progress"] and time.monotonic() < deadline:
        time.sleep(0.2)


# -- both down -----------------------------------------------------------------------

@pytest.mark.lab_fault
def test_stopped_backends_cannot_observe(tmp_path, fault, heal):
    fault("stop", "postgres")
    fault("stop", "redis")
    daily, weekly = run(tmp_path, "daily"), run(tmp_path, "weekly")
    heal()
    assert daily.failed == set(daily.outcomes) and len(daily.outcomes) == 13
    assert weekly.failed == set(weekly.outcomes) and len(weekly.outcomes) == 6
    assert "cannot observe: postgresql: PostgreSQL at 127.0.0.1:5432 unreachable" in \
        daily.messages["test_postgres_connections"]
    assert "cannot observe: redis: Redis at 127.0.0.1:6379 unreachable" in daily.messages["test_redis_memory"]
    time.sleep(3)
    assert_failed_exactly(run(tmp_path, "daily"), set())


@pytest.mark.lab_fault
def test_frozen_servers_fail_redis_ping_and_postgres_ready_as_their_own_findings(tmp_path, fault, heal):
    """Running containers, open ports, and servers that say nothing (SIGSTOP): the one question only they can
    answer fails, as a fact, with restart as the fix; what needs their figures is blocked, not failed."""
    fault("freeze", "redis")
    fault("freeze", "postgres")
    frozen = run_checks(tmp_path, "-m", "emergency", INVENTORY)
    heal()
    assert frozen.roots == {"test_redis_ping", "test_postgres_ready"}, frozen.output[-3000:]
    for name, fix in (("test_redis_ping", "restart-redis"), ("test_postgres_ready", "restart-postgres")):
        assert "did not answer: hung or overloaded?" in frozen.messages[name], frozen.messages[name]
        assert fix in frozen.messages[name]
    assert frozen.outcomes["test_container_running[nautilus-redis]"] == "passed"
    assert frozen.outcomes["test_port_open[port-6379]"] == frozen.outcomes["test_port_open[port-5432]"] == "passed"
    again = run_checks(tmp_path, "-m", "emergency", INVENTORY)
    assert again.outcomes["test_redis_ping"] == again.outcomes["test_postgres_ready"] == "passed", again.output[-3000:]



# -- Real figures against lowered bounds ------------------------------------------

def test_the_databases_real_size_tables_version_and_vacuum_ages_cross_lowered_bounds(tmp_path, lab_password):
    """A 100 GB database, a 20 GB table, a PostgreSQL older than 13 or a week without vacuum cannot be made here:
    the lab's real figures are judged against bounds set below them, and the vacuum the check names is run for
    real (the remediation helper, as printed) and makes the check pass under the same bound."""
    with pg(lab_password) as conn:
        major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0]
        counting_s = conn.execute("SELECT extract(epoch FROM now() - coalesce((SELECT stats_reset FROM "
                                  "pg_stat_database WHERE datname = current_database()), "
                                  "pg_postmaster_start_time()))").fetchone()[0]
    vacuum_bound_s = 20
    # A written table never vacuumed counts as overdue only once the statistics count longer than the bound.
    time.sleep(max(0.0, vacuum_bound_s + 2 - float(counting_s)))
    inventory = derived_inventory(tmp_path, {"db_size_max_gb": 0.001, "db_table_max_gb": 0.000001,
                                             "db_min_major_version": major + 1,
                                             "db_vacuum_max_age_days": vacuum_bound_s / 86400})
    selection = ("-k", "postgres_size or postgres_version or postgres_largest_tables or postgres_vacuum_recent")
    run = run_checks(tmp_path, "-m", "daily or weekly", f"--inventory={inventory}", *MINE, *selection)
    assert_failed_exactly(run, {"test_postgres_size", "test_postgres_version", "test_postgres_largest_tables",
                                "test_postgres_vacuum_recent"})
    assert "at most 0.001 GB" in run.messages["test_postgres_size"]
    assert f"PostgreSQL {major + 1} or newer" in run.messages["test_postgres_version"]
    assert "never vacuumed" in run.messages["test_postgres_vacuum_recent"] or \
        "days ago" in run.messages["test_postgres_vacuum_recent"]
    assert "vacuum-analyze" in run.messages["test_postgres_vacuum_recent"]

    env = dict(os.environ, NAUTILUS_AUDIT_LOG=str(tmp_path / "audit.log"))
    vacuum = subprocess.run([sys.executable, "-m", "remediation", "vacuum-analyze", f"--inventory={inventory}",
                             "--apply"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                            stdin=subprocess.DEVNULL)
    assert vacuum.returncode == 0 and "VACUUM ANALYZE done" in vacuum.stdout, vacuum.stdout + vacuum.stderr
    again = run_checks(tmp_path, "-m", "weekly", f"--inventory={inventory}", *MINE, "-k", "postgres_vacuum_recent")
    assert_failed_exactly(again, set())
