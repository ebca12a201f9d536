"""The PostgreSQL and Redis checks on constructed samples: healthy passes, each bad fact fails with its message."""
from __future__ import annotations

import json

import pytest

from checks import test_postgres as pgc
from checks import test_redis as rc
from fixtures.verdict import Verdict
from observation.errors import Unobservable, Unobserved
from observation.inventory import load_inventory
from observation.postgres_stats import PostgresStats
from observation.redis_stats import (
    RedisStats,
    commands,
    error_pct,
    persistence_problems,
)

INV = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
GB = 1024 ** 3


def session(pid, state="idle", app="nautilus-risk-engine", **extra):
    base = {"pid": pid, "usename": "nautilus", "application_name": app, "client_addr": "172.18.0.5",
            "state": state, "query_age_s": 0.5, "state_age_s": 0.5, "wait_event_type": None, "wait_event": None,
            "blocked_by": [], "lock_wait_s": 0.5, "query": "SELECT 1"}
    return {**base, **extra}


def table(name="public.t", live=5000, dead=10, writes=100, vacuum=1.0, analyze=1.0, size=8192):
    return {"name": name, "live": live, "dead": dead, "writes": writes, "vacuum_age_days": vacuum,
            "analyze_age_days": analyze, "total_bytes": size}


def pg(**changes) -> PostgresStats:
    base = {"version_num": 150018, "version": "15.18", "database": "nautilus", "size_bytes": 8 * 1024 ** 2,
                "max_connections": 100, "stats_window_days": 30.0, "stats_since": "2026-01-01",
                "sessions": [session(i) for i in range(10)], "tables": [table()], "unused_indexes": [],
                "statements": [{"queryid": 1, "calls": 10, "mean_ms": 3.0, "query": "SELECT 1", "slow_count": 0}]}
    return PostgresStats(**{**base, **changes})


def fails(check, sample, match, **kw):
    with pytest.raises(pytest.fail.Exception, match=match):
        check(sample, verdict=Verdict("t"), **kw)


PG_CHECKS = [pgc.test_postgres_version, pgc.test_postgres_size, pgc.test_postgres_connections,
             pgc.test_postgres_active_connections, pgc.test_postgres_idle_in_transaction,
             pgc.test_postgres_blocked_queries, pgc.test_postgres_long_queries, pgc.test_postgres_slow_queries,
             pgc.test_postgres_dead_tuples, pgc.test_postgres_vacuum_recent, pgc.test_postgres_largest_tables]


@pytest.mark.parametrize("check", PG_CHECKS, ids=lambda c: c.__name__)
def test_healthy_postgres_passes(check):
    check(pg(), inventory=INV, verdict=Verdict("postgres"))


def test_healthy_postgres_passes_unused_indexes():
    pgc.test_postgres_unused_indexes(pg(), inventory=INV, verdict=Verdict("postgres"))


@pytest.mark.parametrize("check", PG_CHECKS, ids=lambda c: c.__name__)
def test_unreachable_postgres_cannot_observe(check):
    with pytest.raises(Unobservable, match="unreachable"):
        check(Unobserved("PostgreSQL at 127.0.0.1:5432 unreachable"), inventory=INV, verdict=Verdict("postgres"))


def test_old_version_fails():
    fails(pgc.test_postgres_version, pg(version_num=120005, version="12.5"), r"PostgreSQL 13 or newer.*12\.5",
          inventory=INV)


def test_big_database_fails():
    fails(pgc.test_postgres_size, pg(size_bytes=101 * GB), r"at most 100 GB; saw 101.00 GB", inventory=INV)


