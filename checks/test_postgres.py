"""PostgreSQL statistics: version, size, connections, sessions stuck or blocked, slow statements, table upkeep.

All are judged from one sample (`postgres_sample`) read once per run; the
suite's own session is never part of a judgement. Counters of tables and
indexes count since the statistics were last reset (or the server started),
and the messages say so.
"""
from __future__ import annotations

from collections import Counter

import pytest

from fixtures.spec import DAILY, WEEKLY, check
from observation.postgres_stats import (
    DEAD_TUPLES_MIN_ROWS,
    PostgresStats,
    bloated_tables,
    counted_for,
    dead_ratio_pct,
    holder_line,
    holders,
    overdue_tables,
    session_line,
)

from .guide import (
    APP_TUNING,
    BOTTLENECKS,
    DATABASE,
    DB_MAINTENANCE,
    FULL_HEALTH,
    WEEKLY_MAINTENANCE,
)

GB = 1024 ** 3
HOLDERS_NAMED = 3  # biggest holders of connections named in the finding; the evidence has them all
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")


def stats(postgres_sample, verdict) -> PostgresStats:
    __tracebackhide__ = True
    return verdict.observed(postgres_sample)


def gb(n_bytes: float) -> str:
    return f"{n_bytes / GB:.2f} GB"


@check("postgres-version", "PostgreSQL is a supported major version", tiers=WEEKLY, severity="normal",
       guide=FULL_HEALTH,
       needs=("postgres-ready",))
