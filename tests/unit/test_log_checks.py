"""The log checks on constructed logs, without Docker: the guide's patterns, the bounded read, the Knowledge Base."""
from __future__ import annotations

import datetime
import re
import threading

import pytest

from checks import guide
from checks import test_logs as logs_checks
from fixtures.verdict import Verdict
from observation import known_errors
from observation.docker_api import ContainerSnapshot
from observation.errors import ContainerMissing, Unobservable, Unobserved
from observation.inventory import load_inventory
from observation.logs import (
    ERRORS,
    HOURLY,
    SLOW,
    WEEKLY,
    WEEKLY_ERRORS,
    Window,
    docker_stamp,
    scan_containers,
    scan_text,
)
from observation.own_probes import ProbeCalls
from observation.targets import ContainerTarget
from remediation import diagnose
from remediation.registry import HELPERS

FAILED = pytest.fail.Exception
INV = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
RISK = ContainerTarget("nautilus-risk-engine", "local", "risk")
REDIS = ContainerTarget("nautilus-redis", "local")

# What a healthy engine of the lab writes, near misses included ("1500 ms" is not [0-9]{4,}ms).
CLEAN = """\
2026-11-25 18:30:50,118 INFO risk-engine: Starting risk-engine (real contract) on port 8200
2026-11-25 18:30:50,124 INFO risk-engine: MessageBus connected: redis redis:6379 as client nautilus-risk-engine
2026-11-25 18:30:50,131 INFO risk-engine: Database connected: nautilus@postgres:5432/nautilus
2026-11-25 18:31:11,142 WARNING risk-engine: Heartbeat round trip 1390 ms above the 100 ms target
2026-11-25 18:32:11,219 WARNING risk-engine: Market data snapshot 1238 ms behind schedule; catching up
2026-11-25 18:33:11,293 WARNING risk-engine: Reference data cache refresh took 1707 ms (budget 1000 ms)
2026-11-25 18:34:00,000 WARNING risk-engine: MessageBus connection lost (connection refused); reconnecting in background
"""


def verdict():
    return Verdict("target")


def snapshot(attrs=None):
    return ContainerSnapshot({"local": {"nautilus-risk-engine": attrs or {"State": {"Status": "running"}},
                                        "nautilus-redis": {"State": {"Status": "running"}}}}, {})


def scans(text, target=RISK, window=HOURLY):
    return {(target.host, target.name): scan_text(text, window)}


# -- the guide's patterns -------------------------------------------------------

@pytest.mark.parametrize("line", ["ERROR x", "Unhandled exception", "request FAILED", "ValueError: bad"])
def test_error_pattern_is_the_guides_grep(line):
    assert ERRORS.search(line)


@pytest.mark.parametrize("line", ["slow query", "upstream Timeout", "blocking call", "took 2500ms", "took 12000ms"])
def test_slow_pattern_matches(line):
    assert SLOW.search(line)


@pytest.mark.parametrize("line", ["took 1500 ms", "took 999ms", "INFO all good",
                                  'msg="WAL replay completed" wal_replay_duration=3.464223ms'])
def test_slow_pattern_ignores_near_misses(line):
    assert not SLOW.search(line)


def test_weekly_pattern_is_the_weekly_scripts_grep_without_failed():
    assert WEEKLY_ERRORS.search("an Exception") and not WEEKLY_ERRORS.search("request failed")


def test_clean_log_counts_nothing():
    scan = scan_text(CLEAN, HOURLY)
    assert (scan.lines, scan.count("errors"), scan.count("slow"), scan.known, scan.truncated) == (7, 0, 0, (), False)


def test_only_the_latest_matching_lines_are_kept():
    scan = scan_text("".join(f"ERROR number {i}\n" for i in range(100)), HOURLY)
    assert scan.count("errors") == 100
    assert scan.latest("errors") == tuple(f"ERROR number {i}" for i in range(95, 100))


def test_a_kept_line_is_cut():
    assert len(scan_text("ERROR " + "x" * 10_000, HOURLY).latest("errors")[0]) == 500


