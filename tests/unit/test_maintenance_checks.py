"""The maintenance and trend checks, called directly with constructed samples, and their samplers run
through testinfra's local host on real files in a temporary directory (no Docker needed)."""
from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import testinfra

from checks import test_maintenance as checks
from checks import test_trends as trends
from fixtures.verdict import Verdict
from observation.errors import Unobservable, Unobserved
from observation.inventory import load_inventory
from observation.maintenance_windows import Window
from observation.maintenance import (DAY_S, file_size, judge_rotation, parse_find, sample_backups,
                                     sample_log_rotation)
from observation.prometheus import Prometheus, down_targets, instance_port, series_values
from observation.targets import ContainerTarget

INVENTORY = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
HOST = testinfra.get_host("local://")
TODAY = date.today().strftime("%Y%m%d")
PATTERN = "nautilus_backup_{date}*.sql.gz"
ENGINE = ContainerTarget("nautilus-risk-engine", "local", "risk")
MB = 1024 * 1024


def run(check, *args):
    verdict = Verdict("t")
    check(*args, verdict)
    return verdict


def failing(check, *args) -> tuple[str, str | None]:
    """What a failing check says it saw, and the advice it chose as its fix (None: its own helper)."""
    verdict = Verdict("t")
    with pytest.raises(pytest.fail.Exception) as failure:
        check(*args, verdict)
    return str(failure.value), dict(verdict.records).get("advice")


def aged(path, days: float) -> None:
    stamp = time.time() - days * DAY_S
    os.utime(path, (stamp, stamp))


# -- backups -----------------------------------------------------------------

def test_todays_gzip_backup_passes(tmp_path):
    (tmp_path / f"nautilus_backup_{TODAY}-0300.sql.gz").write_bytes(gzip.compress(b"-- PostgreSQL dump\n" * 100))
    sample = sample_backups(HOST, str(tmp_path), PATTERN, date.today())
    assert [b.usable for b in sample.matches] == [True]
    verdict = run(checks.test_backup_today, sample, HOST, INVENTORY)
    assert ("measured:backup_bytes", str(sample.matches[0].size)) in verdict.records


def test_missing_backup_fails_naming_what_is_there(tmp_path):
    (tmp_path / "nautilus_backup_20200101-0300.sql.gz").write_bytes(gzip.compress(b"old"))
    sample = sample_backups(HOST, str(tmp_path), PATTERN, date.today())
    with pytest.raises(pytest.fail.Exception, match=rf"nautilus_backup_{TODAY}\*\.sql\.gz or {tmp_path}/database/"
                                                    rf"nautilus_full_{TODAY}_\*\.sql\.gz; saw none dated today; "
                                                    r"newest files: nautilus_backup_20200101-0300.sql.gz"):
        run(checks.test_backup_today, sample, HOST, INVENTORY)


@pytest.mark.parametrize("content", [b"", gzip.compress(b""), b"not gzip at all"], ids=["zero-bytes", "empty-gzip",
                                                                                       "not-gzip"])
def test_empty_or_broken_backup_fails(tmp_path, content):
    (tmp_path / f"nautilus_backup_{TODAY}.sql.gz").write_bytes(content)
    sample = sample_backups(HOST, str(tmp_path), PATTERN, date.today())
    with pytest.raises(pytest.fail.Exception, match=r"with data \(non-empty, gzip that decompresses\); saw .*"
                                                    r"decompresses to nothing"):
        run(checks.test_backup_today, sample, HOST, INVENTORY)


def test_the_platform_scripts_backup_in_database_passes(tmp_path):
    # The platform's own script: database/nautilus_full_YYYYmmdd_HHMMSS.sql.gz under the backup directory.
    (tmp_path / "database").mkdir()
    name = f"nautilus_full_{TODAY}_031500.sql.gz"
    (tmp_path / "database" / name).write_bytes(gzip.compress(b"-- PostgreSQL dump\n" * 100))
    sample = sample_backups(HOST, str(tmp_path), PATTERN, date.today())
    assert sample.matches == []  # the guide's name alone does not find it
    verdict = run(checks.test_backup_today, sample, HOST, INVENTORY)
    assert json.loads(dict(verdict.records)["evidence:backups"])["matching"] == [
        f"{name} ({(tmp_path / 'database' / name).stat().st_size} bytes, its gzip start decompresses)"]