def test_postgres_version(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    minimum = inventory.thresholds.db_min_major_version
    verdict.measured("version", pg.version)
    if pg.major < minimum:
        verdict.advise("upgrade with pg_upgrade or dump/restore")
    verdict.expect(pg.major >= minimum, expected=f"PostgreSQL {minimum} or newer", seen=pg.version)


@check("postgres-size", "The database is below its size limit", tiers=DAILY, severity="normal", guide=FULL_HEALTH,
       needs=("postgres-ready",))
def test_postgres_size(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_size_max_gb
    verdict.measured("size_gb", round(pg.size_bytes / GB, 3))
    if pg.size_bytes > limit * GB:
        verdict.advise("archive old rows, VACUUM FULL bloated tables, grow the volume")
    verdict.expect(pg.size_bytes <= limit * GB, expected=f"database {pg.database} at most {limit:g} GB",
                   seen=gb(pg.size_bytes))


@check("postgres-connections", "Client connections stay below the share of max_connections", tiers=DAILY,
       severity="critical", guide=DATABASE,
       needs=("postgres-ready",))
def test_postgres_connections(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    total = len(pg.sessions)
    pct = round(100 * total / pg.max_connections, 1)
    limit = inventory.thresholds.db_connections_max_pct
    verdict.measured("connections_pct", pct)
    held = holders(pg.sessions)
    verdict.evidence("by_state", dict(Counter(s["state"] or "unknown" for s in pg.sessions).most_common()))
    verdict.evidence("holders", held)
    if pct > limit:
        top = held[0]
        if 2 * top.get("idle", 0) >= top["connections"]:
            verdict.remedy("postgres-sessions")  # mostly idle sessions: the helper names them and ends the old ones
        else:
            verdict.advise(f"find why {top['application']} @ {top['client']} holds {top['connections']} busy sessions "
                           "(its pool size, slow queries), or raise max_connections / put PgBouncer in front")
    rest = sum(h["connections"] for h in held[HOLDERS_NAMED:])
    verdict.expect(pct <= limit, expected=f"at most {limit:g} % of max_connections ({pg.max_connections})",
                   seen=f"{total} connections ({pct:g} %), held by "
                        + "; ".join(map(holder_line, held[:HOLDERS_NAMED]))
                        + (f"; {len(held) - HOLDERS_NAMED} more holding {rest}" if rest else ""))


@check("postgres-active-connections", "Active queries stay at or below the guide's 20", tiers=DAILY,
       severity="normal", guide=APP_TUNING,
       needs=("postgres-ready",))
def test_postgres_active_connections(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    active = [s for s in pg.sessions if s["state"] == "active"]
    limit = inventory.thresholds.db_active_connections
    verdict.measured("active", len(active))
    verdict.evidence("active", [session_line(s, "query_age_s") + f": {s['query']}" for s in active])
    verdict.expect(len(active) <= limit, expected=f"at most {limit} active connections",
                   seen=f"{len(active)} active: "
                        + ", ".join(f"{app} x{n}" for app, n in
                                    Counter(s["application_name"] or "-" for s in active).most_common(5)))


@check("postgres-idle-in-transaction", "No session sits idle inside an open transaction", tiers=DAILY,
       severity="normal", guide=DATABASE,
       needs=("postgres-ready",))
def test_postgres_idle_in_transaction(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_idle_in_transaction_max_s
    stuck = sorted((s for s in pg.sessions if s["state"] in IDLE_IN_TRANSACTION and s["state_age_s"] > limit),
                   key=lambda s: -s["state_age_s"])
    verdict.evidence("idle_in_transaction", [session_line(s, "state_age_s") + f": {s['query']}" for s in stuck])
    if stuck:
        verdict.advise("commit or roll back in the client; end it with SELECT pg_terminate_backend("
                       f"{stuck[0]['pid']}); set idle_in_transaction_session_timeout")
    verdict.expect(not stuck, expected=f"no session idle in transaction longer than {limit:g} s",
                   seen=f"{len(stuck)}: " + "; ".join(session_line(s, "state_age_s") for s in stuck[:5])
                        + " (it holds its locks and snapshot)")


@check("postgres-blocked-queries", "No query waits on a lock longer than the limit", tiers=DAILY,
       severity="critical", guide=BOTTLENECKS,
       needs=("postgres-ready",))
def test_postgres_blocked_queries(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_lock_wait_max_s
    by_pid = {s["pid"]: s for s in pg.sessions}
    blocked = [s for s in pg.sessions if s["blocked_by"] and s["lock_wait_s"] > limit]

    def blocker(pid: int) -> str:
        s = by_pid.get(pid)
        return f"pid {pid}" if s is None else f"{session_line(s, 'state_age_s')} in state {s['state']}"

    lines = [f"{session_line(s, 'lock_wait_s')} waiting, blocked by " + ", ".join(blocker(p) for p in s["blocked_by"])
             for s in blocked]
    verdict.evidence("blocked", [{"blocked": line, "query": s["query"]} for line, s in zip(lines, blocked)])
    blockers = sorted({p for s in blocked for p in s["blocked_by"]})
    if blockers:
        verdict.advise("end the blocker: " + "; ".join(f"SELECT pg_terminate_backend({p})" for p in blockers[:5]))
    verdict.expect(not blocked, expected=f"no session waiting on a lock longer than {limit:g} s",
                   seen="; ".join(lines[:5]))


@check("postgres-long-queries", "No query runs longer than the limit", tiers=DAILY, severity="normal",
       guide=BOTTLENECKS,
       needs=("postgres-ready",))
def test_postgres_long_queries(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_long_query_s
    # A query waiting on a lock is postgres-blocked-queries' fact, not a long-running one.
    long = sorted((s for s in pg.sessions if s["state"] == "active" and not s["blocked_by"]
                   and s["query_age_s"] > limit), key=lambda s: -s["query_age_s"])
    verdict.evidence("long_queries", [session_line(s, "query_age_s") + f": {s['query']}" for s in long])
    if long:
        verdict.advise(f"EXPLAIN it; cancel it with SELECT pg_cancel_backend({long[0]['pid']})")
    verdict.expect(not long, expected=f"no query running longer than {limit:g} s",
                   seen="; ".join(session_line(s, "query_age_s") + f": {s['query'][:80]}" for s in long[:5]))


@check("postgres-slow-queries", "No statement averages over the slow-query limit (pg_stat_statements)",
       tiers=DAILY, severity="normal", guide=APP_TUNING,
       needs=("postgres-ready",))
def test_postgres_slow_queries(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    statements = verdict.observed(pg.statements)
    limit = inventory.thresholds.slow_query_ms
    slow = [s for s in statements if s["mean_ms"] > limit]
    verdict.measured("slow_statements", pg.slow_statement_count())
    verdict.evidence("slowest", [{k: s[k] for k in ("mean_ms", "calls", "query")} for s in statements[:5]])
    if slow:
        verdict.advise("EXPLAIN ANALYZE the slowest and add the missing index")
    verdict.expect(not slow, expected=f"no statement with a mean time above {limit:g} ms",
                   seen=f"{pg.slow_statement_count()} statement(s), slowest: "
                        + "; ".join(f"{s['mean_ms']:g} ms x{s['calls']}: {s['query'][:80]}" for s in slow[:3])
                        + f" (since {pg.stats_since})")


@check("postgres-dead-tuples", "No table carries more dead rows than the limit", tiers=WEEKLY, severity="normal",
       guide=DB_MAINTENANCE, remedy="vacuum-analyze",
       needs=("postgres-ready",))
def test_postgres_dead_tuples(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_dead_tuples_max_pct
    judged = [t for t in pg.tables if t["live"] + t["dead"] > DEAD_TUPLES_MIN_ROWS]
    bloated = bloated_tables(pg.tables, limit)  # the tables the vacuum-analyze helper vacuums
    verdict.evidence("tables", {t["name"]: f"{t['dead']} dead of {t['live'] + t['dead']} ({dead_ratio_pct(t):g} %)"
                                for t in judged})
    verdict.expect(not bloated, expected=f"at most {limit:g} % dead rows in each table of over "
                                         f"{DEAD_TUPLES_MIN_ROWS} rows",
                   seen="; ".join(f"{t['name']} {dead_ratio_pct(t):g} % ({t['dead']} dead)" for t in bloated[:5])
                        + " (autovacuum is not keeping up)")


@check("postgres-vacuum-recent", "Written tables were vacuumed and analyzed recently", tiers=WEEKLY,
       severity="normal", guide=WEEKLY_MAINTENANCE, remedy="vacuum-analyze",
       needs=("postgres-ready",))
def test_postgres_vacuum_recent(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_vacuum_max_age_days
    overdue = overdue_tables(pg.tables, limit, pg.stats_window_days)  # the vacuum-analyze helper's tables too
    verdict.evidence("overdue", overdue)
    verdict.expect(not overdue, expected=f"every written table vacuumed and analyzed within {limit:g} days",
                   seen="; ".join(f"{name}: {', '.join(p)}" for name, p in list(overdue.items())[:5]))


@check("postgres-unused-indexes", "Every non-unique index is used", tiers=WEEKLY, severity="minor",
       guide=DB_MAINTENANCE,
       needs=("postgres-ready",))
def test_postgres_unused_indexes(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    min_days = inventory.thresholds.db_index_stats_min_days
    if pg.stats_window_days < min_days:
        # Every index reads unused then: a failure would advise dropping them all, a pass would judge nothing.
        pytest.skip(f"statistics too young to judge index use: counting for {counted_for(pg.stats_window_days)} "
                    f"(since {pg.stats_since}), under {min_days:g} days (db_index_stats_min_days)")
    unused = pg.unused_indexes
    verdict.evidence("unused", [f"{i['index']} on {i['table']} ({i['bytes'] if i['bytes'] is not None else '?'} bytes)"
                                for i in unused])
    if unused:
        verdict.advise("DROP INDEX after confirming no rare job needs it")
    verdict.expect(not unused, expected="no non-unique index left unscanned",
                   seen=f"{len(unused)} never scanned since {pg.stats_since}: "
                        + ", ".join(f"{i['index']} on {i['table']}" for i in unused[:5])
                        + " (they cost every write)")


@check("postgres-largest-tables", "No table is above the table size limit", tiers=WEEKLY, severity="normal",
       guide=DB_MAINTENANCE,
       needs=("postgres-ready",))
def test_postgres_largest_tables(postgres_sample, inventory, verdict):
    pg = stats(postgres_sample, verdict)
    limit = inventory.thresholds.db_table_max_gb
    locked = [t["name"] for t in pg.tables if t["total_bytes"] is None]  # sizing would wait on a lock
    largest = sorted((t for t in pg.tables if t["total_bytes"] is not None), key=lambda t: -t["total_bytes"])[:10]
    verdict.evidence("largest", {t["name"]: gb(t["total_bytes"]) for t in largest})
    if locked:
        verdict.evidence("not_sized_locked", locked)
    if largest:
        verdict.measured("largest_gb", round(largest[0]["total_bytes"] / GB, 3))
    big = [t for t in largest if t["total_bytes"] > limit * GB]
    if big:
        verdict.advise("archive old rows or partition the table")
    verdict.expect(not big, expected=f"every table at most {limit:g} GB (with indexes and TOAST)",
                   seen=", ".join(f"{t['name']} {gb(t['total_bytes'])}" for t in big))
