"""Every lab fault really happens (seen through HTTP, Docker, PostgreSQL, Redis or files) and heals."""
from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path

import docker
import psycopg
import pytest
import redis
import requests
from conftest import LAB_OWNED, lab_cli, lab_container, lab_docker

pytestmark = pytest.mark.lab_fault


def health(port: int, timeout: float = 5) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/health", timeout=timeout)


def container(name: str):
    return lab_container(name)


def eventually(probe, timeout_s: float = 20, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def redis_client_names() -> set[str]:
    r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, decode_responses=True)
    return {c["name"] for c in r.client_list()}


def test_unhealthy_in_both_flavours(fault):
    fault("unhealthy", "risk")
    fault("unhealthy", "analytics")
    real = health(8200)
    assert (real.status_code, real.json()["status"]) == (200, "stopped")
    guide = health(8100)
    assert (guide.status_code, guide.json()["status"]) == (503, "unhealthy")


def test_slow_responses(fault):
    fault("slow", "strategy", "--ms", "1200")
    started = time.monotonic()
    assert health(8700).status_code == 200
    assert time.monotonic() - started >= 1.2


def test_bus_down_and_bus_lie(fault):
    fault("bus-down", "ml")
    fault("bus-lie", "features")
    assert eventually(lambda: health(8400).json()["messagebus_connected"] is False, 10)
    gone = {"nautilus-ml-engine", "nautilus-features-engine"}
    assert eventually(lambda: not gone & redis_client_names(), 10), redis_client_names()
    assert health(8500).json()["messagebus_connected"] is True  # the lie the suite must see through


def test_error_burst_reaches_the_logs(fault):
    fault("error-burst", "marketdata", "--count", "15")
    logs = container("nautilus-marketdata-engine").logs(since=int(time.time()) - 30).decode()
    assert sum("ERROR" in line for line in logs.splitlines()) >= 15


def _memory(name: str) -> int:
    return container(name).stats(stream=False)["memory_stats"]["usage"]


def test_leak_grows_memory(fault):
    before = _memory("nautilus-portfolio-engine")
    fault("leak", "portfolio", "--mb-per-s", "20", "--max-mb", "100")
    assert eventually(lambda: _memory("nautilus-portfolio-engine") > before + 40 * 2**20, 15)


def test_cpu_burn(fault):
    fault("cpu", "factor")

    def cpu_percent() -> float:
        s = container("nautilus-factor-engine").stats(stream=False)
        cpu = s["cpu_stats"]["cpu_usage"]["total_usage"] - s["precpu_stats"]["cpu_usage"]["total_usage"]
        system = s["cpu_stats"]["system_cpu_usage"] - s["precpu_stats"].get("system_cpu_usage", 0)
        return 100.0 * cpu / system * s["cpu_stats"].get("online_cpus", 1) if system > 0 else 0.0

    assert eventually(lambda: cpu_percent() > 50, 15)


def test_hang(fault):
    fault("hang", "websocket")
    with pytest.raises(requests.Timeout):
        health(8600, timeout=2)


def test_crash_loop_with_the_guides_import_error(fault):
    fault("crash-loop", "factor")
    engine = container("nautilus-factor-engine")
    assert eventually(lambda: engine.reload() or engine.attrs["RestartCount"] >= 2, 30)
    assert "ImportError: cannot import name 'MessagePriority'" in engine.logs(tail=50).decode()


@pytest.mark.parametrize("kind,target,name", [
    ("stop", "strategy", "nautilus-strategy-engine"),
    ("kill", "ml", "nautilus-ml-engine"),
    ("stop", "redis", "nautilus-redis"),
    ("stop", "postgres", "nautilus-postgres"),
])
def test_docker_level_stop(fault, kind, target, name):
    fault(kind, target)
    assert container(name).status == "exited"