def test_the_platform_scripts_backup_is_judged_as_the_guides_is(tmp_path):
    (tmp_path / "database").mkdir()
    (tmp_path / "database" / "nautilus_full_20200101_031500.sql.gz").write_bytes(gzip.compress(b"old"))
    finding, _ = failing(checks.test_backup_today, sample_backups(HOST, str(tmp_path), PATTERN, date.today()),
                         HOST, INVENTORY)
    assert finding.endswith("saw none dated today; newest files: database/nautilus_full_20200101_031500.sql.gz")
    (tmp_path / "database" / f"nautilus_full_{TODAY}_031500.sql.gz").write_bytes(b"")
    finding, _ = failing(checks.test_backup_today, sample_backups(HOST, str(tmp_path), PATTERN, date.today()),
                         HOST, INVENTORY)
    assert "with data (non-empty, gzip that decompresses)" in finding


def test_a_pattern_of_the_inventorys_own_is_the_only_name_looked_for(tmp_path):
    (tmp_path / "database").mkdir()
    (tmp_path / "database" / f"nautilus_full_{TODAY}_031500.sql.gz").write_bytes(gzip.compress(b"dump\n" * 100))
    own = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    own.backup_pattern = "pg_{date}.dump"
    finding, _ = failing(checks.test_backup_today, sample_backups(HOST, str(tmp_path), own.backup_pattern,
                                                                  date.today()), HOST, own)
    assert f"pg_{TODAY}.dump; saw none dated today" in finding


def test_missing_backup_directory_fails_clearly(tmp_path):
    sample = sample_backups(HOST, str(tmp_path / "nope"), PATTERN, date.today())
    finding, fix = failing(checks.test_backup_today, sample, HOST, INVENTORY)
    assert finding.endswith(f"saw no directory {tmp_path}/nope")
    assert fix == "check backup_dir in the inventory, and that the backup job is installed"


def test_no_backup_today_says_what_is_there_and_how_to_make_one(tmp_path):
    (tmp_path / "nautilus_backup_20200101.sql.gz").write_bytes(gzip.compress(b"x"))
    finding, fix = failing(checks.test_backup_today, sample_backups(HOST, str(tmp_path), PATTERN, date.today()),
                        HOST, INVENTORY)
    assert "saw none dated today; newest files: " in finding and "fix" not in finding
    assert fix == "run the backup (pg_dump | gzip) and check why today's did not run"


def test_unreadable_backup_sample_cannot_be_observed():
    with pytest.raises(Unobservable, match="ssh: timed out"):
        run(checks.test_backup_today, Unobserved("ssh: timed out"), HOST, INVENTORY)


# -- logs ----------------------------------------------------------------------

def test_parse_find_keeps_spaces_in_paths():
    assert parse_find("1.5 10 /a b/c.log\n")[0].path == "/a b/c.log"


def test_rotated_log_directory_passes(tmp_path):
    (tmp_path / "today.log").write_text("x")
    old = tmp_path / "old.log.gz"
    old.write_bytes(gzip.compress(b"x"))
    aged(old, 60)  # compressed archives stay (the guide deletes only *.log)
    run(checks.test_logs_rotated, sample_log_rotation(HOST, str(tmp_path), 7, 30), INVENTORY)


def test_old_uncompressed_and_expired_logs_fail_listing_the_files(tmp_path):
    (tmp_path / "sub").mkdir()
    # Only files directly in the folder are platform logs (the rotate-logs helper acts on the same selection).
    for name, days in (("week.log", 9), ("month.log", 45), ("fresh.log", 1), ("sub/elsewhere.log", 45)):
        (tmp_path / name).write_text("x")
        aged(tmp_path / name, days)
    found = sample_log_rotation(HOST, str(tmp_path), 7, 30)
    with pytest.raises(pytest.fail.Exception, match=r"1 \*\.log older than 7 days not compressed: .*week.log \(9 days"
                                                    r".*1 \*\.log older than 30 days not deleted: .*/month.log \(45"):
        run(checks.test_logs_rotated, found, INVENTORY)


def test_judge_rotation_uses_whole_ages():
    now = 1000 * DAY_S
    files = parse_find(f"{now - 7 * DAY_S + 60} 1 /l/a.log\n{now - 7 * DAY_S - 60} 1 /l/b.log\n")
    assert [f.path for f in judge_rotation("/l", files, now, 7, 30).uncompressed] == ["/l/b.log"]