NO_PROBES = ProbeCalls("/nonexistent")  # no probe call to any engine, before or in this run


# -- bounded, concurrent reading --------------------------------------------------

class FakeDocker:
    """Docker.logs as the daemon answers it: only the newest `tail` lines of the window."""

    def __init__(self, lines_by_name, barrier=None):
        self.lines_by_name, self.barrier, self.calls = lines_by_name, barrier, []

    def logs(self, name, tail="all", since=None, timestamps=False):
        self.calls.append((name, tail, since))
        if self.barrier:
            self.barrier.wait()  # every container must be read at the same time to get past this
        if name not in self.lines_by_name:
            raise ContainerMissing(f"container {name} does not exist on Docker host 'local'")
        lines = self.lines_by_name[name]
        stamp = "2026-12-07T10:00:00.250000000Z " if timestamps else ""
        return "".join(stamp + line + "\n" for line in lines[-tail:])


class FakeHosts:
    def __init__(self, docker=None, error=None):
        self.docker, self.error = docker, error

    def get(self, host):
        if self.error:
            raise Unobservable(self.error)
        return self.docker


def test_reads_with_since_and_a_line_bound():
    docker = FakeDocker({"nautilus-risk-engine": ["ERROR a"]})
    found = scan_containers(FakeHosts(docker), [RISK], HOURLY)
    (name, tail, since), = docker.calls
    assert (name, tail) == ("nautilus-risk-engine", HOURLY.max_lines)
    assert isinstance(since, int) and abs(since - (__import__("time").time() - 3600)) < 5
    assert found[("local", "nautilus-risk-engine")].count("errors") == 1


def test_a_huge_log_is_read_only_up_to_the_bound_and_says_so():
    window = Window("hour", 3600, 1000, {"errors": ERRORS}, known=False)
    docker = FakeDocker({"nautilus-risk-engine": ["ERROR x"] * 1_000_000})
    scan = scan_containers(FakeHosts(docker), [RISK], window)[("local", "nautilus-risk-engine")]
    assert (scan.lines, scan.truncated, scan.count("errors")) == (1000, True, 1000)
    assert scan.seen("errors") == "at least 1000 (only the newest 1000 lines of the last 1 h were read)"


def test_all_containers_are_read_at_once():
    targets = [ContainerTarget(f"c{i}", "local") for i in range(8)]
    docker = FakeDocker({t.name: ["ok"] for t in targets}, barrier=threading.Barrier(8, timeout=5))
    found = scan_containers(FakeHosts(docker), targets, HOURLY)
    assert all(scan.lines == 1 for scan in found.values())


def test_a_missing_container_or_dead_daemon_is_unobserved():
    assert scan_containers(FakeHosts(FakeDocker({})), [RISK], HOURLY)[("local", "nautilus-risk-engine")] == \
        Unobserved("container nautilus-risk-engine does not exist on Docker host 'local'")
    found = scan_containers(FakeHosts(error="no Docker daemon answers"), [RISK], HOURLY)
    assert found[("local", "nautilus-risk-engine")] == Unobserved("no Docker daemon answers")


# -- the Knowledge Base as data -----------------------------------------------------

LOG_SAMPLES = {
    "port-in-use": "OSError: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8200): address already in use",
    "docker-daemon-unreachable": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
    "no-space-left": "OSError: [Errno 28] No space left on device: '/data/out.parquet'",
    "messagebus-connection-failed": "ERROR factor-engine: MessageBus connection failed: redis:6379",
    "database-connection-timeout": "ERROR risk-engine: Database connection timeout after 30 s",
    "memory-limit-exceeded": "ERROR ml-engine: Memory limit exceeded while loading model",
    "health-check-timeout": "WARNING backend: health check timeout for analytics-engine",
    "factor-messagepriority-import":
        "ImportError: cannot import name 'MessagePriority' from 'enhanced_messagebus_client' (/app/x.py)",
    "factor-messagebusconfig-client-id":
        "TypeError: MessageBusConfig.__init__() got an unexpected keyword argument 'client_id'",
}
STATE_SAMPLES = {
    "port-in-use": {"Status": "created", "ExitCode": 128, "Error": "driver failed programming external connectivity "
                    "on endpoint nautilus-risk-engine: Bind for 127.0.0.1:8200 failed: port is already allocated"},
    "no-space-left": {"Status": "exited", "ExitCode": 1, "Error": "write /var/lib/docker/x: no space left on device"},
    "exit-code-125": {"Status": "exited", "ExitCode": 125, "Error": ""},
    "memory-limit-exceeded": {"Status": "running", "OOMKilled": True},
    "health-check-timeout": {"Status": "running", "Health": {"Status": "unhealthy", "Log": [
        {"ExitCode": -1, "Output": "Health check exceeded timeout (10s)"}]}},
}


