"""Redis statistics: INFO sections and the snapshot schedule in one pipeline, and PING round trips.

Counters (evicted_keys, rejected_connections, commandstats) count since the
server started or since CONFIG RESETSTAT; the uptime is kept so a check can
say over which window it judged.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import redis

from .errors import Unobservable, short_reason

INFO_SECTIONS = ("server", "clients", "memory", "stats", "persistence")
PINGS = 5
# Error replies a client asks for and handles, which Redis still counts in failed_calls: XGROUP CREATE answers
# BUSYGROUP when the consumer group exists, and that is how an idempotent "create the group if missing" is written.
# Error kind -> the commandstats entry it is counted in (Redis 7 names the subcommand, 6.2 only the command).
EXPECTED_ERRORS = {"BUSYGROUP": ("xgroup|create", "xgroup")}


@dataclass
class RedisStats:
    info: dict  # the INFO sections above, merged (their keys do not overlap)
    commandstats: dict[str, dict] = field(default_factory=dict)  # "get" -> {"calls", "failed_calls", ...}
    save_schedule: str | None = None  # CONFIG GET save; None when CONFIG is refused (renamed or ACL)
    ping_ms: list[float] = field(default_factory=list)
    errorstats: dict[str, int] = field(default_factory=dict)  # error kind ("BUSYGROUP") -> replies (Redis 6.2+)

    @property
    def median_ping_ms(self) -> float:
        """The median round trip.

        >>> RedisStats({}, ping_ms=[0.3, 9.0, 0.2]).median_ping_ms
        0.3
        """
        return round(statistics.median(self.ping_ms), 2)


def redis_stats(client: redis.Redis) -> RedisStats:
    """INFO server/clients/memory/stats/persistence/commandstats/errorstats and CONFIG GET save in one round trip,
    then PINGs."""
    pipe = client.pipeline(transaction=False)
    for section in INFO_SECTIONS:
        pipe.info(section)
    pipe.info("commandstats")
    pipe.info("errorstats")  # an empty section before Redis 6.2, not an error
    pipe.config_get("save")
    try:
        replies = pipe.execute(raise_on_error=False)
        info: dict = {}
        for reply in replies[:len(INFO_SECTIONS) + 2]:
            if isinstance(reply, Exception):
                raise reply
        for reply in replies[:len(INFO_SECTIONS)]:
            info.update(reply)
        config = replies[-1]
        save = config.get("save") if isinstance(config, dict) else None
        pings = [_ping_ms(client) for _ in range(PINGS)]
    except redis.RedisError as exc:
        raise Unobservable(f"redis: INFO failed ({short_reason(exc)})") from None
    return RedisStats(info, commands(replies[len(INFO_SECTIONS)]), save, pings,
                      errors(replies[len(INFO_SECTIONS) + 1]))


def _ping_ms(client: redis.Redis) -> float:
    start = time.perf_counter()
    client.ping()
    return (time.perf_counter() - start) * 1000


def commands(commandstats: dict) -> dict[str, dict]:
    """INFO commandstats keyed by command name (redis-py gives `cmdstat_<name>`).

    >>> commands({"cmdstat_client|list": {"calls": 1, "usec": 9}})
    {'client|list': {'calls': 1, 'usec': 9, 'failed_calls': 0, 'rejected_calls': 0}}
    """
    # failed_calls/rejected_calls appeared in Redis 6.2; older servers count as zero.
    return {name.removeprefix("cmdstat_"): {**stats, "failed_calls": stats.get("failed_calls", 0),
                                            "rejected_calls": stats.get("rejected_calls", 0)}
            for name, stats in commandstats.items()}


def errors(errorstats: dict) -> dict[str, int]:
    """INFO errorstats keyed by error kind.

    >>> errors({"errorstat_BUSYGROUP": {"count": 3}, "errorstat_ERR": {"count": 1}})
    {'BUSYGROUP': 3, 'ERR': 1}
    """
    return {name.removeprefix("errorstat_"): stats.get("count", 0) for name, stats in errorstats.items()}


def without_expected_errors(commandstats: dict[str, dict], errorstats: dict[str, int]) -> dict[str, dict]:
    """commandstats with the expected error replies (EXPECTED_ERRORS) taken out of failed_calls.

    errorstats counts per error kind, not per command; BUSYGROUP comes from XGROUP CREATE alone, so its count
    is that command's, and only that many of its failures are taken out: any other failure still counts.

    >>> without_expected_errors({"xgroup|create": {"calls": 9, "failed_calls": 7}, "incr": {"failed_calls": 2}},
    ...                         {"BUSYGROUP": 5, "ERR": 4})
    {'xgroup|create': {'calls': 9, 'failed_calls': 2}, 'incr': {'failed_calls': 2}}
    """
    judged = dict(commandstats)
    for kind, names in EXPECTED_ERRORS.items():
        name = next((n for n in names if n in judged), None)
        if name and errorstats.get(kind):
            stats = judged[name]
            judged[name] = {**stats, "failed_calls": max(stats.get("failed_calls", 0) - errorstats[kind], 0)}
    return judged


def error_pct(stats: dict) -> float:
    """Failed and rejected calls as a percentage of all attempts (rejected calls are not counted in `calls`).

    >>> error_pct({"calls": 98, "failed_calls": 0, "rejected_calls": 2}), error_pct({"calls": 0})
    (2.0, 0.0)
    """
    bad = stats.get("failed_calls", 0) + stats.get("rejected_calls", 0)
    attempts = stats.get("calls", 0) + stats.get("rejected_calls", 0)
    return round(100 * bad / attempts, 2) if attempts else 0.0


def memory_pct(info: dict) -> float | None:
    """used_memory as a percentage of maxmemory; None when no maxmemory is set.

    >>> memory_pct({"used_memory": 50, "maxmemory": 200}), memory_pct({"used_memory": 5, "maxmemory": 0})
    (25.0, None)
    """
    return round(100 * info["used_memory"] / info["maxmemory"], 1) if info.get("maxmemory") else None


def persistence_problems(info: dict, save_schedule: str | None, max_save_age_s: float,
                         now: float | None = None) -> list[str]:
    """What is wrong with Redis persistence; [] when data written now would survive a restart.

    AOF (the guide's setting: its daily script rewrites the AOF) is judged by its
    write and rewrite status. RDB snapshots are judged when a schedule is set:
    the last one must have succeeded, and pending changes must not be older than
    the limit. With neither, nothing survives a restart.

    >>> ok = {"aof_enabled": 1, "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok",
    ...       "rdb_last_bgsave_status": "ok", "rdb_last_save_time": 0, "rdb_changes_since_last_save": 5}
    >>> persistence_problems(ok, "", 3600, now=10_000)
    []
    >>> persistence_problems({**ok, "aof_last_write_status": "err"}, "", 3600, now=10_000)
    ['aof_last_write_status is err (the AOF cannot be written: disk full or permissions?)']
    >>> persistence_problems({**ok, "aof_enabled": 0}, "", 3600, now=10_000)
    ['neither AOF nor RDB snapshots are configured: a restart loses every key']
    >>> persistence_problems({**ok, "aof_enabled": 0}, "3600 1", 3600, now=10_000)
    ['last RDB snapshot 2.8 h ago with 5 changes since (limit 1.0 h)']
    """
    now = time.time() if now is None else now
    problems = []
    aof = bool(info.get("aof_enabled"))
    if aof:
        for key, meaning in (("aof_last_write_status", "the AOF cannot be written: disk full or permissions?"),
                             ("aof_last_bgrewrite_status", "the last AOF rewrite failed")):
            if info.get(key, "ok") != "ok":
                problems.append(f"{key} is {info.get(key)} ({meaning})")
    if info.get("rdb_last_bgsave_status", "ok") != "ok":
        problems.append(f"rdb_last_bgsave_status is {info['rdb_last_bgsave_status']} (the last snapshot failed)")
    snapshots = bool(save_schedule) if save_schedule is not None else not aof  # unknown schedule: judge when no AOF
    if not aof and save_schedule == "":
        problems.append("neither AOF nor RDB snapshots are configured: a restart loses every key")
    elif snapshots and info.get("rdb_changes_since_last_save", 0) > 0:
        age = now - info.get("rdb_last_save_time", now)
        if age > max_save_age_s:
            problems.append(f"last RDB snapshot {age / 3600:.1f} h ago with {info['rdb_changes_since_last_save']} "
                            f"changes since (limit {max_save_age_s / 3600:.1f} h)")
    return problems
