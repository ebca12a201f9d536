"""The host checks, called directly with constructed host facts: a healthy host passes, each bad fact fails
its own check with a message that says what was expected and seen. Parsing and reading use recorded text
and a stand-in testinfra host."""
from __future__ import annotations

import pytest

from checks import test_host as checks
from fixtures.verdict import Verdict
from observation.errors import Unobservable, Unobserved
from observation.host_facts import (GIB, DiskUsage, HostFacts, Load, Memory, parse_df, parse_load, parse_meminfo,
                                    reclaimable, sample_host)
from observation.inventory import load_inventory

INVENTORY = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
DF = ("Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
      "/dev/vda        264212084 24015752  82375160      23% /\n")


def facts(**changes) -> HostFacts:
    base = dict(name="local", disk_root=DiskUsage("/", "/", 1000, 300, 700),
                disk_docker_root=DiskUsage("/var/lib/docker", "/var/lib/docker", 1000, 300, 700),
                memory=Memory(1000, 500), load=Load(1.0, 1.0, 1.0, 2),
                docker_info={"Driver": "overlay2", "DockerRootDir": "/var/lib/docker"})
    return HostFacts(**{**base, **changes})


def df(images_gb=0.0, stopped_gb=0.0, cache_gb=0.0, volume_gb=0.0) -> dict:
    return {"LayersSize": int((1 + images_gb) * GIB),
            "Images": [{"Id": "a", "Containers": 3, "Size": GIB, "SharedSize": 0},
                       {"Id": "b", "Containers": 0, "Size": int(images_gb * GIB), "SharedSize": 0}],
            "Containers": [{"State": "exited", "SizeRw": int(stopped_gb * GIB)}, {"State": "running", "SizeRw": GIB}],
            "BuildCache": [{"Size": int(cache_gb * GIB), "InUse": False, "Shared": False}],
            "Volumes": [{"UsageData": {"Size": int(volume_gb * GIB), "RefCount": 0}}]}


class FakeHost:
    """Stands in for a testinfra host: canned command output and file contents."""

    def __init__(self, outputs: dict[str, str], files: dict[str, str]):
        self.outputs, self.files = outputs, files

    def check_output(self, command, *args):
        full = command % args if args else command
        if full not in self.outputs:
            raise AssertionError(f"Unexpected exit code 1 for CommandResult(command={full!r})")
        return self.outputs[full]

    def file(self, path):
        content = self.files.get(path)
        return type("F", (), {"content_string": property(lambda s: _content(path, content))})()


def _content(path, content):
    if content is None:
        raise AssertionError(f"cannot read {path}")
    return content


class FakeDocker:
    def info(self):
        return {"Driver": "overlay2", "DockerRootDir": "/data/docker"}


# -- parsing and reading ------------------------------------------------------

def test_parse_df_reads_usage_like_df():
    usage = parse_df("/", DF)
    assert (usage.mount, usage.used_pct) == ("/", 22.6)


def test_parse_df_keeps_a_mount_point_with_spaces():
    usage = parse_df("/mnt/a b", "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 100 90 10 90% /mnt/a b\n")
    assert (usage.mount, usage.used_pct) == ("/mnt/a b", 90.0)


def test_parse_df_refuses_output_without_a_filesystem_line():
    with pytest.raises(ValueError, match="no filesystem line"):
        parse_df("/x", "df: /x: No such file or directory\n")


def test_parse_meminfo_needs_mem_available():
    with pytest.raises(ValueError, match="MemAvailable"):
        parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n")
    assert parse_meminfo("MemTotal: 2000 kB\nMemAvailable: 100 kB\n").available_pct == 5.0


def test_parse_load_divides_by_cpus():
    assert parse_load("8.00 4.00 1.00 1/100 5\n", "4\n").per_cpu == 1.0


