"""PostgreSQL statistics, read in one go on the suite's connection: server, sessions, tables, indexes, statements.

Ages are computed by the server (`now() - ...`), so a clock skew between this
machine and the database cannot make a session look older or younger. The
suite's own session (application_name `nautilus-health`) and non-client
backends (autovacuum, WAL sender...) are left out of the sessions: they are
not the platform's load.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from .errors import Unobservable, Unobserved
from .postgres import APPLICATION_NAME, pg_reason

# One simple-protocol batch (no parameters), one round trip; each SELECT is a result set.
SERVER_SQL = """
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_database() AS database,
       pg_database_size(current_database()) AS size_bytes,
       current_setting('max_connections')::int AS max_connections,
       extract(epoch FROM now() - coalesce(
           (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
           pg_postmaster_start_time())) / 86400 AS stats_window_days,
       coalesce((SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
                pg_postmaster_start_time())::text AS stats_since,
       to_regclass('pg_stat_statements') IS NOT NULL AS has_statements
"""
# The lock wait starts at pg_locks.waitstart (PG14+); read through to_jsonb so the
# same text runs on PG13, where the column is absent and the query start is used.
SESSIONS_SQL = f"""
SELECT a.pid, a.usename, a.application_name, host(a.client_addr) AS client_addr, a.state,
       extract(epoch FROM now() - a.query_start) AS query_age_s,
       extract(epoch FROM now() - a.state_change) AS state_age_s,
       a.wait_event_type, a.wait_event, pg_blocking_pids(a.pid) AS blocked_by,
       extract(epoch FROM now() - coalesce(
           (SELECT min((to_jsonb(l) ->> 'waitstart')::timestamptz) FROM pg_locks l
             WHERE l.pid = a.pid AND NOT l.granted), a.query_start)) AS lock_wait_s,
       left(a.query, 200) AS query
  FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
   AND a.application_name IS DISTINCT FROM '{APPLICATION_NAME}'
"""
# Sizing a relation takes a lock on it, so a table held (or awaited) in ACCESS EXCLUSIVE
# mode would stall the whole sample until the statement timeout: such a size is left
# unknown (NULL) instead. Seen on the lab: `held-lock` made every PostgreSQL check
# "cannot observe" before this.
LOCKED = ("EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = {rel} AND l.mode = 'AccessExclusiveLock' "
          "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))")
TABLES_SQL = """
SELECT s.schemaname || '.' || s.relname AS name, s.n_live_tup AS live, s.n_dead_tup AS dead,
       s.n_tup_ins + s.n_tup_upd + s.n_tup_del AS writes,
       extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum)) / 86400 AS vacuum_age_days,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) / 86400 AS analyze_age_days,
       CASE WHEN {locked} THEN NULL ELSE pg_total_relation_size(s.relid) END AS total_bytes
  FROM pg_stat_user_tables s
""".format(locked=LOCKED.format(rel="s.relid"))
# Unique and primary-key indexes (and any backing a constraint) enforce something even when never read.
UNUSED_INDEXES_SQL = """
SELECT s.schemaname || '.' || s.relname AS "table", s.indexrelname AS index,
       CASE WHEN {locked_table} OR {locked_index} THEN NULL ELSE pg_relation_size(s.indexrelid) END AS bytes
  FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
 WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
 ORDER BY bytes DESC NULLS LAST