def test_the_briefs_errors_are_all_listed():
    assert set(known_errors.by_id()) == set(LOG_SAMPLES) | set(STATE_SAMPLES)


@pytest.mark.parametrize("error_id", sorted(LOG_SAMPLES))
def test_each_known_error_is_found_in_a_log(error_id):
    hits = scan_text(CLEAN + LOG_SAMPLES[error_id] + "\n", HOURLY).known
    assert [h.error.id for h in hits] == [error_id]
    assert hits[0].line == LOG_SAMPLES[error_id]


@pytest.mark.parametrize("error_id", sorted(STATE_SAMPLES))
def test_each_state_signature_is_found_in_docker_inspect(error_id):
    assert [e.id for e in known_errors.in_state({"State": STATE_SAMPLES[error_id]})] == [error_id]


def test_a_running_container_after_an_exit_125_is_not_flagged():
    assert known_errors.in_state({"State": {"Status": "running", "ExitCode": 125}}) == []


def test_every_entry_is_usable_and_safe():
    sections = {v for k, v in vars(guide).items() if k.isupper()}
    for entry in known_errors.known_errors():
        assert entry.logs or entry.state, entry.id
        assert entry.section in sections, entry.id
        assert entry.helper is None or entry.helper in HELPERS, entry.id
        assert not re.search(r"kill\s+-9|--volumes", entry.fix), entry.id


@pytest.mark.parametrize("fix", ["lsof -ti:8100 | xargs kill -9", "docker system prune -af --volumes"])
def test_an_unsafe_fix_is_refused(tmp_path, fix):
    bad = tmp_path / "known.yaml"
    bad.write_text(f"- {{id: x, error: e, section: s, logs: x, fix: '{fix}'}}\n")
    with pytest.raises(ValueError, match="entry x: .*unsafe fix"):
        known_errors.known_errors(bad)


def test_diagnose_startup_reads_the_same_list():
    advice = diagnose.startup_advice(LOG_SAMPLES["factor-messagebusconfig-client-id"], diagnose.State.of({}),
                                     "factor-engine", "nautilus-factor-engine", {})
    entry = known_errors.by_id()["factor-messagebusconfig-client-id"]
    assert advice[0] == f'known cause: the guide\'s {entry.summary} ("{entry.error}" in the logs)'
    assert diagnose.startup_errors is known_errors.startup_errors


# -- the checks -------------------------------------------------------------------------

def test_a_clean_log_passes_every_check():
    logs_checks.test_log_error_rate(RISK, scans(CLEAN), INV, verdict(), probe_calls=NO_PROBES)
    logs_checks.test_log_slow_operations(RISK, scans(CLEAN), INV, verdict(), probe_calls=NO_PROBES)
    logs_checks.test_log_known_errors(RISK, scans(CLEAN), snapshot(), INV, verdict())
    logs_checks.test_weekly_error_summary(RISK, scans(CLEAN, window=WEEKLY), INV, verdict(), probe_calls=NO_PROBES)