def test_missing_log_directory_fails(tmp_path):
    finding, fix = failing(checks.test_logs_rotated, sample_log_rotation(HOST, str(tmp_path / "none"), 7, 30),
                           INVENTORY)
    assert finding.endswith("saw no such directory")
    assert fix == "set log_dir in the inventory to where the platform writes its logs"  # rotate-logs cannot help


# -- container log size ----------------------------------------------------------

class States:
    def __init__(self, **by_name):
        self.by_name = by_name

    def get(self, name, host):
        return self.by_name.get(name)


def test_container_log_size_reads_the_file_through_testinfra(tmp_path):
    log = tmp_path / "c-json.log"
    log.write_bytes(b"x" * 2048)
    assert file_size(HOST, str(log)) == 2048
    assert isinstance(file_size(HOST, str(tmp_path / "gone.log")), Unobserved)


def test_small_container_log_passes_and_big_one_fails():
    states = States(**{ENGINE.name: {"LogPath": "/x"}})
    run(checks.test_container_log_size, ENGINE, {("local", ENGINE.name): 5 * MB}, states, INVENTORY)
    finding, fix = failing(checks.test_container_log_size, ENGINE, {("local", ENGINE.name): 250 * MB}, states,
                           INVENTORY)
    assert finding.endswith("at most 100 MB; saw 250.0 MB") and fix.startswith("set log rotation for the container")


def test_container_without_a_log_file_is_skipped_not_passed():
    states = States(**{ENGINE.name: {"LogPath": "", "HostConfig": {"LogConfig": {"Type": "journald"}}}})
    with pytest.raises(pytest.skip.Exception, match="journald"):
        run(checks.test_container_log_size, ENGINE, {("local", ENGINE.name): None}, states, INVENTORY)


# -- image age -------------------------------------------------------------------

def test_image_age_judges_the_containers_image():
    states = States(**{ENGINE.name: {"Image": "sha256:new", "Config": {"Image": "nautilus/risk"}}})
    df = {"Images": [{"Id": "sha256:new", "Created": time.time() - 3 * DAY_S, "RepoTags": ["nautilus/risk:1"]}]}
    run(checks.test_image_age, ENGINE, states, df, INVENTORY)
    df["Images"][0]["Created"] = time.time() - 200 * DAY_S
    finding, fix = failing(checks.test_image_age, ENGINE, states, df, INVENTORY)
    assert finding.endswith("within 90 days; saw nautilus/risk:1 built 200 days ago")
    assert fix == "rebuild or pull the image for security updates and recreate the container"


# -- Prometheus --------------------------------------------------------------------

UP = {"labels": {"job": "nautilus-engines", "instance": "analytics-engine:8100"}, "health": "up"}
DOWN = {"labels": {"job": "nautilus-engines", "instance": "risk-engine:8200"}, "health": "down",
        "lastError": "dial tcp: lookup risk-engine: no such host"}
PROM = Prometheus("http://127.0.0.1:9090", 1, 1)


class NoContainers:
    """A snapshot where every container runs (none has stopped its target)."""

    def get(self, name, host):
        return {"State": {"Status": "running"}}


NO_CONTAINERS = NoContainers()


def test_targets_all_up_pass_and_a_down_one_fails_by_name():
    run(checks.test_prometheus_targets_up, PROM, [UP], INVENTORY, {}, NO_CONTAINERS)
    finding, fix = failing(checks.test_prometheus_targets_up, PROM, [UP, DOWN], INVENTORY, {}, NO_CONTAINERS)
    assert re.search(r"all 2 active targets up; saw 1 not up: nautilus-engines/risk-engine:8200: down \(dial tcp",
                     finding) and "fix" not in finding
    assert fix == "start the engine behind each target, or correct the scrape config"


def test_a_target_down_under_a_maintenance_window_is_not_a_failure():
    window = Window("engine:risk", "index rebuild", "maintenance", "2026-01-01T00:00:00+00:00", None)
    run(checks.test_prometheus_targets_up, PROM, [UP, DOWN], INVENTORY, {"engine:risk": window}, NO_CONTAINERS)
    with pytest.raises(pytest.fail.Exception, match="risk-engine:8200: down"):
        run(checks.test_prometheus_targets_up, PROM, [UP, DOWN], INVENTORY, {"engine:ml": window}, NO_CONTAINERS)