""".format(locked_table=LOCKED.format(rel="s.relid"), locked_index=LOCKED.format(rel="s.indexrelid"))
STATEMENTS_SQL = """
SELECT queryid, calls, round({mean}::numeric, 1)::float AS mean_ms, left(query, 200) AS query,
       count(*) FILTER (WHERE {mean} > %(slow_ms)s) OVER () AS slow_count
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY {mean} DESC LIMIT 10
"""
NO_STATEMENTS = ("pg_stat_statements is not installed in this database: run CREATE EXTENSION pg_stat_statements "
                 "(with pg_stat_statements in shared_preload_libraries, then a restart)")


@dataclass
class PostgresStats:
    version_num: int
    version: str
    database: str
    size_bytes: int
    max_connections: int
    stats_window_days: float  # how long the cumulative counters (scans, writes) have been counting
    stats_since: str
    sessions: list[dict] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)
    unused_indexes: list[dict] = field(default_factory=list)
    statements: list[dict] | Unobserved = field(default_factory=list)  # the 10 slowest by mean, with slow_count

    @property
    def major(self) -> int:
        """The major version: 150018 -> 15.

        >>> PostgresStats(150018, "15.18", "x", 0, 100, 1.0, "").major
        15
        """
        return self.version_num // 10000

    def slow_statement_count(self) -> int:
        rows = self.statements if isinstance(self.statements, list) else []
        return int(rows[0]["slow_count"]) if rows else 0


def _plain(row: dict) -> dict:
    """numeric results (ages, ratios) as floats, so checks and evidence need no Decimal."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def _rows(cur: psycopg.Cursor) -> list[dict]:
    return [_plain(r) for r in cur.fetchall()]


