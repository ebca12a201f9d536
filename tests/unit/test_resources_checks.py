"""The resource checks with constructed `docker stats` samples, and the usage maths they share with diagnose-engine."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from checks import test_resources as checks
from fixtures import resource_samples
from fixtures.prefetch import _SAMPLES
from fixtures.verdict import Verdict
from observation.errors import Unobservable, Unobserved
from observation.inventory import load_inventory
from observation.stats import MIB, Usage, cpu_percent, growth_mb_per_min, memory_use, sample_usage
from observation.targets import ContainerTarget
from remediation import diagnose

INVENTORY = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
ENGINE = ContainerTarget("nautilus-risk-engine", "local", "risk")
REDIS = ContainerTarget("nautilus-redis", "local")


def stats(memory_mib: float = 100, limit_mib: float = 256, cpu_cores: float = 0.1, online_cpus: int = 2) -> dict:
    """A `docker stats` answer (cgroup v1 shape): `cpu_cores` busy over one second of a host with `online_cpus`."""
    return {"cpu_stats": {"cpu_usage": {"total_usage": int(5e9 + cpu_cores * 1e9)},
                          "system_cpu_usage": int(100e9 + online_cpus * 1e9), "online_cpus": online_cpus},
            "precpu_stats": {"cpu_usage": {"total_usage": int(5e9)}, "system_cpu_usage": int(100e9)},
            "memory_stats": {"usage": int((memory_mib + 20) * MIB), "limit": int(limit_mib * MIB),
                             "stats": {"total_inactive_file": 20 * MIB, "inactive_file": 20 * MIB}},
            "networks": {"eth0": {"rx_bytes": 3 * MIB, "tx_bytes": MIB}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 2 * MIB},
                                                           {"op": "Write", "value": 5 * MIB}]}}


def usage(target=ENGINE, **kw) -> dict:
    return {(target.host, target.name): Usage.of(stats(**kw))}


def fails(match: str):
    return pytest.raises(pytest.fail.Exception, match=match)


# -- the maths, the way `docker stats` does it ---------------------------------------

def test_one_busy_core_reads_100_percent_like_docker_stats():
    assert cpu_percent(stats(cpu_cores=1, online_cpus=2)) == 100.0
    assert cpu_percent(stats(cpu_cores=0.5, online_cpus=8)) == 50.0


def test_memory_leaves_out_the_inactive_page_cache():
    assert memory_use(stats(memory_mib=100)) == (100 * MIB, 256 * MIB)
    assert Usage.of(stats(memory_mib=192)).memory_pct == 75.0


def test_network_and_block_io_are_summed():
    u = Usage.of(stats())
    assert (u.net_rx, u.net_tx, u.block_read, u.block_write) == (3 * MIB, MIB, 2 * MIB, 5 * MIB)


def test_diagnose_engine_uses_the_same_rules():
    assert diagnose.cpu_percent is cpu_percent and diagnose.memory_use is memory_use
    assert "CPU 100.0 %" in diagnose.stats_line(stats(cpu_cores=1), 50, 80)


def test_sampling_is_concurrent_and_says_why_a_sample_is_missing():
    import threading
    import time
    seen = set()

    def stats_of(target):
        seen.add(threading.get_ident())
        time.sleep(0.2)
        if target == "stopped":
            raise Unobservable("container stopped is exited")
        return stats()

    started = time.monotonic()
    result = sample_usage(["a", "b", "stopped"], stats_of)
    assert time.monotonic() - started < 0.5 and len(seen) == 3
    assert isinstance(result[0], Usage) and result[2] == Unobserved("container stopped is exited")


def test_growth_per_minute():
    a = Usage.of(stats(memory_mib=100), taken_at=0.0)
    b = Usage.of(stats(memory_mib=105), taken_at=20.0)
    assert growth_mb_per_min(a, b) == 15.0


# -- container-memory-usage --------------------------------------------------------------------

def test_memory_below_warning_passes_and_says_high():
    v = Verdict("x")
    checks.test_container_memory_usage(ENGINE, usage(memory_mib=192), INVENTORY, v)  # 75 %: HIGH, not failing
    assert ("measured:memory_level", "HIGH") in v.records


@pytest.mark.parametrize("mib,level", [(210, "WARNING"), (240, "CRITICAL")])
def test_memory_above_warning_fails_with_its_level(mib, level):
    v = Verdict("x")
    with fails(rf"expected memory at most 80 % of its limit; saw .* MiB of 256 MiB\): {level} "
               r"\(HIGH above 70 %, CRITICAL above 90 %\)$"):
        checks.test_container_memory_usage(ENGINE, usage(memory_mib=mib), INVENTORY, v)
    assert dict(v.records)["advice"] == ("restart it to release memory, raise its limit, or find the leak "
                                         "(engine-memory-growth); {{helper diagnose-engine risk}} shows "
                                         "its stats and logs")


def test_memory_threshold_is_per_engine():
    inventory = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    inventory.engines["risk"].thresholds.update(memory_warning_pct=85, memory_critical_pct=95)
    checks.test_container_memory_usage(ENGINE, usage(memory_mib=210), inventory, Verdict("x"))


def test_a_stopped_container_cannot_be_observed():
    with pytest.raises(Unobservable, match="is exited"):
        checks.test_container_memory_usage(
            ENGINE, {("local", ENGINE.name): Unobserved("container x is exited")}, INVENTORY, Verdict("x"))


# -- container-cpu-usage --------------------------------------------------------------------------

def test_moderate_cpu_passes_noted_with_io_evidence():
    v = Verdict("x")
    checks.test_container_cpu_usage(REDIS, usage(REDIS, cpu_cores=0.6), INVENTORY, v)
    assert ("measured:cpu_level", "MODERATE") in v.records
    assert ("measured:network_rx_tx_mib", "3.0 / 1.0") in v.records
    assert ("measured:block_read_write_mib", "2.0 / 5.0") in v.records
    assert any(name == "evidence:docker_stats" and '"block_write_mib": 5.0' in data for name, data in v.records)


def test_cpu_above_critical_fails():
    v = Verdict("x")
    with fails(r"expected CPU at most 80 % \(docker stats: 100 % is one core\); saw 95 % of one core \(HIGH; "
               r"MODERATE above 50 %, 2 CPUs online\)$"):
        checks.test_container_cpu_usage(REDIS, usage(REDIS, cpu_cores=0.95), INVENTORY, v)
    assert dict(v.records)["advice"] == "find the busy work in its logs, scale it out or give it more CPUs"


# -- engine-memory-growth ----------------------------------------------------------------------------

def growth(start: float, end: float, seconds: float = 20.0):
    return {"risk": (Usage.of(stats(memory_mib=start), 0.0), Usage.of(stats(memory_mib=end), seconds))}


def test_flat_memory_passes():
    checks.test_engine_memory_growth(INVENTORY.engines["risk"], growth(100, 102), INVENTORY, Verdict("x"))


def test_growth_above_the_limit_fails():
    v = Verdict("x")
    with fails(r"expected growth at most 10 MB/min; saw 60 MB/min \(100 -> 120 MiB in 20 s.*\): growing as a leak "
               r"does$"):
        checks.test_engine_memory_growth(INVENTORY.engines["risk"], growth(100, 120), INVENTORY, v)
    assert "advice" not in dict(v.records)  # its own helper, diagnose-engine


def test_growth_of_an_unobserved_engine_cannot_be_observed():
    with pytest.raises(Unobservable, match="stopped"):
        checks.test_engine_memory_growth(INVENTORY.engines["risk"], {"risk": Unobserved("stopped")}, INVENTORY,
                                         Verdict("x"))


# -- the memory-growth window -----------------------------------------------------------------------

class States:
    def __init__(self, status: str):
        self.status = status

    def get(self, name, host):
        return {"State": {"Status": self.status}}


class Hosts:
    def get(self, host):
        return self

    def stats(self, name):
        return stats()


def growth_window(monkeypatch, inventory, status: str):
    """The memory-growth sample, and the waits it made."""
    waits = []
    monkeypatch.setattr(resource_samples.time, "sleep", waits.append)
    sample = _SAMPLES["memory_growth"][0]  # the sample's own function, without the fixture around it
    found = sample(docker_hosts=Hosts(), container_states=States(status), inventory=inventory,
                   pytestconfig=SimpleNamespace(stash={}))
    return found, waits


def test_the_growth_window_is_waited_only_when_there_is_something_to_measure(monkeypatch, tmp_path):
    found, waits = growth_window(monkeypatch, INVENTORY, "running")
    assert waits == [20] and all(isinstance(pair, tuple) for pair in found.values())
    found, waits = growth_window(monkeypatch, INVENTORY, "exited")  # none observable
    assert waits == [] and all(isinstance(u, Unobserved) for u in found.values())
    bare = tmp_path / "inv.yaml"
    bare.write_text("hosts: [{name: bare, docker: false}]\n")
    no_engine = load_inventory(bare, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})  # no engine in a container
    assert growth_window(monkeypatch, no_engine, "running") == ({}, [])


# -- container-cpu-scale-out -------------------------------------------------------------------------

def test_cpu_above_the_scale_out_line_fails_weekly():
    checks.test_container_cpu_scale_out(ENGINE, usage(cpu_cores=0.7), INVENTORY, Verdict("x"))
    v = Verdict("x")
    with fails(r"expected CPU at most 70 % \(docker stats: 100 % is one core\), the guide's high-CPU line for "
               r"scaling out; saw 75 % of one core \(2 CPUs online\)$"):
        checks.test_container_cpu_scale_out(ENGINE, usage(cpu_cores=0.75), INVENTORY, v)
    assert dict(v.records)["advice"].startswith("scale it out")
    # Between the lines: the weekly check fails while the daily one (80 %) still passes.
    checks.test_container_cpu_usage(ENGINE, usage(cpu_cores=0.75), INVENTORY, Verdict("x"))


# -- engine-memory-minimum ---------------------------------------------------------------------------------

class Inspected:
    def __init__(self, attrs):
        self.attrs = attrs

    def get(self, name, host):
        return self.attrs


class DaemonInfo:
    def __init__(self, mem_total):
        self.mem_total = mem_total

    def get(self, host):
        return self

    def info(self):
        return {"MemTotal": self.mem_total}


FACTOR = INVENTORY.engines["factor"]


def test_the_guides_minimum_is_the_factor_engines_alone():
    spec = checks.test_engine_memory_minimum.pytestmark[-1].args[0]
    assert [e.name for e in INVENTORY.engine_list() if spec.applies(e)] == ["factor"]
    assert FACTOR.limits(INVENTORY.thresholds).memory_limit_min_gb == 8
    assert INVENTORY.thresholds.memory_limit_min_gb == 0


def test_a_factor_limit_under_8_gib_fails():
    v = Verdict("x")
    with fails(r"expected at least 8 GiB for the factor engine \(the guide's minimum\); saw 0.25 GiB: its memory limit "
               r"\(HostConfig.Memory\)$"):
        checks.test_engine_memory_minimum(FACTOR, Inspected({"HostConfig": {"Memory": 256 * MIB}}), DaemonInfo(0),
                                          INVENTORY, v)
    assert "at least 8G in the compose file" in dict(v.records)["advice"]
    checks.test_engine_memory_minimum(FACTOR, Inspected({"HostConfig": {"Memory": 8 * 2**30}}), DaemonInfo(0),
                                      INVENTORY, Verdict("x"))


def test_an_unlimited_factor_engine_is_judged_on_the_hosts_memory():
    unlimited = Inspected({"HostConfig": {"Memory": 0}})
    checks.test_engine_memory_minimum(FACTOR, unlimited, DaemonInfo(16 * 2**30), INVENTORY, Verdict("x"))
    with fails(r"saw 4.00 GiB: no memory limit, so the memory of host local \(docker info MemTotal\)$"):
        checks.test_engine_memory_minimum(FACTOR, unlimited, DaemonInfo(4 * 2**30), INVENTORY, Verdict("x"))
    with pytest.raises(Unobservable, match="gives no MemTotal"):
        checks.test_engine_memory_minimum(FACTOR, unlimited, DaemonInfo(0), INVENTORY, Verdict("x"))


# -- container-ulimits ---------------------------------------------------------------------------------------

PROC_LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            {nofile}              524288               files
Max locked memory         {memlock}              8388608              bytes
"""


