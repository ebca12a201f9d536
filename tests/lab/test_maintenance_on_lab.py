"""The host, maintenance and trend checks against the lab: all pass when healthy; each real fault fails exactly
its check, with a message naming what is wrong; healed, they pass again.

Checks whose fact the shared lab cannot be pushed past the guide's bound
(a 252 GB disk at 23 %, a host with 95 % memory free, a lab that rotates its
container logs at 10 MB) are run against the real lab with a bound the
measured value is known to cross, which proves the reading and the maths on
real data (see `test_real_figures_cross_a_lowered_bound`).
"""
from __future__ import annotations

import time

import pytest
import requests

from conftest import LAB_INVENTORY, LAB_LABELS, derived_inventory, lab_container, lab_docker, run_checks
from remediation.invocation import render

INVENTORY = (f"--inventory={LAB_INVENTORY}",)
MINE_DAILY = ("host_disk or host_memory or host_cpu_load or docker_disk_reclaimable or backup_today or logs_rotated"
              " or container_log_size or prometheus_targets_up")
MINE_WEEKLY = "docker_storage_driver or image_age or weekly_response_times or weekly_peak_resources"
PROMETHEUS = "http://127.0.0.1:9090"


def assert_failed_exactly(run, expected: set[str]) -> None:
    assert run.outcomes, f"no checks ran:\n{run.output[-3000:]}"
    assert run.failed == expected, (
        f"unexpected failures: {sorted(run.failed - expected)}\nmissing failures: {sorted(expected - run.failed)}"
        f"\n{run.output[-3000:]}")


def inventory_with(tmp_path, **thresholds) -> str:
    return f"--inventory={derived_inventory(tmp_path, thresholds)}"