def postgres_stats(conn: psycopg.Connection, slow_ms: float) -> PostgresStats:
    """Everything the PostgreSQL checks judge, from one batch plus, when installed, pg_stat_statements."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(f"{SERVER_SQL};{SESSIONS_SQL};{TABLES_SQL};{UNUSED_INDEXES_SQL}")
            server = _plain(cur.fetchone())
            cur.nextset()
            sessions = _rows(cur)
            cur.nextset()
            tables = _rows(cur)
            cur.nextset()
            unused = _rows(cur)
            has_statements = server.pop("has_statements")
            stats = PostgresStats(**server, sessions=sessions, tables=tables, unused_indexes=unused)
            stats.statements = _statements(cur, stats, slow_ms) if has_statements else Unobserved(NO_STATEMENTS)
    except psycopg.Error as exc:
        raise Unobservable(f"PostgreSQL statistics query failed ({pg_reason(' '.join(str(exc).split()))})") from None
    return stats


def _statements(cur: psycopg.Cursor, stats: PostgresStats, slow_ms: float) -> list[dict] | Unobserved:
    mean = "mean_exec_time" if stats.major >= 13 else "mean_time"  # renamed in PostgreSQL 13
    try:
        cur.execute(STATEMENTS_SQL.format(mean=mean), {"slow_ms": slow_ms})
        return _rows(cur)
    except psycopg.errors.ObjectNotInPrerequisiteState:
        # The view exists but the library is not loaded: "must be loaded via shared_preload_libraries".
        return Unobserved("pg_stat_statements is installed but not loaded: add it to shared_preload_libraries "
                          "and restart PostgreSQL")


# -- judgements shared by checks and unit tests ---------------------------------

def counted_for(days: float) -> str:
    """How long the statistics have been counting, in the unit that reads best.

    >>> counted_for(8 / 1440), counted_for(0.25), counted_for(3.5)
    ('8 minutes', '6.0 hours', '3.5 days')
    """
    if days < 1 / 24:
        return f"{days * 1440:.0f} minutes"
    return f"{days * 24:.1f} hours" if days < 1 else f"{days:.1f} days"


def dead_ratio_pct(table: dict) -> float:
    """Dead rows as a percentage of all rows.

    >>> dead_ratio_pct({"live": 750, "dead": 250}), dead_ratio_pct({"live": 0, "dead": 0})
    (25.0, 0.0)
    """
    total = table["live"] + table["dead"]
    return round(100 * table["dead"] / total, 1) if total else 0.0


def stale_maintenance(table: dict, max_age_days: float, window_days: float) -> list[str]:
    """What is overdue on a written table: vacuum and/or analyze older than the limit.

    "Never" is overdue only once the statistics have been counting longer than
    the limit: before that the table may simply be new.

    >>> stale_maintenance({"vacuum_age_days": 9.0, "analyze_age_days": 1.0}, 7, 30)
    ['vacuum 9.0 days ago']
    >>> stale_maintenance({"vacuum_age_days": None, "analyze_age_days": None}, 7, 2)
    []
    >>> stale_maintenance({"vacuum_age_days": None, "analyze_age_days": 1.0}, 7, 30)
    ['never vacuumed']
    """
    overdue = []
    for what, age in (("vacuum", table["vacuum_age_days"]), ("analyze", table["analyze_age_days"])):
        if age is None:
            if window_days > max_age_days:
                overdue.append("never vacuumed" if what == "vacuum" else "never analyzed")
        elif age > max_age_days:
            overdue.append(f"{what} {age:.1f} days ago")
    return overdue


def session_line(s: dict, age_key: str) -> str:
    """One session, as a failure message lists it.

    >>> session_line({"pid": 7, "application_name": "", "client_addr": None, "query_age_s": 61.2}, "query_age_s")
    'pid 7 (app -, client local) 61 s'
    """
    return (f"pid {s['pid']} (app {s.get('application_name') or '-'}, client {s.get('client_addr') or 'local'}) "
            f"{float(s[age_key] or 0):.0f} s")


def holders(sessions: list[dict]) -> list[dict]:
    """Who holds the connections: one row per application and client address, its sessions by state, biggest first.

    >>> holders([{"application_name": "risk", "client_addr": "10.0.0.5", "state": "idle"}] * 2
    ...         + [{"application_name": "", "client_addr": None, "state": "active"}])[0]
    {'application': 'risk', 'client': '10.0.0.5', 'connections': 2, 'idle': 2}
    """
    rows: dict[tuple[str, str], Counter] = {}
    for s in sessions:
        key = (s.get("application_name") or "-", s.get("client_addr") or "local")
        rows.setdefault(key, Counter())[s.get("state") or "unknown"] += 1
    ranked = sorted(rows.items(), key=lambda kv: (-kv[1].total(), kv[0]))
    return [{"application": app, "client": client, "connections": states.total(), **dict(states.most_common())}
            for (app, client), states in ranked]


def holder_line(row: dict) -> str:
    """One holder of connections, as a finding names it.

    >>> holder_line({"application": "risk", "client": "10.0.0.5", "connections": 60, "idle": 55, "active": 5})
    'risk @ 10.0.0.5: 60 (55 idle, 5 active)'
    """
    states = {k: v for k, v in row.items() if k not in ("application", "client", "connections")}
    return f"{row['application']} @ {row['client']}: {row['connections']} (" + \
        ", ".join(f"{n} {state}" for state, n in states.items()) + ")"


DEAD_TUPLES_MIN_ROWS = 1000  # smaller tables: a few dead rows make a large ratio that costs nothing


def bloated_tables(tables: list[dict], max_pct: float, min_rows: int = DEAD_TUPLES_MIN_ROWS) -> list[dict]:
    """Tables of over `min_rows` rows with more than `max_pct` % dead rows, worst first (postgres-dead-tuples;
    the vacuum-analyze helper vacuums the same).

    >>> [t["name"] for t in bloated_tables([{"name": "a", "live": 2000, "dead": 18000},
    ...                                      {"name": "b", "live": 10, "dead": 90}], 20)]
    ['a']
    """
    judged = [t for t in tables if t["live"] + t["dead"] > min_rows]
    return sorted((t for t in judged if dead_ratio_pct(t) > max_pct), key=lambda t: -dead_ratio_pct(t))


def overdue_tables(tables: list[dict], max_age_days: float, window_days: float) -> dict[str, list[str]]:
    """Written tables whose vacuum or analyze is overdue, with what is (postgres-vacuum-recent; vacuum-analyze)."""
    return {t["name"]: problems for t in tables
            if t["writes"] > 0 and (problems := stale_maintenance(t, max_age_days, window_days))}