class Host:
    def __init__(self, text=None):
        self.text, self.read = text, []

    def file(self, path):
        self.read.append(path)
        if self.text is None:
            raise PermissionError("Permission denied")
        return SimpleNamespace(content_string=self.text)


def running(ulimits=None, pid=4242) -> Inspected:
    return Inspected({"State": {"Pid": pid}, "HostConfig": {"Ulimits": ulimits}})


def test_the_guides_ulimits_on_the_container_pass():
    own = [{"Name": "nofile", "Soft": 1048576, "Hard": 1048576}, {"Name": "memlock", "Soft": -1, "Hard": -1}]
    host = Host()
    checks.test_container_ulimits(ENGINE, running(own), host, INVENTORY, Verdict("x"))
    assert host.read == []  # nothing asked of /proc when the container says it all


def test_small_ulimits_on_the_container_fail():
    own = [{"Name": "nofile", "Soft": 4096, "Hard": 4096}, {"Name": "memlock", "Soft": -1, "Hard": -1}]
    v = Verdict("x")
    with fails(r"expected nofile at least 1048576, memlock at least unlimited; saw nofile 4096 \(HostConfig.Ulimits\)$"):
        checks.test_container_ulimits(ENGINE, running(own), Host(), INVENTORY, v)
    assert "default-ulimits in /etc/docker/daemon.json" in dict(v.records)["advice"]


def test_the_daemons_defaults_are_read_from_the_process():
    host = Host(PROC_LIMITS.format(nofile=1024, memlock=8388608))
    with fails(r"saw nofile 1024 \(/proc/4242/limits \(the daemon's default-ulimits\)\); memlock 8388608 "):
        checks.test_container_ulimits(REDIS, running(), host, INVENTORY, Verdict("x"))
    assert host.read == ["/proc/4242/limits"]
    guide = Host(PROC_LIMITS.format(nofile=1048576, memlock="unlimited"))
    checks.test_container_ulimits(REDIS, running(), guide, INVENTORY, Verdict("x"))


def test_ulimits_that_cannot_be_read_cannot_be_observed_and_zero_asks_nothing():
    with pytest.raises(Unobservable, match=r"the daemon's default-ulimits apply, and /proc/4242/limits could not be"):
        checks.test_container_ulimits(REDIS, running(), Host(None), INVENTORY, Verdict("x"))
    inventory = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    inventory.thresholds.ulimit_nofile_min = 0
    inventory.thresholds.ulimit_memlock_min = 0
    checks.test_container_ulimits(REDIS, running(), Host(None), inventory, Verdict("x"))