def wait_for_target(instance: str, health: str, timeout_s: float = 45) -> None:
    """The lab's Prometheus scrapes every 2 s: wait until it has seen the target in the wanted state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        if any(t["labels"].get("instance") == instance and t["health"] == health for t in targets):
            return
        time.sleep(1)
    raise AssertionError(f"Prometheus did not see {instance} {health} within {timeout_s} s")


@pytest.mark.usefixtures("lab")
@pytest.mark.parametrize("tier, selection", [("daily", MINE_DAILY), ("weekly", MINE_WEEKLY)])
def test_healthy_lab_passes(tmp_path, tier, selection):
    run = run_checks(tmp_path, "-m", tier, "-k", selection, *INVENTORY)
    assert_failed_exactly(run, set())
    assert not [n for n, o in run.outcomes.items() if o == "skipped"], run.outcomes
    assert len(run.outcomes) >= (18 if tier == "daily" else 20)


@pytest.mark.lab_fault
def test_old_logs_fail_rotation(tmp_path, fault, heal):
    fault("old-log", "host")
    run = run_checks(tmp_path, "-m", "daily", "-k", MINE_DAILY, *INVENTORY)
    assert_failed_exactly(run, {"test_logs_rotated"})
    message = run.messages["test_logs_rotated"]
    assert "older than 7 days not compressed: " in message and "planted-old.log (10" in message
    assert "older than 30 days not deleted: " in message and "planted-ancient.log (40" in message
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "logs_rotated", *INVENTORY), set())


@pytest.mark.lab_fault
def test_no_backup_today(tmp_path, fault, heal):
    fault("no-backup", "host")
    run = run_checks(tmp_path, "-m", "daily", "-k", MINE_DAILY, *INVENTORY)
    assert_failed_exactly(run, {"test_backup_today"})
    assert "saw none dated today" in run.messages["test_backup_today"]
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "backup_today", *INVENTORY), set())


@pytest.mark.lab_fault
def test_empty_backup_today(tmp_path, fault, heal):
    fault("empty-backup", "host")
    run = run_checks(tmp_path, "-m", "daily", "-k", "backup_today", *INVENTORY)
    assert_failed_exactly(run, {"test_backup_today"})
    assert "(0 bytes, gzip start decompresses to nothing)" in run.messages["test_backup_today"]
    heal()
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "backup_today", *INVENTORY), set())


@pytest.mark.lab_fault
def test_a_running_engine_prometheus_cannot_scrape_is_a_down_target(tmp_path, fault, heal):
    """Running, answering, but its /metrics is not Prometheus text: Prometheus marks the target down."""
    fault("hostile-body", "analytics", "--text", "bad-metrics")
    wait_for_target("analytics-engine:8100", "down")
    run = run_checks(tmp_path, "-m", "daily", "-k", "prometheus_targets_up", *INVENTORY)
    assert_failed_exactly(run, {"test_prometheus_targets_up"})
    assert "1 not up: nautilus-engines/analytics-engine:8100: down" in run.messages["test_prometheus_targets_up"]
    heal()
    wait_for_target("analytics-engine:8100", "up")
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "prometheus_targets_up", *INVENTORY), set())


@pytest.mark.lab_fault
def test_a_stopped_engines_down_target_is_its_containers_cause_not_another(tmp_path, fault, heal):
    fault("stop", "analytics")
    wait_for_target("analytics-engine:8100", "down")
    run = run_checks(tmp_path, "-m", "daily", "-k", "prometheus_targets_up or container_running", *INVENTORY)
    assert_failed_exactly(run, {"test_container_running[nautilus-analytics-engine]"})
    heal()


@pytest.mark.lab_fault
def test_stopped_container_layer_is_reclaimable(tmp_path, lab):
    """A real stopped container with a 5 MB writable layer, against a 1 MB bound the healthy lab (0 B) meets."""
    inventory = inventory_with(tmp_path, docker_reclaimable_max_gb=0.001)
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "docker_disk_reclaimable", inventory), set())
    client = lab_docker()
    image = lab_container("nautilus-redis").attrs["Config"]["Image"]
    leftover = client.containers.run(image, ["sh", "-c", "head -c 5000000 /dev/zero > /tmp/leftover"],
                                     name="nautilus-lab-leftover", detach=True, labels=LAB_LABELS)
    try:
        leftover.wait(timeout=30)
        run = run_checks(tmp_path, "-m", "daily", "-k", "docker_disk_reclaimable", inventory)
        assert_failed_exactly(run, {"test_docker_disk_reclaimable"})
        assert "stopped containers 4.8 MB" in run.messages["test_docker_disk_reclaimable"]
        assert f"remediation: {render(['docker-cleanup'])}" in run.messages["test_docker_disk_reclaimable"]
    finally:
        leftover.remove(force=True)
        client.close()
    assert_failed_exactly(run_checks(tmp_path, "-m", "daily", "-k", "docker_disk_reclaimable", inventory), set())


@pytest.mark.usefixtures("lab")
def test_real_figures_cross_a_lowered_bound(tmp_path):
    """The lab's real disk, memory, load, log files, images, response times and peaks, judged against bounds they
    cross: every one of these checks reads a real figure and fails with it."""
    inventory = inventory_with(
        tmp_path, disk_warning_pct=0.5, disk_critical_pct=1.0, host_memory_available_min_pct=99.99,
        host_load_per_cpu_max=0.0001, container_log_max_mb=0.0001, image_max_age_days=0.00001,
        response_ok_ms=0.00001, response_slow_ms=0.00002, memory_high_pct=0.01, memory_warning_pct=0.02,
        memory_critical_pct=0.03)
    daily = run_checks(tmp_path, "-m", "daily", "-k", "host_disk or host_memory or host_cpu_load or "
                                                      "container_log_size[nautilus-redis]", inventory)
    assert_failed_exactly(daily, {"test_host_disk_root", "test_host_disk_docker_root", "test_host_memory",
                                  "test_host_cpu_load", "test_container_log_size[nautilus-redis]"})
    assert "at most 1 % used; saw " in daily.messages["test_host_disk_root"]
    assert "at most 0.0001 MB; saw " in daily.messages["test_container_log_size[nautilus-redis]"]
    weekly = run_checks(tmp_path, "-m", "weekly", "-k", "image_age[nautilus-redis] or weekly_response_times["
                                                        "analytics-engine] or weekly_peak_resources", inventory)
    assert_failed_exactly(weekly, {"test_image_age[nautilus-redis]", "test_weekly_response_times[analytics-engine]",
                                   "test_weekly_peak_resources"})
    assert "prometheus memory " in weekly.messages["test_weekly_peak_resources"]
    assert "every hourly mean of analytics_request_duration_seconds at most 2e-05 ms" in \
        weekly.messages["test_weekly_response_times[analytics-engine]"]