def test_error_rate_at_the_limit_passes_and_above_fails():
    ten = CLEAN + "ERROR boom\n" * 10
    logs_checks.test_log_error_rate(RISK, scans(ten), INV, verdict(), probe_calls=NO_PROBES)
    v = verdict()
    with pytest.raises(FAILED, match=r"expected at most 10 error lines in the last 1 h .*; saw 11; "
                                     r"latest: 'request failed'$"):
        logs_checks.test_log_error_rate(RISK, scans(ten + "request failed\n"), INV, v, probe_calls=NO_PROBES)
    assert ("measured:errors_lines", "11") in v.records
    # A helper inside advice is a mention; the report hook writes it out with the run's inventory.
    assert dict(v.records)["advice"] == ("read them (docker logs nautilus-risk-engine --since 1h); {{helper "
                                         "diagnose-engine risk}}; a known error is named by log-known-errors")


def test_error_rate_uses_the_engines_own_limit():
    inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    inv.engines["risk"].thresholds["log_errors_per_hour"] = 20
    logs_checks.test_log_error_rate(RISK, scans("ERROR\n" * 15), inv, verdict(), probe_calls=NO_PROBES)


def test_error_lines_are_redacted_in_the_evidence():
    v = Verdict("t")
    with pytest.raises(FAILED) as failure:
        logs_checks.test_log_error_rate(RISK, scans("ERROR connecting to postgresql://u:hunter2@db/x\n" * 11),
                                        INV, v, probe_calls=NO_PROBES)
    assert "hunter2" not in str(failure.value) and "hunter2" not in str(v.records)


def test_a_truncated_window_under_the_limit_cannot_be_judged():
    window = Window("hour", 3600, 100, {"errors": ERRORS, "slow": SLOW}, known=True)
    v = verdict()
    with pytest.raises(Unobservable, match=r"logged more than 100 lines in the last 1 h; the newest 100 hold 0 "
                                           r"error lines \(limit 10\)$"):
        logs_checks.test_log_error_rate(RISK, scans("INFO ok\n" * 100, window=window), INV, v, probe_calls=NO_PROBES)
    assert dict(v.records)["advice"] == "read the rest of the last 1 h with docker logs"
    with pytest.raises(FAILED, match="saw at least 100 "):
        logs_checks.test_log_error_rate(RISK, scans("ERROR\n" * 100, window=window), INV, verdict(), probe_calls=NO_PROBES)


def test_unobserved_logs_cannot_be_judged():
    found = {("local", "nautilus-risk-engine"): Unobserved("no Docker daemon answers")}
    with pytest.raises(Unobservable, match="no Docker daemon answers"):
        logs_checks.test_log_error_rate(RISK, found, INV, verdict(), probe_calls=NO_PROBES)


def test_slow_operations_above_the_limit_fail():
    with pytest.raises(FAILED, match=r"at most 10 slow-operation lines .*saw 11; latest: 'query took 4200ms'"):
        logs_checks.test_log_slow_operations(RISK, scans("slow call\n" * 10 + "query took 4200ms\n"), INV, verdict(), probe_calls=NO_PROBES)


def test_known_error_in_the_logs_fails_with_its_id_line_fix_and_helper():
    log = CLEAN + LOG_SAMPLES["port-in-use"] + "\n"
    v = verdict()
    with pytest.raises(FAILED) as failure:
        logs_checks.test_log_known_errors(RISK, scans(log), snapshot(), INV, v)
    message, fix = str(failure.value), dict(v.records)["advice"]
    assert 'port-in-use ("Port already in use", Knowledge Base > Container Errors) in the logs: ' in message
    assert "address already in use" in message and "fix" not in message and "remediation" not in message
    assert fix.startswith("port-in-use: find out who holds the port")
    assert fix.endswith("; run first: {{helper free-port 8200}}")
    assert "kill -9" not in fix


def test_known_error_in_docker_state_fails():
    with pytest.raises(FAILED, match=r"exit-code-125 .* in docker inspect: State.ExitCode 125 \(status exited\)"):
        logs_checks.test_log_known_errors(RISK, scans(CLEAN), snapshot({"State": STATE_SAMPLES["exit-code-125"]}),
                                          INV, verdict())