@pytest.mark.parametrize("kind", ["stop", "kill"])
def test_postgres_comes_back_at_the_first_start_after_a_clean_or_unclean_stop(fault, heal, lab_password, kind):
    """A stale postmaster.pid once kept PostgreSQL crash-looping for minutes after the lab stopped it."""
    since = int(time.time())
    fault(kind, "postgres")
    heal()
    db = container("nautilus-postgres")
    assert db.attrs["RestartCount"] == 0
    assert b"lock file" not in db.logs(since=since)
    with psycopg.connect(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus", password=lab_password,
                         connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_pause(fault):
    fault("pause", "features")
    assert container("nautilus-features-engine").status == "paused"
    with pytest.raises(requests.Timeout):
        health(8500, timeout=2)


def test_port_taken_keeps_the_engine_from_starting(fault):
    fault("port-taken", "marketdata")
    with socket.create_connection(("127.0.0.1", 8800), timeout=2):
        pass  # something listens: the lab's holder, not the engine
    with pytest.raises(docker.errors.APIError):
        container("nautilus-marketdata-engine").start()


def test_heal_brings_everything_back(fault, heal):
    fault("stop", "risk")
    fault("unhealthy", "analytics")
    heal()
    assert health(8200).json()["status"] == "healthy"
    assert health(8100).json()["status"] == "healthy"


# -- compose hygiene and the maintenance traces -------------------------------------

LAB = Path(__file__).resolve().parents[2] / "lab"
LOGS, BACKUPS, ASIDE = LAB / ".state" / "logs", LAB / ".state" / "backups", LAB / ".state" / "backups-aside"


def lab_attrs() -> list[dict]:
    return [c.attrs for c in lab_docker().containers.list(all=True, filters=LAB_OWNED)]


def test_every_service_is_non_root_with_rotated_logs_and_data_on_volumes(lab):
    attrs = lab_attrs()
    assert len(attrs) == 14
    for a in attrs:
        user = a["Config"]["User"]
        assert user and user.split(":")[0] not in ("root", "0"), (a["Name"], user)
        log = a["HostConfig"]["LogConfig"]
        assert (log["Type"], log["Config"]) == ("json-file", {"max-size": "10m", "max-file": "3"}), a["Name"]
    mounts = {a["Name"]: {m["Destination"]: m["Type"] for m in a["Mounts"]} for a in attrs}
    assert mounts["/nautilus-postgres"]["/var/lib/postgresql/data"] == "volume"
    assert mounts["/nautilus-redis"]["/data"] == "volume"


def todays_backups() -> list[Path]:
    return sorted(BACKUPS.glob(f"nautilus_backup_{time.strftime('%Y%m%d')}-*.sql.gz"))


def test_lab_up_leaves_a_real_backup_and_a_maintenance_log(lab):
    backups = todays_backups()
    assert backups and backups[-1].stat().st_size > 0
    dump = gzip.decompress(backups[-1].read_bytes())
    assert b"CREATE TABLE public.engine_heartbeats" in dump and b"PostgreSQL database dump complete" in dump
    log = LOGS / f"maintenance-{time.strftime('%Y%m%d')}.log"
    assert "lab up: all services healthy" in log.read_text()


def test_backup_on_demand_is_written_whole(lab):
    before = set(todays_backups())
    done = lab_cli("backup")
    made = set(todays_backups()) - before
    assert len(made) == 1 and str(made.pop()) in done.stdout
    assert not list(BACKUPS.glob(".*tmp"))  # the temporary name is gone after the rename


def test_old_logs_are_planted_and_removed(fault, heal):
    fault("old-log", "host")
    ages = {p.name: (time.time() - p.stat().st_mtime) / 86400 for p in LOGS.glob("planted-*.log")}
    assert 9.9 < ages["planted-old.log"] < 10.1 and 39.9 < ages["planted-ancient.log"] < 40.1
    heal()
    assert not list(LOGS.glob("planted-*.log"))
    assert list(LOGS.glob("maintenance-*.log"))  # the lab's own log stays


def test_no_backup_sets_backups_aside_and_heal_brings_them_back(fault, heal):
    lab_cli("backup")
    before = todays_backups()
    fault("no-backup", "host")
    assert todays_backups() == []
    assert sorted(p.name for p in ASIDE.iterdir()) == [p.name for p in before]
    heal()
    assert todays_backups() == before and not ASIDE.exists()


def test_empty_backup_is_the_only_backup_of_today(fault, heal):
    lab_cli("backup")
    before = todays_backups()
    fault("empty-backup", "host")
    now = todays_backups()
    assert len(now) == 1 and now[0].stat().st_size == 0
    heal()
    assert todays_backups() == before and all(p.stat().st_size > 0 for p in before)


# -- PostgreSQL ---------------------------------------------------------------------------

@pytest.fixture
def pg(lab_password):
    with psycopg.connect(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus", password=lab_password,
                         connect_timeout=5, autocommit=True) as conn:
        yield lambda sql, *args: conn.execute(sql, args or None).fetchall()


def test_slow_query_shows_in_pg_stat_statements(fault, heal, pg):
    fault("slow-query", "postgres")
    slow = pg("SELECT calls, mean_exec_time FROM pg_stat_statements WHERE query = 'SELECT pg_sleep($1)'")
    assert slow and slow[0][0] >= 3 and slow[0][1] > 1000
    heal()
    assert pg("SELECT count(*) FROM pg_stat_statements WHERE mean_exec_time > 1000") == [(0,)]


def test_held_lock_blocks_a_second_session(fault, heal, pg):
    fault("held-lock", "postgres")
    sessions = pg("SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = %s",
                  "lab-fault-held-lock")
    assert sorted((s, w) for _, s, w in sessions) == [("active", "Lock"), ("idle in transaction", "Client")]
    blocked = [pid for pid, state, _ in sessions if state == "active"][0]
    holder = [pid for pid, state, _ in sessions if state != "active"][0]
    assert pg("SELECT pg_blocking_pids(%s)", blocked) == [([holder],)]
    assert pg("SELECT mode, granted FROM pg_locks WHERE pid = %s AND relation = 'lab_locktest'::regclass",
              holder) == [("AccessExclusiveLock", True)]
    heal()
    assert pg("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'lab-fault-%%'") == [(0,)]
    assert pg("SELECT to_regclass('lab_locktest')") == [(None,)]


def test_long_query_runs_until_heal(fault, heal, pg):
    fault("long-query", "postgres")
    time.sleep(1.2)
    rows = pg("SELECT state, query, now() - query_start > interval '1 second' FROM pg_stat_activity "
              "WHERE application_name = 'lab-fault-long-query'")
    assert rows == [("active", "SELECT pg_sleep(600)", True)]
    heal()
    assert pg("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lab-fault-long-query'") == [(0,)]


def test_dead_tuples_in_a_table_autovacuum_skips(fault, heal, pg):
    fault("dead-tuples", "postgres")
    rows = pg("SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'lab_bloat'")
    assert rows == [(2000, 18000)]
    assert pg("SELECT reloptions FROM pg_class WHERE relname = 'lab_bloat'")[0][0][0] == "autovacuum_enabled=false"
    heal()
    assert pg("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'lab_bloat'") == [(0,)]


# -- Redis ------------------------------------------------------------------------------------

def rds() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, decode_responses=True)