def test_connections_near_max_fail_and_say_who_holds_them():
    sessions = ([session(i, app="leaky-pool", client_addr="172.18.0.7") for i in range(55)]
                + [session(100 + i, state="idle in transaction", app="leaky-pool", client_addr="172.18.0.7")
                   for i in range(10)]
                + [session(200 + i, state="active", app="nautilus-risk-engine") for i in range(12)]
                + [session(300 + i, app="nautilus-risk-engine") for i in range(4)]
                + [session(400, app="", client_addr=None), session(401, app="psql", client_addr="10.0.0.9"),
                   session(402, app="psql", client_addr="10.0.0.9", state="active")])
    verdict = Verdict("postgres")
    with pytest.raises(pytest.fail.Exception) as failure:
        pgc.test_postgres_connections(pg(sessions=sessions), inventory=INV, verdict=verdict)
    assert str(failure.value) == (
        "[postgres] expected at most 80 % of max_connections (100); saw 84 connections (84 %), held by "
        "leaky-pool @ 172.18.0.7: 65 (55 idle, 10 idle in transaction); "
        "nautilus-risk-engine @ 172.18.0.5: 16 (12 active, 4 idle); psql @ 10.0.0.9: 2 (1 idle, 1 active); "
        "1 more holding 1")
    facts = dict(verdict.records)
    assert json.loads(facts["evidence:holders"]) == [
        {"application": "leaky-pool", "client": "172.18.0.7", "connections": 65, "idle": 55,
         "idle in transaction": 10},
        {"application": "nautilus-risk-engine", "client": "172.18.0.5", "connections": 16, "active": 12, "idle": 4},
        {"application": "psql", "client": "10.0.0.9", "connections": 2, "idle": 1, "active": 1},
        {"application": "-", "client": "local", "connections": 1, "idle": 1}]
    assert facts["remedy"] == "postgres-sessions" and "advice" not in facts  # mostly idle: name and end them


def test_connections_held_busy_get_advice_not_the_idle_session_helper():
    sessions = [session(i, state="active", app="batch", client_addr="10.0.0.3") for i in range(85)]
    verdict = Verdict("postgres")
    with pytest.raises(pytest.fail.Exception):
        pgc.test_postgres_connections(pg(sessions=sessions), inventory=INV, verdict=verdict)
    facts = dict(verdict.records)
    assert facts["advice"].startswith("find why batch @ 10.0.0.3 holds 85 busy sessions") and "remedy" not in facts


def test_more_than_twenty_active_fail():
    sessions = [session(i, state="active", app="analytics") for i in range(21)]
    fails(pgc.test_postgres_active_connections, pg(sessions=sessions), r"at most 20 active.*21 active: analytics x21",
          inventory=INV)
    pgc.test_postgres_active_connections(pg(sessions=sessions[:20]), inventory=INV, verdict=Verdict("t"))


def test_idle_in_transaction_fails_with_pid_app_client_age():
    sessions = [session(1), session(42, state="idle in transaction", app="risk", state_age_s=75.0)]
    fails(pgc.test_postgres_idle_in_transaction, pg(sessions=sessions),
          r"longer than 60 s; saw 1: pid 42 \(app risk, client 172.18.0.5\) 75 s", inventory=INV)
    young = [session(42, state="idle in transaction", state_age_s=30.0)]
    pgc.test_postgres_idle_in_transaction(pg(sessions=young), inventory=INV, verdict=Verdict("t"))


def test_blocked_query_names_blocker_and_blocked():
    sessions = [session(7, state="idle in transaction", app="holder", state_age_s=40.0),
                session(8, state="active", app="waiter", blocked_by=[7], lock_wait_s=15.0, query_age_s=15.0)]
    fails(pgc.test_postgres_blocked_queries, pg(sessions=sessions),
          r"pid 8 \(app waiter.*\) 15 s waiting, blocked by pid 7 \(app holder.*\) 40 s in state idle in transaction",
          inventory=INV)


def test_long_query_fails_but_not_a_lock_wait():
    running = session(9, state="active", query_age_s=90.0, query="SELECT big()")
    fails(pgc.test_postgres_long_queries, pg(sessions=[running]), r"longer than 60 s; saw pid 9 .* 90 s: SELECT big",
          inventory=INV)
    waiting = session(9, state="active", query_age_s=90.0, blocked_by=[3])
    pgc.test_postgres_long_queries(pg(sessions=[waiting]), inventory=INV, verdict=Verdict("t"))