def test_engine_helper_is_left_out_for_a_service_container():
    log = LOG_SAMPLES["messagebus-connection-failed"] + "\n"
    service, engine = verdict(), verdict()
    with pytest.raises(FAILED) as failure:
        logs_checks.test_log_known_errors(REDIS, scans(log, target=REDIS), snapshot(), INV, service)
    assert "messagebus-connection-failed" in str(failure.value)
    assert "check-messagebus" not in dict(service.records)["advice"]
    with pytest.raises(FAILED):
        logs_checks.test_log_known_errors(RISK, scans(log), snapshot(), INV, engine)
    assert "run first: {{helper check-messagebus risk}}" in dict(engine.records)["advice"]


def test_weekly_summary_counts_the_weekly_pattern():
    week = "ERROR x\n" * 500 + "request failed\n" * 100
    logs_checks.test_weekly_error_summary(RISK, scans(week, window=WEEKLY), INV, verdict(), probe_calls=NO_PROBES)
    with pytest.raises(FAILED, match=r"at most 500 error lines in the last 168 h .*saw 501"):
        logs_checks.test_weekly_error_summary(RISK, scans(week + "Exception\n", window=WEEKLY), INV, verdict(), probe_calls=NO_PROBES)


# -- the 24-hour error and warning summary (Log Management) ---------------------------

def test_day_window_counts_log_managements_two_greps():
    from observation.logs import DAY
    scan = scan_text(CLEAN + "ERROR order failed\nWarn: retry\n", DAY)
    assert (DAY.seconds, DAY.label, scan.count("errors"), scan.count("warnings")) == (86400, "24 h", 1, 5)


def test_a_day_over_the_error_budget_fails():
    from observation.logs import DAY
    day = "ERROR upstream failed\n" * 240
    logs_checks.test_log_errors_24h(RISK, scans(day, window=DAY), INV, verdict(), probe_calls=NO_PROBES)
    with pytest.raises(FAILED, match=r"expected at most 240 error lines in the last 24 h .*; saw 241; latest"):
        logs_checks.test_log_errors_24h(RISK, scans(day + "Exception\n", window=DAY), INV, verdict(), probe_calls=NO_PROBES)


def test_a_day_over_the_warning_budget_fails_and_the_budget_is_per_engine():
    from observation.logs import DAY
    day = "WARNING slow operation took 2500ms\n" * 241
    with pytest.raises(FAILED, match=r"expected at most 240 warning lines in the last 24 h \(grep -i \"warning\|warn\"\)"):
        logs_checks.test_log_warnings_24h(RISK, scans(day, window=DAY), INV, verdict(), probe_calls=NO_PROBES)
    inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    inv.engines["risk"].thresholds["log_warnings_per_day"] = 300
    logs_checks.test_log_warnings_24h(RISK, scans(day, window=DAY), inv, verdict(), probe_calls=NO_PROBES)


def test_the_day_summary_judges_engines_only_as_the_guide_does():
    spec = logs_checks.test_log_errors_24h.pytestmark[-1].args[0]
    assert spec.applies(RISK) and not spec.applies(REDIS)


# -- lines the suite's own probe calls caused ------------------------------------------

def stamped(seconds: float, text: str) -> str:
    moment = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z " + text


T0 = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc).timestamp()


def test_lines_logged_during_the_suites_own_probe_calls_are_told_apart():
    text = "\n".join([stamped(5.2, "ERROR calculation failed: no data")] * 12 +
                     [stamped(5.3, "  continuation of the traceback, error context")] +
                     [stamped(60, "ERROR order routing failed")] * 2) + "\n"
    scan = scan_text(text, HOURLY, stamp=docker_stamp)
    assert scan.count("errors") == 15
    assert scan.latest("errors")[-1] == "ERROR order routing failed"  # the stamp is not part of the line
    during = [(T0 + 5.0, T0 + 5.4)]
    assert scan.caused_by("errors", during) == 13
    assert scan.caused_by("errors", []) == 0
    assert scan.caused_by("errors", [(T0 + 30, T0 + 31)]) == 0  # a call at another time discounts nothing
    assert scan.seen("errors", 13) == "2 (and 13 logged during the suite's own probe calls, not counted)"


def test_a_line_without_its_own_stamp_takes_the_one_above():
    text = stamped(5.2, "ERROR boom") + "\nTraceback error line without a stamp\n"
    scan = scan_text(text, HOURLY, stamp=docker_stamp)
    assert scan.count("errors") == 2 and scan.caused_by("errors", [(T0 + 5, T0 + 5.3)]) == 2