def test_redis_fill_takes_memory_above_90_percent(fault, heal):
    fault("redis-fill", "redis")
    memory = rds().info("memory")
    assert 0.9 < memory["used_memory"] / memory["maxmemory"] < 1
    assert rds().set("lab:probe", "writes still work") and rds().delete("lab:probe")
    heal()
    assert not list(rds().scan_iter(match="lab:fill:*"))
    assert rds().info("memory")["used_memory"] < 0.5 * memory["maxmemory"]


def test_redis_evict_counts_evictions_then_heal_restores_policy(fault, heal):
    fault("redis-evict", "redis")
    assert rds().info("stats")["evicted_keys"] > 0
    assert rds().config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    heal()
    assert rds().info("stats")["evicted_keys"] == 0
    assert rds().config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert not list(rds().scan_iter(match="lab:fill:*"))


# -- engine faults ------------------------------------------------------------------------

def bus_client(name: str) -> dict | None:
    return next((c for c in rds().client_list() if c["name"] == name), None)


def test_idle_bus_keeps_a_silent_connection_and_a_true_flag(fault, heal):
    fault("idle-bus", "strategy")
    assert eventually(lambda: int((bus_client("nautilus-strategy-engine") or {"idle": 0})["idle"]) >= 4, 10)
    assert health(8700).json()["messagebus_connected"] is True
    heal()
    assert eventually(lambda: int(bus_client("nautilus-strategy-engine")["idle"]) <= 2, 10)


