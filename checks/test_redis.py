"""Redis statistics: memory against maxmemory, evictions, refused clients, latency, persistence, command errors.

All are judged from one sample (`redis_sample`): INFO in one pipeline and a
few PINGs. Counters (evicted_keys, rejected_connections, commandstats) count
since Redis started or since CONFIG RESETSTAT; messages give that window.
"""
from __future__ import annotations

from fixtures.spec import DAILY, WEEKLY, check
from observation.redis_stats import (
    EXPECTED_ERRORS,
    RedisStats,
    error_pct,
    memory_pct,
    persistence_problems,
    without_expected_errors,
)

from .guide import APP_TUNING, BOTTLENECKS, DAILY_MAINTENANCE, FULL_HEALTH


def stats(redis_sample, verdict) -> RedisStats:
    __tracebackhide__ = True
    return verdict.observed(redis_sample)


def window(info: dict) -> str:
    """The window a counter covers.

    >>> window({"uptime_in_seconds": 7200})
    'in the last 2.0 h (since start or CONFIG RESETSTAT)'
    """
    return f"in the last {info.get('uptime_in_seconds', 0) / 3600:.1f} h (since start or CONFIG RESETSTAT)"


@check("redis-memory", "Redis memory stays below the warning share of maxmemory", tiers=DAILY, severity="normal",
       guide=BOTTLENECKS,
       needs=("redis-ping",))
def test_redis_memory(redis_sample, inventory, verdict):
    info = stats(redis_sample, verdict).info
    limits = inventory.thresholds
    verdict.evidence("memory", {k: info.get(k) for k in ("used_memory_human", "maxmemory_human", "maxmemory_policy",
                                                          "used_memory_peak_human", "mem_fragmentation_ratio")})
    pct = memory_pct(info)
    if pct is None:
        verdict.advise("CONFIG SET maxmemory, and set it in redis.conf")
    verdict.expect(pct is not None, expected="a maxmemory limit (the guide judges memory against it)",
                   seen=f"no maxmemory set, {info.get('used_memory_human')} used and free to grow until the "
                        f"container is OOM-killed")
    verdict.measured("memory_pct", pct)
    level = "CRITICAL" if pct > limits.redis_memory_critical_pct else "WARNING"
    if pct > limits.redis_memory_warning_pct:
        verdict.advise("find the big keys with redis-cli --bigkeys, expire them, or raise maxmemory")
    verdict.expect(pct <= limits.redis_memory_warning_pct,
                   expected=f"used_memory at most {limits.redis_memory_warning_pct:g} % of maxmemory",
                   seen=f"{pct:g} % ({info.get('used_memory_human')} of {info.get('maxmemory_human')}, {level}; "
                        f"policy {info.get('maxmemory_policy')})")


@check("redis-evictions", "Redis evicted no key", tiers=DAILY, severity="normal", guide=APP_TUNING,
       needs=("redis-ping",), applies=lambda server: not server.evicts)
def test_redis_evictions(redis_sample, verdict):
    info = stats(redis_sample, verdict).info
    evicted = info.get("evicted_keys", 0)
    verdict.measured("evicted_keys", evicted)
    if evicted:
        verdict.advise("raise maxmemory or cut what is stored")
    verdict.expect(evicted == 0, expected="no evicted key",
                   seen=f"{evicted} keys evicted {window(info)} under policy {info.get('maxmemory_policy')} "
                        f"(data was dropped for memory)")


@check("redis-rejected-connections", "Redis refused no client connection", tiers=DAILY, severity="critical",
       guide=FULL_HEALTH,
       needs=("redis-ping",))
def test_redis_rejected_connections(redis_sample, verdict):
    info = stats(redis_sample, verdict).info
    rejected = info.get("rejected_connections", 0)
    verdict.measured("rejected_connections", rejected)
    verdict.evidence("clients", {k: info.get(k) for k in ("connected_clients", "maxclients", "blocked_clients")})
    if rejected:
        verdict.advise("find the client leaking connections (CLIENT LIST), or raise maxclients")
    verdict.expect(rejected == 0, expected="no rejected connection",
                   seen=f"{rejected} rejected {window(info)}, now {info.get('connected_clients')} of maxclients "
                        f"{info.get('maxclients')}")


@check("redis-latency", "Redis answers PING fast", tiers=DAILY, severity="normal", guide=BOTTLENECKS,
       needs=("redis-ping",))