def test_docker_logs_are_read_with_their_stamps():
    docker = FakeDocker({"nautilus-risk-engine": ["ERROR a"]})
    scan = scan_containers(FakeHosts(docker), [RISK], HOURLY)[("local", "nautilus-risk-engine")]
    assert scan.latest("errors") == ("ERROR a",)
    assert scan.caused_by("errors", [(T0, T0 + 0.1)]) == 1


def test_probe_calls_are_kept_between_runs_and_old_ones_dropped(tmp_path):
    first = ProbeCalls(tmp_path)
    first.note("analytics", 1000.0, 1000.5)
    first.note("analytics", 9_000_000.0, 9_000_000.5)
    first.save(now=9_000_100.0)  # the first call is more than 8 days old by then
    second = ProbeCalls(tmp_path)
    assert second.of("analytics") == [(9_000_000.0, 9_000_000.5)] and second.of("risk") == []
    second.note("risk", 9_000_050.0, 9_000_050.2)
    second.save(now=9_000_100.0)
    assert ProbeCalls(tmp_path).of("risk") == [(9_000_050.0, 9_000_050.2)]
    assert ProbeCalls(tmp_path).of("analytics") == [(9_000_000.0, 9_000_000.5)]


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", '{"analytics": [[1]]}', '{"analytics": 5}'])
def test_an_unreadable_probe_file_is_no_earlier_call(tmp_path, content):
    (tmp_path / "probes.json").write_text(content)
    calls = ProbeCalls(tmp_path)
    assert calls.of("analytics") == []
    calls.note("analytics", 1.0, 2.0)
    calls.save(now=3.0)
    assert ProbeCalls(tmp_path).of("analytics") == [(1.0, 2.0)]


def test_error_lines_the_suites_own_probes_caused_do_not_fail_the_engine(tmp_path):
    probe_lines = [stamped(5.2, "ERROR calculation failed: insufficient market data")] * 15
    found = {("local", RISK.name): scan_text("\n".join(probe_lines) + "\n", HOURLY, stamp=docker_stamp)}
    calls = ProbeCalls(tmp_path)
    calls.note("risk", T0 + 5.0, T0 + 5.3)
    v = verdict()
    logs_checks.test_log_error_rate(RISK, found, INV, v, probe_calls=calls)
    assert ("measured:errors_lines", "0") in v.records
    assert ("measured:errors_lines_during_own_probes", "15") in v.records
    # Without the record of that call, the same lines are the engine's.
    with pytest.raises(FAILED, match=r"saw 15; latest"):
        logs_checks.test_log_error_rate(RISK, found, INV, verdict(), probe_calls=NO_PROBES)
    # Lines of the engine's own beside them are still counted, and the message says what was left out.
    own_burst = [stamped(120, "ERROR order routing failed")] * 11
    found = {("local", RISK.name): scan_text("\n".join(probe_lines + own_burst) + "\n", HOURLY, stamp=docker_stamp)}
    with pytest.raises(FAILED, match=r"saw 11 \(and 15 logged during the suite's own probe calls, not counted\)"):
        logs_checks.test_log_error_rate(RISK, found, INV, verdict(), probe_calls=calls)


def test_overlapping_and_nested_probe_calls_count_each_line_once():
    text = "\n".join(stamped(s, "ERROR x") for s in (4.0, 5.2, 6.0, 9.0, 20.0)) + "\n"
    scan = scan_text(text, HOURLY, stamp=docker_stamp)
    calls = [(T0 + 5.0, T0 + 5.5), (T0 + 4.6, T0 + 5.1), (T0 + 5.1, T0 + 5.2), (T0 + 19.9, T0 + 20.0)]
    # Widened by 0.5 s before and 1.5 s after: 4.1..7.0 and 19.4..21.5 hold the lines at 5.2, 6.0 and 20.0.
    assert scan.caused_by("errors", calls) == 3
    assert scan.caused_by("errors", reversed(calls)) == 3