def test_a_target_down_because_its_container_stopped_is_that_containers_cause_not_this_ones():
    stopped = States(**{"nautilus-risk-engine": {"State": {"Status": "exited"}}})
    verdict = run(checks.test_prometheus_targets_up, PROM, [UP, DOWN], INVENTORY, {}, stopped)
    assert verdict.records  # judged: the down target is explained by container nautilus-risk-engine exited
    assert '"8200": "container nautilus-risk-engine is exited"' in dict(verdict.records)[
        "evidence:down_and_explained_elsewhere"]


def test_no_active_target_fails_and_no_prometheus_skips():
    with pytest.raises(pytest.fail.Exception, match="Prometheus scrapes nothing"):
        run(checks.test_prometheus_targets_up, PROM, [], INVENTORY, {}, NO_CONTAINERS)
    with pytest.raises(pytest.skip.Exception, match="names no Prometheus"):
        run(checks.test_prometheus_targets_up, None, None, INVENTORY, {}, NO_CONTAINERS)


def test_unreachable_prometheus_cannot_be_observed():
    answer = Prometheus("http://127.0.0.1:1", 0.5, 0.5).targets()
    assert isinstance(answer, Unobserved) and "connection refused" in answer.reason
    with pytest.raises(Unobservable, match="connection refused"):
        run(checks.test_prometheus_targets_up, PROM, answer, INVENTORY, {}, NO_CONTAINERS)


# /api/v1/targets as Prometheus 2 answers it for an engine serving JSON at /metrics (the shape of its HTTP API;
# the lastError is the one seen on a deployment of the platform's engines): the target answered, its body is
# not Prometheus' text format. Beside it, a risk engine that is really down.
TARGETS_ANSWER = json.dumps({"status": "success", "data": {"droppedTargets": [], "activeTargets": [
    {"discoveredLabels": {"__address__": "analytics-engine:8100", "__metrics_path__": "/metrics",
                          "__scheme__": "http", "job": "nautilus-engines"},
     "labels": {"instance": "analytics-engine:8100", "job": "nautilus-engines"}, "scrapePool": "nautilus-engines",
     "scrapeUrl": "http://analytics-engine:8100/metrics", "globalUrl": "http://analytics-engine:8100/metrics",
     "lastError": "\"INVALID\" is not a valid start token", "lastScrape": "2026-12-01T09:14:03.512Z",
     "lastScrapeDuration": 0.004, "health": "down", "scrapeInterval": "15s", "scrapeTimeout": "10s"},
    {"discoveredLabels": {"__address__": "prometheus:9090", "job": "prometheus"},
     "labels": {"instance": "prometheus:9090", "job": "prometheus"}, "scrapePool": "prometheus",
     "scrapeUrl": "http://prometheus:9090/metrics", "globalUrl": "http://prometheus:9090/metrics", "lastError": "",
     "lastScrape": "2026-12-01T09:14:05.001Z", "lastScrapeDuration": 0.006, "health": "up",
     "scrapeInterval": "15s", "scrapeTimeout": "10s"}]}})
RISK_DOWN = {"labels": {"job": "nautilus-engines", "instance": "risk-engine:8200"}, "health": "down",
             "lastError": 'Get "http://risk-engine:8200/metrics": dial tcp 172.18.0.6:8200: connect: connection refused'}