def test_redis_latency(redis_sample, inventory, verdict):
    sample = stats(redis_sample, verdict)
    limit = inventory.thresholds.redis_latency_ms
    verdict.measured("ping_ms", sample.median_ping_ms)
    verdict.evidence("ping_ms", [round(ms, 2) for ms in sample.ping_ms])
    if sample.median_ping_ms > limit:
        verdict.advise("look for slow commands with SLOWLOG GET, a big KEYS or Lua script, swapping or a fork")
    verdict.expect(sample.median_ping_ms <= limit, expected=f"a median PING round trip within {limit:g} ms",
                   seen=f"{sample.median_ping_ms:g} ms over {len(sample.ping_ms)} PINGs")


@check("redis-persistence", "Redis persistence is configured and its last writes succeeded", tiers=DAILY,
       severity="normal", guide=DAILY_MAINTENANCE,
       needs=("redis-ping",))
def test_redis_persistence(redis_sample, inventory, verdict):
    sample = stats(redis_sample, verdict)
    info = sample.info
    verdict.evidence("persistence", {"save": sample.save_schedule, **{k: info.get(k) for k in (
        "aof_enabled", "aof_last_write_status", "aof_last_bgrewrite_status", "rdb_last_bgsave_status",
        "rdb_last_save_time", "rdb_changes_since_last_save")}})
    problems = persistence_problems(info, sample.save_schedule, inventory.thresholds.redis_last_save_max_age_h * 3600)
    if any(p.startswith("aof_") for p in problems):
        verdict.remedy("redis-rewrite-aof")  # an AOF problem: a rewrite fits; an RDB one is for a person (no helper)
    elif any(p.startswith("neither") for p in problems):
        verdict.advise("turn on AOF (CONFIG SET appendonly yes, and appendonly yes in redis.conf) or a save schedule")
    elif problems:
        verdict.advise("see the Redis log; check the data volume's space and permissions, then BGSAVE")
    verdict.expect(not problems, expected="AOF and/or RDB snapshots configured and their last writes ok",
                   seen="; ".join(problems))


@check("redis-commandstats", "Redis commands do not fail", tiers=WEEKLY, severity="normal", guide=BOTTLENECKS,
       needs=("redis-ping",))
def test_redis_commandstats(redis_sample, inventory, verdict):
    sample = stats(redis_sample, verdict)
    limit = inventory.thresholds.redis_command_errors_max_pct
    top = sorted(sample.commandstats.items(), key=lambda kv: -kv[1]["calls"])[:10]
    verdict.evidence("top_commands", {name: {k: s.get(k) for k in ("calls", "usec_per_call", "failed_calls",
                                                                    "rejected_calls")} for name, s in top})
    expected = {kind: n for kind, n in sample.errorstats.items() if kind in EXPECTED_ERRORS and n}
    if expected:
        verdict.evidence("expected_errors_not_counted", expected)
    judged = without_expected_errors(sample.commandstats, sample.errorstats)
    failing = sorted(((name, s) for name, s in judged.items() if error_pct(s) > limit),
                     key=lambda kv: -error_pct(kv[1]))
    if failing:
        verdict.advise("find the client sending them: the engines' logs, CLIENT LIST, MONITOR briefly")
    verdict.expect(not failing, expected=f"at most {limit:g} % failed or rejected calls per command",
                   seen="; ".join(f"{name}: {error_pct(s):g} % ({s['failed_calls']} failed, {s['rejected_calls']} "
                                  f"rejected of {s['calls'] + s['rejected_calls']})" for name, s in failing[:5])
                        + f" {window(sample.info)}")


@check("redis-connection-churn", "Clients reuse their Redis connections: few new connections a second",
       tiers=DAILY, severity="normal", guide=FULL_HEALTH,
       needs=("redis-ping",))
def test_redis_connection_churn(redis_churn, inventory, verdict):
    churn = verdict.observed(redis_churn)
    limit = inventory.thresholds.redis_connections_per_s_max
    verdict.measured("new_connections_per_s", churn.per_second)
    verdict.evidence("total_connections_received", {"start": churn.first, "end": churn.second,
                                                    "seconds": round(churn.seconds, 1)})
    if churn.per_second > limit:
        verdict.advise("find the client opening a connection per command (CLIENT LIST: many short-lived clients of one "
                       "address or name, low age) and give it a connection pool; the bus checks name each engine's "
                       "connections")
    verdict.expect(churn.per_second <= limit, expected=f"at most {limit:g} new connections a second",
                   seen=f"{churn.new_connections} new connections in {churn.seconds:.1f} s ({churn.per_second:g}/s)")
