"""The platform's host: disk, memory and load, and Docker's own disk use and storage driver.

One sample of the inventory's first host per run (`host_facts`, `docker_df`);
each check judges one fact of it. Host facts come through testinfra, so an ssh
host in the inventory is read the same way.
"""
from __future__ import annotations

from fixtures.spec import DAILY, WEEKLY, check
from fixtures.targets import leave_out_without_docker
from observation.host_facts import GIB, reclaimable

from .guide import DOCKER_TUNING, FULL_HEALTH

# Docker's checks of a host without Docker are no checks at all (deselected), as a check with no target is.
pytest_generate_tests = leave_out_without_docker

DISK_FIX = ("remove unused images, stopped containers and build cache (docker image prune -a; docker container "
            "prune; docker builder prune) and old logs; never prune volumes, they hold the database and Redis data")


def human(size: int) -> str:
    """Bytes as GB, or MB when small enough that GB would read 0.

    >>> human(12 * GIB), human(5 * 1024 ** 2)
    ('12.0 GB', '5.0 MB')
    """
    return f"{size / GIB:.1f} GB" if size >= GIB / 10 else f"{size / 1024 ** 2:.1f} MB"


def judge_disk(usage, limits, verdict, what: str) -> None:
    __tracebackhide__ = True
    verdict.evidence("df", {"path": usage.path, "mount": usage.mount, "size_gb": round(usage.size_kb / 1024 ** 2, 1),
                            "used_gb": round(usage.used_kb / 1024 ** 2, 1),
                            "available_gb": round(usage.avail_kb / 1024 ** 2, 1), "used_pct": usage.used_pct})
    verdict.measured("used_pct", usage.used_pct)
    if usage.used_pct > limits.disk_warning_pct:
        verdict.measured("level", "WARNING")  # below critical: noted on the row, not a failure
    ok = usage.used_pct <= limits.disk_critical_pct
    if not ok:
        verdict.advise(DISK_FIX)
    verdict.expect(ok, expected=f"{what} ({usage.mount}) at most {limits.disk_critical_pct:g} % used",
                   seen=f"{usage.used_pct:g} % used, {usage.avail_kb / 1024 ** 2:.1f} GB free (CRITICAL; "
                        f"warning above {limits.disk_warning_pct:g} %)")


@check("host-disk-root", "The host's root filesystem is below the critical disk usage", tiers=DAILY,
       severity="critical", guide=FULL_HEALTH)
def test_host_disk_root(host_facts, inventory, verdict):
    judge_disk(verdict.observed(host_facts.disk_root), inventory.thresholds, verdict, "/")


@check("host-disk-docker-root", "Docker's data root (DockerRootDir) is below the critical disk usage", tiers=DAILY,
       severity="critical", guide=FULL_HEALTH,
       needs=("docker-daemon-answers",))
def test_host_disk_docker_root(host_facts, inventory, verdict):
    usage = verdict.observed(host_facts.disk_docker_root)
    judge_disk(usage, inventory.thresholds, verdict, f"Docker's data root {usage.path}")


@check("host-memory", "The host has enough memory available", tiers=DAILY, severity="critical", guide=FULL_HEALTH)
def test_host_memory(host_facts, inventory, verdict):
    memory = verdict.observed(host_facts.memory)
    minimum = inventory.thresholds.host_memory_available_min_pct
    verdict.evidence("meminfo", {"total_mb": memory.total_kb // 1024, "available_mb": memory.available_kb // 1024,
                                 "available_pct": memory.available_pct})
    verdict.measured("available_pct", memory.available_pct)
    ok = memory.available_pct >= minimum
    if not ok:
        verdict.advise("find the largest containers (docker stats --no-stream) and restart a leaking engine, or raise "
                       "the host's memory")
    verdict.expect(ok, expected=f"at least {minimum:g} % of memory available",
                   seen=f"{memory.available_pct:g} % ({memory.available_kb // 1024} MB of "
                        f"{memory.total_kb // 1024} MB)")


@check("host-cpu-load", "The host's 5-minute load per CPU is within bounds", tiers=DAILY, severity="normal",
       guide=FULL_HEALTH)
def test_host_cpu_load(host_facts, inventory, verdict):
    load = verdict.observed(host_facts.load)
    maximum = inventory.thresholds.host_load_per_cpu_max
    verdict.evidence("load", {"1m": load.one, "5m": load.five, "15m": load.fifteen, "cpus": load.cpus})
    verdict.measured("load_per_cpu", load.per_cpu)
    ok = load.per_cpu <= maximum
    if not ok:
        verdict.advise("find the busiest containers (docker stats --no-stream)")
    verdict.expect(ok, expected=f"a 5-minute load of at most {maximum:g} per CPU",
                   seen=f"{load.five:g} on {load.cpus} CPUs = {load.per_cpu:g} per CPU (1 min {load.one:g}, 15 min "
                        f"{load.fifteen:g})")


@check("docker-disk-reclaimable", "Docker holds little reclaimable space (unused images, stopped containers, build cache)",
       tiers=DAILY, severity="normal", guide=FULL_HEALTH, remedy="docker-cleanup",
       needs=("docker-daemon-answers",))
def test_docker_disk_reclaimable(docker_df, inventory, verdict):
    found = reclaimable(verdict.observed(docker_df))
    maximum = inventory.thresholds.docker_reclaimable_max_gb
    verdict.evidence("reclaimable_gb", {**found.as_gb(),
                                        "unused_volumes_not_counted": round(found.volumes_not_counted / GIB, 2)})
    verdict.measured("reclaimable_gb", round(found.total / GIB, 2))
    ok = found.total <= maximum * GIB
    if not ok and found.build_cache > found.images + found.containers:
        verdict.advise("docker builder prune: the build cache is most of it, and docker-cleanup leaves it alone")
    verdict.expect(ok, expected=f"at most {maximum:g} GB reclaimable",
                   seen=f"{human(found.total)} (images {human(found.images)}, stopped containers "
                        f"{human(found.containers)}, build cache {human(found.build_cache)})")


@check("docker-storage-driver", "Docker uses the overlay2 storage driver", tiers=WEEKLY, severity="normal",
       guide=DOCKER_TUNING,
       needs=("docker-daemon-answers",))
def test_docker_storage_driver(host_facts, verdict):
    info = verdict.observed(host_facts.docker_info)
    driver = info.get("Driver")
    verdict.evidence("storage", {"Driver": driver, "DriverStatus": info.get("DriverStatus"),
                                 "DockerRootDir": info.get("DockerRootDir")})
    if driver != "overlay2":
        verdict.advise("set \"storage-driver\": \"overlay2\" in /etc/docker/daemon.json and restart Docker in a "
                       "maintenance window (images and containers of the old driver are not carried over)")
    verdict.expect(driver == "overlay2", expected="storage driver overlay2", seen=repr(driver))