def test_reclaimable_counts_images_stopped_containers_and_cache_but_not_volumes():
    found = reclaimable(df(images_gb=2, stopped_gb=1, cache_gb=0.5, volume_gb=50))
    assert (found.images, found.containers, found.build_cache) == (2 * GIB, GIB, GIB // 2)
    assert found.total == int(3.5 * GIB) and found.volumes_not_counted == 50 * GIB


def test_sample_host_reads_docker_root_from_docker_info():
    host = FakeHost({"df -P -k /": DF, "df -P -k /data/docker": DF.replace(" /\n", " /data\n"),
                     "getconf _NPROCESSORS_ONLN": "2\n"},
                    {"/proc/meminfo": "MemTotal: 1000 kB\nMemAvailable: 400 kB\n", "/proc/loadavg": "1.0 1.0 1.0 1/1 1"})
    found = sample_host("local", host, FakeDocker())
    assert found.disk_docker_root.path == "/data/docker" and found.disk_docker_root.mount == "/data"
    assert found.memory.available_pct == 40.0 and found.load.per_cpu == 0.5


def test_sample_host_says_why_a_fact_could_not_be_read():
    host = FakeHost({"df -P -k /": DF}, {})
    found = sample_host("local", host, Unobserved("docker://local: daemon not running"))
    assert isinstance(found.memory, Unobserved) and "/proc/meminfo" in found.memory.reason
    assert "daemon not running" in found.disk_docker_root.reason
    assert found.docker_info == Unobserved("docker://local: daemon not running")


# -- the checks ---------------------------------------------------------------

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


def test_healthy_host_passes_every_check():
    for check in (checks.test_host_disk_root, checks.test_host_disk_docker_root, checks.test_host_memory,
                  checks.test_host_cpu_load):
        run(check, facts(), INVENTORY)
    run(checks.test_docker_disk_reclaimable, df(images_gb=1), INVENTORY)
    run(checks.test_docker_storage_driver, facts())


def test_disk_above_critical_fails_with_free_space_and_fix():
    full = facts(disk_root=DiskUsage("/", "/", 1000, 950, 50))
    finding, fix = failing(checks.test_host_disk_root, full, INVENTORY)
    assert finding.endswith("at most 90 % used; saw 95 % used, 0.0 GB free (CRITICAL; warning above 80 %)")
    assert fix.startswith("remove unused images") and "never prune volumes" in fix


def test_disk_between_warning_and_critical_passes_with_a_warning_noted():
    verdict = run(checks.test_host_disk_docker_root,
                  facts(disk_docker_root=DiskUsage("/var/lib/docker", "/", 1000, 850, 150)), INVENTORY)
    assert ("measured:level", "WARNING") in verdict.records


def test_docker_root_disk_fails_on_its_own():
    full = facts(disk_docker_root=DiskUsage("/var/lib/docker", "/var/lib/docker", 1000, 920, 80))
    run(checks.test_host_disk_root, full, INVENTORY)
    with pytest.raises(pytest.fail.Exception, match=r"Docker's data root /var/lib/docker.*saw 92 % used"):
        run(checks.test_host_disk_docker_root, full, INVENTORY)


def test_unknown_docker_root_cannot_be_observed():
    with pytest.raises(Unobservable, match="data root is unknown"):
        run(checks.test_host_disk_docker_root, facts(disk_docker_root=Unobserved("Docker's data root is unknown")),
            INVENTORY)


def test_low_available_memory_fails():
    with pytest.raises(pytest.fail.Exception, match=r"at least 10 % of memory available; saw 5 %"):
        run(checks.test_host_memory, facts(memory=Memory(2000, 100)), INVENTORY)


def test_high_load_per_cpu_fails_with_its_fix_apart():
    finding, fix = failing(checks.test_host_cpu_load, facts(load=Load(3.0, 5.0, 3.0, 2)), INVENTORY)
    assert finding == ("[t] expected a 5-minute load of at most 2 per CPU; saw 5 on 2 CPUs = 2.5 per CPU "
                       "(1 min 3, 15 min 3)")
    assert fix == "find the busiest containers (docker stats --no-stream)"


@pytest.mark.parametrize("check, args", [
    (checks.test_host_memory, (facts(memory=Memory(2000, 100)), INVENTORY)),
    (checks.test_host_disk_docker_root, (facts(disk_docker_root=DiskUsage("/d", "/", 1000, 990, 10)), INVENTORY)),
    (checks.test_docker_storage_driver, (facts(docker_info={"Driver": "vfs"}),)),
], ids=lambda p: getattr(p, "__name__", ""))
def test_no_finding_carries_its_fix(check, args):
    finding, fix = failing(check, *args)
    assert "fix" not in finding and fix


def test_a_one_minute_spike_alone_passes():
    run(checks.test_host_cpu_load, facts(load=Load(9.0, 2.0, 1.0, 2)), INVENTORY)


def test_reclaimable_above_limit_fails_with_the_cleanup_that_fits():
    finding, fix = failing(checks.test_docker_disk_reclaimable,
                           df(images_gb=8, stopped_gb=3, cache_gb=1, volume_gb=100), INVENTORY)
    assert finding.endswith("at most 10 GB reclaimable; saw 12.0 GB (images 8.0 GB, stopped containers 3.0 GB, "
                            "build cache 1.0 GB)")
    assert fix is None  # its own helper, docker-cleanup, which never touches volumes
    _, fix = failing(checks.test_docker_disk_reclaimable, df(images_gb=1, stopped_gb=1, cache_gb=11), INVENTORY)
    assert fix.startswith("docker builder prune")  # docker-cleanup leaves the build cache alone


def test_big_unused_volumes_alone_do_not_fail():
    run(checks.test_docker_disk_reclaimable, df(volume_gb=500), INVENTORY)


def test_storage_driver_other_than_overlay2_fails():
    with pytest.raises(pytest.fail.Exception, match=r"storage driver overlay2; saw 'vfs'"):
        run(checks.test_docker_storage_driver, facts(docker_info={"Driver": "vfs"}))