@pytest.fixture
def recorded_prometheus():
    """A loopback server answering /api/v1/targets with TARGETS_ANSWER, read through the suite's own client."""
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            body = TARGETS_ANSWER.encode()
            self.send_response(200 if self.path.startswith("/api/v1/targets") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Prometheus(f"http://127.0.0.1:{server.server_port}", 2, 2)
    server.shutdown()
    server.server_close()


def test_an_engine_serving_json_metrics_is_a_format_mismatch_not_an_engine_to_start(recorded_prometheus):
    active = recorded_prometheus.targets()
    finding, fix = failing(checks.test_prometheus_targets_up, recorded_prometheus, active, INVENTORY, {},
                           NO_CONTAINERS)
    assert ('saw 1 not up: nautilus-engines/analytics-engine:8100: down (metrics format mismatch: "INVALID" is not a '
            'valid start token)') in finding
    assert fix == ("metrics format mismatch: Prometheus expects its text format, the engine serves JSON; set "
                   "metrics.format or the scrape config (analytics-engine:8100)")
    assert "start" not in fix.replace("start token", "")  # no engine to start: it answers
    # Beside an engine that is really down, each gets its own fix.
    _, both = failing(checks.test_prometheus_targets_up, recorded_prometheus, [*active, RISK_DOWN], INVENTORY, {},
                      NO_CONTAINERS)
    assert both.endswith("(analytics-engine:8100); for the other 1: start the engine behind each target, or "
                         "correct the scrape config")


def test_prometheus_3_refusing_the_content_type_is_a_format_mismatch_too():
    refused = {**RISK_DOWN, "lastError": 'received unsupported Content-Type "application/json" and no '
                                         "fallback_scrape_protocol specified for target"}
    assert [d.format_mismatch for d in down_targets([refused, RISK_DOWN])] == [True, False]


def test_prometheus_helpers():
    assert [d.instance for d in down_targets([UP, DOWN])] == ["risk-engine:8200"]
    assert instance_port("risk-engine:8200") == 8200 and instance_port("x") is None
    assert series_values({"values": [[1, "NaN"], [2, "0.25"]]}) == [(2.0, 0.25)]


def matrix(*values, **labels):
    return [{"metric": labels, "values": [[1_700_000_000 + 3600 * i, str(v)] for i, v in enumerate(values)]}]


ANALYTICS = INVENTORY.engines["analytics"]


def test_weekly_response_times_judges_the_worst_hour():
    run(trends.test_weekly_response_times, ANALYTICS, PROM, {"analytics": matrix(0.01, 0.2, "NaN")}, INVENTORY)
    with pytest.raises(pytest.fail.Exception, match=r"every hourly mean of analytics_request_duration at most 1000 ms"
                                                    r" this week; saw 1500 ms in the hour to .*1 slow hours of 3"):
        run(trends.test_weekly_response_times, ANALYTICS, PROM, {"analytics": matrix(0.01, 1.5, 0.2)}, INVENTORY)


def test_weekly_response_times_without_samples_cannot_be_observed_and_without_prometheus_skips():
    with pytest.raises(Unobservable, match="no analytics_request_duration_sum/_count samples"):
        run(trends.test_weekly_response_times, ANALYTICS, PROM, {"analytics": []}, INVENTORY)
    with pytest.raises(pytest.skip.Exception, match="names no Prometheus"):
        run(trends.test_weekly_response_times, ANALYTICS, None, {}, INVENTORY)


def peaks(memory_mb, cores, port=9090):
    labels = {"instance": f"127.0.0.1:{port}", "job": "x"}
    return {"memory_bytes": matrix(memory_mb * MB, **labels), "cpu_cores": matrix(cores, **labels)}


PROMETHEUS_STATES = States(**{"nautilus-prometheus": {"HostConfig": {"Memory": 256 * MB}}})


def test_weekly_peaks_within_limits_pass():
    verdict = run(trends.test_weekly_peak_resources, PROM, peaks(100, 0.1), PROMETHEUS_STATES, INVENTORY)
    assert ("measured:targets_judged", "1") in verdict.records


def test_weekly_memory_peak_above_limit_fails():
    with pytest.raises(pytest.fail.Exception, match=r"prometheus memory 89.8 % of its 256 MB limit .*above 80 %"):
        run(trends.test_weekly_peak_resources, PROM, peaks(230, 0.1), PROMETHEUS_STATES, INVENTORY)


def test_weekly_cpu_peak_above_limit_fails():
    with pytest.raises(pytest.fail.Exception, match=r"prometheus CPU 95 % \(of one core, over 5 min\)"):
        run(trends.test_weekly_peak_resources, PROM, peaks(10, 0.95), PROMETHEUS_STATES, INVENTORY)


def test_weekly_peaks_of_nothing_in_the_inventory_cannot_be_observed():
    with pytest.raises(Unobservable, match="no process_resident_memory_bytes or process_cpu_seconds_total"):
        run(trends.test_weekly_peak_resources, PROM, peaks(10, 0.1, port=9999), PROMETHEUS_STATES, INVENTORY)