def test_slow_statement_fails():
    slow = [{"queryid": 1, "calls": 3, "mean_ms": 1201.5, "query": "SELECT pg_sleep($1)", "slow_count": 1}]
    fails(pgc.test_postgres_slow_queries, pg(statements=slow),
          r"mean time above 1000 ms; saw 1 statement\(s\), slowest: 1201.5 ms x3: SELECT pg_sleep", inventory=INV)


def test_missing_pg_stat_statements_cannot_observe_never_passes():
    with pytest.raises(Unobservable, match="CREATE EXTENSION pg_stat_statements.*shared_preload_libraries"):
        pgc.test_postgres_slow_queries(pg(statements=Unobserved(
            "pg_stat_statements is not installed in this database: run CREATE EXTENSION pg_stat_statements "
            "(with pg_stat_statements in shared_preload_libraries, then a restart)")), inventory=INV,
            verdict=Verdict("t"))


def test_dead_tuples_fail_only_on_big_enough_tables():
    fails(pgc.test_postgres_dead_tuples, pg(tables=[table(live=3000, dead=1000)]),
          r"public.t 25 % \(1000 dead\)", inventory=INV)
    pgc.test_postgres_dead_tuples(pg(tables=[table(live=400, dead=600)]), inventory=INV, verdict=Verdict("t"))


def test_vacuum_overdue_fails_and_unwritten_tables_are_not_judged():
    fails(pgc.test_postgres_vacuum_recent, pg(tables=[table(vacuum=9.0)]), r"public.t: vacuum 9.0 days ago",
          inventory=INV)
    fails(pgc.test_postgres_vacuum_recent, pg(tables=[table(vacuum=None, analyze=None)]),
          r"never vacuumed, never analyzed", inventory=INV)
    pgc.test_postgres_vacuum_recent(pg(tables=[table(writes=0, vacuum=None, analyze=None)]), inventory=INV,
                                    verdict=Verdict("t"))
    # A young statistics window cannot tell "never" from "new".
    pgc.test_postgres_vacuum_recent(pg(tables=[table(vacuum=None)], stats_window_days=1.0), inventory=INV,
                                    verdict=Verdict("t"))


def test_unused_index_fails():
    unused = [{"table": "public.t", "index": "t_note_idx", "bytes": 16384}]
    with pytest.raises(pytest.fail.Exception, match=r"1 never scanned since 2026-01-01: t_note_idx on public.t"):
        pgc.test_postgres_unused_indexes(pg(unused_indexes=unused), inventory=INV, verdict=Verdict("t"))


def test_unused_indexes_are_not_judged_on_young_statistics():
    # Seen on a deployment: statistics 8 minutes old, and DROP INDEX advised on all 51 indexes.
    unused = [{"table": "public.t", "index": f"t_idx_{i}", "bytes": 8192} for i in range(51)]
    verdict = Verdict("t")
    with pytest.raises(pytest.skip.Exception, match=r"statistics too young to judge index use: counting for 8 minutes "
                                                    r"\(since 2026-12-07 10:00\), under 7 days \(db_index_stats_min_days\)"):
        pgc.test_postgres_unused_indexes(pg(unused_indexes=unused, stats_window_days=8 / 1440,
                                            stats_since="2026-12-07 10:00"), inventory=INV, verdict=verdict)
    assert "advice" not in dict(verdict.records)
    with pytest.raises(pytest.fail.Exception, match=r"51 never scanned"):  # a week on, they are judged
        pgc.test_postgres_unused_indexes(pg(unused_indexes=unused, stats_window_days=7.0), inventory=INV,
                                         verdict=Verdict("t"))
    at_once = INV.model_copy(update={"thresholds": INV.thresholds.model_copy(update={"db_index_stats_min_days": 0})})
    with pytest.raises(pytest.fail.Exception, match=r"51 never scanned"):  # 0: judged however young
        pgc.test_postgres_unused_indexes(pg(unused_indexes=unused, stats_window_days=8 / 1440), inventory=at_once,
                                         verdict=Verdict("t"))