KNOWN_ERRORS = ("MessageBus connection failed", "Database connection timeout", "Memory limit exceeded",
                "Health check timeout", "No space left on device", "Port already in use")


def test_known_errors_are_logged_once_each_and_heal_gives_a_fresh_log(fault, heal):
    since = int(time.time()) - 1
    for text in KNOWN_ERRORS:
        fault("known-error", "marketdata", "--text", text)
    errors = [line for line in container("nautilus-marketdata-engine").logs(since=since).decode().splitlines()
              if " ERROR " in line]
    assert [next(t for t in KNOWN_ERRORS if t in line) for line in errors] == list(KNOWN_ERRORS)
    assert lab_cli("fault", "known-error", "marketdata", "--text", "Disk on fire", check=False).returncode == 2
    heal()
    assert " ERROR " not in container("nautilus-marketdata-engine").logs().decode()


def test_slow_log_lines(fault, heal):
    fault("slow-log", "analytics", "--count", "4")
    logs = container("nautilus-analytics-engine").logs(since=int(time.time()) - 30).decode()
    slow = [line for line in logs.splitlines() if "slow operation:" in line]
    assert len(slow) == 4 and "order book rebuild took 2500ms" in slow[0]
    heal()
    assert "slow operation" not in container("nautilus-analytics-engine").logs().decode()


def test_exit_is_restarted_by_the_policy(fault, heal):
    since, restarts = int(time.time()) - 1, container("nautilus-risk-engine").attrs["RestartCount"]
    fault("exit", "risk", "--code", "3")
    engine = container("nautilus-risk-engine")
    assert engine.attrs["RestartCount"] == restarts + 1 and engine.status == "running"
    died = [e["Actor"]["Attributes"]["exitCode"] for e in lab_docker().events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "container": "nautilus-risk-engine", "event": "die"})]
    assert died == ["3"]
    heal()
    assert container("nautilus-risk-engine").attrs["RestartCount"] == 0


def test_oom_kill_as_docker_shows_it(fault, heal):
    since, restarts = int(time.time()) - 1, container("nautilus-ml-engine").attrs["RestartCount"]
    fault("oom", "ml")
    engine = container("nautilus-ml-engine")
    state = engine.attrs["State"]
    # What lab/README.md describes: OOMKilled survives the policy restart; ExitCode is reset by it,
    # and the 137 is left only in Docker's die event.
    assert (state["OOMKilled"], state["ExitCode"], engine.attrs["RestartCount"]) == (True, 0, restarts + 1)
    events = [(e["status"], e["Actor"]["Attributes"].get("exitCode")) for e in lab_docker().events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "container": "nautilus-ml-engine", "event": ["oom", "die"]})]
    assert events == [("oom", None), ("die", "137")]
    assert eventually(lambda: health(8400).status_code == 200, 20)
    heal()
    engine = container("nautilus-ml-engine")
    assert (engine.attrs["State"]["OOMKilled"], engine.attrs["RestartCount"]) == (False, 0)


def test_restart_gives_a_fresh_uptime(fault):
    assert health(8900).json()["metrics"]["uptime_seconds"] > 0
    started = container("nautilus-portfolio-engine").attrs["State"]["StartedAt"]
    fault("restart", "portfolio")
    assert container("nautilus-portfolio-engine").attrs["State"]["StartedAt"] != started
    assert health(8900).json()["metrics"]["uptime_seconds"] < 30


def websocket_active() -> int:
    return requests.get("http://127.0.0.1:8600/websocket/stats", timeout=5).json()["data"]["connection_stats"][
        "active_connections"]


@pytest.mark.parametrize("count", [760, 810])
def test_ws_connections_are_real_and_closed_by_heal(fault, heal, count):
    fault("ws-connections", "websocket", "--count", str(count))
    assert websocket_active() >= count
    metrics = requests.get("http://127.0.0.1:8600/metrics", timeout=5).text
    assert f"websocket_connections_active {count}" in metrics
    assert health(8600).status_code == 200
    heal()
    assert eventually(lambda: websocket_active() == 0, 10)