def test_largest_table_above_limit_fails():
    fails(pgc.test_postgres_largest_tables, pg(tables=[table(size=21 * GB), table("public.small")]),
          r"at most 20 GB.*public.t 21.00 GB", inventory=INV)


# -- Redis ----------------------------------------------------------------------

def redis(info=None, commandstats=None, save="3600 1 300 100 60 10000", pings=(0.2, 0.3, 0.25),
          errorstats=None) -> RedisStats:
    base = {"uptime_in_seconds": 3600, "connected_clients": 12, "maxclients": 10000, "used_memory": 20 << 20,
            "used_memory_human": "20.00M", "maxmemory": 200 << 20, "maxmemory_human": "200.00M",
            "maxmemory_policy": "noeviction", "evicted_keys": 0, "rejected_connections": 0, "aof_enabled": 1,
            "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok", "rdb_last_bgsave_status": "ok",
            "rdb_last_save_time": 4102444800, "rdb_changes_since_last_save": 10}
    cmds = {"set": {"calls": 1000, "usec": 10, "failed_calls": 0, "rejected_calls": 0}}
    return RedisStats({**base, **(info or {})}, commandstats if commandstats is not None else cmds, save, list(pings),
                      errorstats or {})


REDIS_CHECKS = [rc.test_redis_memory, rc.test_redis_latency, rc.test_redis_persistence, rc.test_redis_commandstats]


@pytest.mark.parametrize("check", REDIS_CHECKS, ids=lambda c: c.__name__)
def test_healthy_redis_passes(check):
    check(redis(), inventory=INV, verdict=Verdict("redis"))


def test_healthy_redis_passes_counters():
    rc.test_redis_evictions(redis(), verdict=Verdict("redis"))
    rc.test_redis_rejected_connections(redis(), verdict=Verdict("redis"))


def test_redis_memory_above_warning_fails_and_says_level():
    fails(rc.test_redis_memory, redis({"used_memory": 190 << 20}), r"at most 80 % of maxmemory; saw 95 % .*CRITICAL",
          inventory=INV)
    fails(rc.test_redis_memory, redis({"used_memory": 170 << 20}), r"saw 85 % .*WARNING", inventory=INV)


def test_redis_without_maxmemory_fails():
    fails(rc.test_redis_memory, redis({"maxmemory": 0}), r"a maxmemory limit.*no maxmemory set", inventory=INV)


def test_evictions_fail():
    with pytest.raises(pytest.fail.Exception, match=r"no evicted key; saw 12 keys evicted in the last 1.0 h"):
        rc.test_redis_evictions(redis({"evicted_keys": 12}), verdict=Verdict("t"))


def test_rejected_connections_fail():
    with pytest.raises(pytest.fail.Exception, match=r"no rejected connection; saw 3 rejected .* maxclients 10000"):
        rc.test_redis_rejected_connections(redis({"rejected_connections": 3}), verdict=Verdict("t"))


def test_slow_ping_fails_on_the_median_not_one_spike():
    rc.test_redis_latency(redis(pings=(0.2, 50.0, 0.3)), inventory=INV, verdict=Verdict("t"))
    fails(rc.test_redis_latency, redis(pings=(20.0, 30.0, 0.3)), r"within 10 ms; saw 20 ms over 3 PINGs",
          inventory=INV)


def test_persistence_failures():
    fails(rc.test_redis_persistence, redis({"aof_last_write_status": "err"}), r"aof_last_write_status is err",
          inventory=INV)
    fails(rc.test_redis_persistence, redis({"rdb_last_bgsave_status": "err"}), r"rdb_last_bgsave_status is err",
          inventory=INV)
    fails(rc.test_redis_persistence, redis({"aof_enabled": 0}, save=""), r"neither AOF nor RDB", inventory=INV)


def test_persistence_snapshot_age():
    info = {"aof_enabled": 0, "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok",
            "rdb_last_bgsave_status": "ok", "rdb_last_save_time": 0, "rdb_changes_since_last_save": 3}
    assert persistence_problems(info, "3600 1", 24 * 3600, now=30 * 3600) == [
        "last RDB snapshot 30.0 h ago with 3 changes since (limit 24.0 h)"]
    assert persistence_problems({**info, "rdb_changes_since_last_save": 0}, "3600 1", 24 * 3600, now=30 * 3600) == []
    # With AOF on, the snapshot schedule is judged only when one is set.
    assert persistence_problems({**info, "aof_enabled": 1}, "", 24 * 3600, now=30 * 3600) == []
    # CONFIG refused (renamed): without AOF the snapshot age is still judged.
    assert persistence_problems(info, None, 24 * 3600, now=30 * 3600) != []


def test_failing_commands_fail():
    cmds = {"set": {"calls": 1000, "failed_calls": 0, "rejected_calls": 0},
            "incr": {"calls": 50, "failed_calls": 50, "rejected_calls": 0}}
    fails(rc.test_redis_commandstats, redis(commandstats=cmds), r"at most 1 % .*incr: 100 % \(50 failed, 0 rejected of 50\)",
          inventory=INV)


def test_busygroup_of_an_idempotent_group_create_is_no_failure():
    # Redis 7: XGROUP CREATE of an existing group answers BUSYGROUP, counted in failed_calls and in errorstats.
    cmds = {"set": {"calls": 1000, "failed_calls": 0, "rejected_calls": 0},
            "xgroup|create": {"calls": 9, "failed_calls": 9, "rejected_calls": 0}}
    verdict = Verdict("redis")
    rc.test_redis_commandstats(redis(commandstats=cmds, errorstats={"BUSYGROUP": 9}), inventory=INV, verdict=verdict)
    assert json.loads(dict(verdict.records)["evidence:expected_errors_not_counted"]) == {"BUSYGROUP": 9}
    # Redis 6.2 counts every XGROUP subcommand under one name.
    rc.test_redis_commandstats(redis(commandstats={"xgroup": {"calls": 4, "failed_calls": 4, "rejected_calls": 0}},
                                     errorstats={"BUSYGROUP": 4}), inventory=INV, verdict=Verdict("redis"))


def test_other_failures_of_group_create_still_count():
    cmds = {"xgroup|create": {"calls": 10, "failed_calls": 10, "rejected_calls": 0}}
    fails(rc.test_redis_commandstats, redis(commandstats=cmds, errorstats={"BUSYGROUP": 6, "ERR": 4}),
          r"xgroup\|create: 40 % \(4 failed, 0 rejected of 10\)", inventory=INV)
    # Without errorstats (before Redis 6.2) nothing tells BUSYGROUP apart: every failure counts.
    fails(rc.test_redis_commandstats, redis(commandstats=cmds), r"xgroup\|create: 100 %", inventory=INV)


def test_command_error_ratio_and_parsing():
    assert commands({"cmdstat_get": {"calls": 4, "usec": 1}})["get"]["failed_calls"] == 0
    assert error_pct({"calls": 99, "failed_calls": 1, "rejected_calls": 0}) == pytest.approx(1.01)
    assert error_pct({"calls": 0, "failed_calls": 0, "rejected_calls": 3}) == 100.0


def test_a_locked_table_is_not_sized_and_not_judged():
    locked = table("public.locked", size=None)
    pgc.test_postgres_largest_tables(pg(tables=[locked, table()]), inventory=INV, verdict=Verdict("t"))
