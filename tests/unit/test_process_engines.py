"""Engines as plain processes: the inventory's process section, finding the process, and its Redis connections.

The process is real: a child Python that listens on a port and holds a TCP connection to a listener standing in
for Redis, so psutil reads real sockets.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks import test_messagebus as bus
from checks import test_ports  # noqa: F401  (registers port-open)
from checks import test_engine_health  # noqa: F401  (registers engine-health-answers)
from fixtures.verdict import Verdict
from observation import processes
from observation.docker_api import ContainerSnapshot
from observation.errors import Unobservable, Unobserved
from observation.own_probes import ProbeCalls
from observation.inventory import InventoryError, load_inventory
from observation.redis_bus import BusSnapshot

FAILED = pytest.fail.Exception
ENV = {"NAUTILUS_POSTGRES_PASSWORD": "x"}
CHILD = """
import socket, sys, time
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen()
bus = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print(listener.getsockname()[1], bus.getsockname()[1], flush=True)
time.sleep(60)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def engine_process(tmp_path):
    """(inventory, engine listening port, the engine's local port towards "Redis", pid)."""
    redis_stand_in = socket.socket()
    redis_stand_in.bind(("127.0.0.1", 0))
    redis_stand_in.listen()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(redis_stand_in.getsockname()[1])],
                             stdout=subprocess.PIPE, text=True)
    try:
        port, bus_port = map(int, child.stdout.readline().split())
        (tmp_path / "engine.pid").write_text(f"{child.pid}\n")
        inventory_file = tmp_path / "inventory.yaml"
        inventory_file.write_text(
            f"redis: {{host: 127.0.0.1, port: {redis_stand_in.getsockname()[1]}}}\n"
            f"engines:\n  proc: {{port: {port}, docker: false, process: {{pid_file: engine.pid, log_file: e.log}}}}\n"
            f"  found: {{port: {port + 1 if port < 65535 else port - 1}, docker: false}}\n")
        yield load_inventory(inventory_file, environ=ENV), port, bus_port, child.pid
    finally:
        child.kill()
        child.wait(5)
        redis_stand_in.close()


def test_the_process_section_is_read_and_its_paths_are_the_inventory_files(tmp_path):
    (tmp_path / "inv.yaml").write_text("engines:\n  risk:\n    docker: false\n    process: {pid_file: run/risk.pid, "
                                       "systemd_unit: risk.service, restart_command: [systemctl, restart, risk]}\n"
                                       "    bus: {client_address: 10.0.0.7}\n")
    risk = load_inventory(tmp_path / "inv.yaml", environ=ENV).engines["risk"]
    assert risk.process.pid_file == str(tmp_path / "run" / "risk.pid")
    assert risk.process.systemd_unit == "risk.service" and risk.process.restart_command[0] == "systemctl"
    assert risk.bus.client_address == "10.0.0.7"


def test_a_bad_process_section_is_one_line(tmp_path):
    (tmp_path / "inv.yaml").write_text("engines:\n  risk:\n    process: {restart_command: [], pidfile: x}\n")
    with pytest.raises(InventoryError, match="engines.risk.process.*"):
        load_inventory(tmp_path / "inv.yaml", environ=ENV)


def test_the_process_is_found_by_its_pid_file_with_its_ports_and_redis_connection(engine_process):
    inventory, port, bus_port, pid = engine_process
    facts = processes.look(inventory.engines["proc"], inventory)
    assert facts.pid == pid and facts.how.startswith("pid file")
    assert port in facts.listening
    assert facts.redis_addresses == {f"127.0.0.1:{bus_port}"}
    assert facts.rss_bytes > 0


def test_the_process_is_found_by_its_port_without_a_pid_file(engine_process):
    inventory, port, _, pid = engine_process
    engine = inventory.engines["proc"].model_copy(update={"process": inventory.engines["proc"].process.model_copy(
        update={"pid_file": None})})
    facts = processes.look(engine, inventory)
    assert facts.pid == pid and facts.how == f"the listener on port {port}"


def test_a_process_not_found_cannot_be_observed_and_says_how_to_tell_the_inventory(engine_process, tmp_path):
    inventory, *_ = engine_process
    with pytest.raises(Unobservable, match="no process listens on port") as caught:
        processes.look(inventory.engines["found"], inventory)
    assert "engines.found.process.pid_file" in caught.value.fix
    (tmp_path / "engine.pid").write_text("999999999\n")
    with pytest.raises(Unobservable, match="pid 999999999 .* is not running"):
        processes.look(inventory.engines["proc"], inventory)


def test_an_engine_on_another_host_is_not_looked_for_here(tmp_path):
    (tmp_path / "inv.yaml").write_text("hosts: [{name: far, address: 10.9.9.9, docker: false}]\n"
                                       "engines: {risk: {port: 8200}}\n")
    inventory = load_inventory(tmp_path / "inv.yaml", environ=ENV)
    with pytest.raises(Unobservable, match="not this machine") as caught:
        processes.look(inventory.engines["risk"], inventory)
    assert "bus.client_address" in caught.value.fix


def bus_view(clients):
    return BusSnapshot(clients=clients, taken_at=time.time())


NO_CONTAINERS = ContainerSnapshot({}, {})


def test_bus_checks_recognise_the_process_connection_and_judge_its_idle_time(engine_process):
    inventory, _, bus_port, _ = engine_process
    engine = inventory.engines["proc"]
    states = {"proc": processes.look(engine, inventory)}
    mine = {"name": "", "addr": f"127.0.0.1:{bus_port}", "idle": "1"}
    other = {"name": "", "addr": "127.0.0.1:1", "idle": "0"}
    bus.test_engine_bus_connection(engine, bus_view([other, mine]), NO_CONTAINERS, states, Verdict("proc"))
    bus.test_engine_bus_idle(engine, bus_view([mine]), NO_CONTAINERS, states, inventory, Verdict("proc"))
    with pytest.raises(FAILED, match="saw idle for 600 s"):
        bus.test_engine_bus_idle(engine, bus_view([{**mine, "idle": "600"}]), NO_CONTAINERS, states, inventory,
                                 Verdict("proc"))
    with pytest.raises(FAILED, match="a Redis connection of proc's process .*another address"):
        bus.test_engine_bus_connection(engine, bus_view([other]), NO_CONTAINERS, states, Verdict("proc"))


def test_bus_checks_cannot_observe_a_process_engine_not_found(engine_process):
    inventory, *_ = engine_process
    states = {"found": Unobserved("found's process not found: no process listens", fix="tell the inventory")}
    with pytest.raises(Unobservable, match="not found"):
        bus.test_engine_bus_connection(inventory.engines["found"], bus_view([]), NO_CONTAINERS, states,
                                       Verdict("found"))


def test_client_address_recognises_an_engine_on_another_machine(tmp_path):
    (tmp_path / "inv.yaml").write_text("engines: {risk: {port: 8200, docker: false, bus: {client_address: 10.0.0.7}}}\n")
    engine = load_inventory(tmp_path / "inv.yaml", environ=ENV).engines["risk"]
    bus.test_engine_bus_connection(engine, bus_view([{"addr": "10.0.0.7:5123", "idle": "0"}]), NO_CONTAINERS, {},
                                   Verdict("risk"))
    with pytest.raises(FAILED, match="from 10.0.0.7"):
        bus.test_engine_bus_connection(engine, bus_view([{"addr": "10.0.0.8:5123"}]), NO_CONTAINERS, {},
                                       Verdict("risk"))


# -- logs, memory and CPU of a process engine; Redis connection churn ---------------------------------------------

from checks import test_processes as proc_checks  # noqa: E402
from checks import test_redis as redis_checks  # noqa: E402
from observation import logs as log_scan  # noqa: E402
from observation.process_logs import scan_process  # noqa: E402
from observation.processes import ProcessUsage  # noqa: E402
from observation.redis_churn import ChurnSample, sample_churn  # noqa: E402


def process_engine(tmp_path, **process):
    (tmp_path / "inv.yaml").write_text("engines: {gamma: {port: 18130, docker: false}}\n")
    engine = load_inventory(tmp_path / "inv.yaml", environ=ENV).engines["gamma"]
    return engine.model_copy(update={"process": engine.process.model_copy(update=process)})


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - seconds_ago)) + ",123"


def test_a_log_file_is_scanned_over_the_hour_by_its_own_time_stamps(tmp_path):
    log = tmp_path / "gamma.log"
    old = [f"{stamp(7200)} ERROR gamma-engine: old failure {i}" for i in range(50)]
    new = [f"{stamp(60)} ERROR gamma-engine: Order routing failed {i}" for i in range(12)]
    log.write_text("\n".join(old + new + ["Traceback (most recent call last):", "ValueError: x",
                                          f"{stamp(30)} INFO gamma-engine: ok"]) + "\n")
    scan = scan_process(process_engine(tmp_path, log_file=str(log)), log_scan.HOURLY)
    assert scan.count("errors") == 13  # the 12 stamped lines and the traceback's ValueError line below them
    engine = process_engine(tmp_path, log_file=str(log))
    inventory = load_inventory(tmp_path / "inv.yaml", environ=ENV)
    with pytest.raises(FAILED, match="expected at most 10 error lines in the last 1 h.*saw 13"):
        proc_checks.test_process_log_error_rate(engine, {"gamma": scan}, inventory, Verdict("gamma"), probe_calls=ProbeCalls(tmp_path))
    log.write_text("\n".join(old) + "\n")
    quiet = scan_process(engine, log_scan.HOURLY)
    proc_checks.test_process_log_error_rate(engine, {"gamma": quiet}, inventory, Verdict("gamma"), probe_calls=ProbeCalls(tmp_path))


def test_a_known_error_in_a_process_log_fails_with_the_guides_fix_and_no_docker(tmp_path):
    log = tmp_path / "gamma.log"
    log.write_text(f"{stamp(10)} ERROR gamma-engine: bind: address already in use\n")
    engine = process_engine(tmp_path, log_file=str(log))
    verdict = Verdict("gamma")
    with pytest.raises(FAILED, match="port-in-use"):
        proc_checks.test_process_log_known_errors(engine, {"gamma": scan_process(engine, log_scan.HOURLY)}, verdict)
    advice = dict(verdict.records)["advice"]
    assert "diagnose-process gamma" in advice


def test_a_process_engine_without_a_log_cannot_be_observed_and_says_what_to_set(tmp_path):
    with pytest.raises(Unobservable, match="names no log for gamma") as caught:
        scan_process(process_engine(tmp_path), log_scan.HOURLY)
    assert "process.log_file" in caught.value.fix
    with pytest.raises(Unobservable, match="cannot be read"):
        scan_process(process_engine(tmp_path, log_file=str(tmp_path / "none.log")), log_scan.HOURLY)


def test_a_log_without_time_stamps_is_judged_on_its_newest_lines_when_written_lately(tmp_path):
    log = tmp_path / "plain.log"
    log.write_text("error one\nerror two\n")
    assert scan_process(process_engine(tmp_path, log_file=str(log)), log_scan.HOURLY).count("errors") == 2
    old = time.time() - 7200
    __import__("os").utime(log, (old, old))
    assert scan_process(process_engine(tmp_path, log_file=str(log)), log_scan.HOURLY).count("errors") == 0


def test_process_memory_and_cpu_are_judged_by_the_container_thresholds(tmp_path):
    engine = process_engine(tmp_path)
    inventory = load_inventory(tmp_path / "inv.yaml", environ=ENV)
    fine = ProcessUsage(rss_bytes=500 * 2**20, limit_bytes=1000 * 2**20, limit_source="cgroup memory.max", cpu_pct=20)
    proc_checks.test_process_memory_usage(engine, {"gamma": fine}, inventory, Verdict("gamma"))
    proc_checks.test_process_cpu_usage(engine, {"gamma": fine}, inventory, Verdict("gamma"))
    heavy = ProcessUsage(rss_bytes=850 * 2**20, limit_bytes=1000 * 2**20, limit_source="host memory", cpu_pct=95)
    with pytest.raises(FAILED, match="memory at most 80 % of its limit; saw 85 % .*host memory.*WARNING"):
        proc_checks.test_process_memory_usage(engine, {"gamma": heavy}, inventory, Verdict("gamma"))
    with pytest.raises(FAILED, match="CPU at most 80 %.*saw 95 % of one core"):
        proc_checks.test_process_cpu_usage(engine, {"gamma": heavy}, inventory, Verdict("gamma"))
    with pytest.raises(Unobservable, match="not found"):
        proc_checks.test_process_cpu_usage(engine, {"gamma": Unobserved("gamma's process not found")}, inventory,
                                           Verdict("gamma"))


def test_process_usage_of_a_real_process_counts_its_memory_and_cpu(engine_process):
    inventory, *_ = engine_process
    facts = processes.look(inventory.engines["proc"], inventory)
    measured = processes.usage(facts, interval_s=0.2)
    assert measured.rss_bytes > 0 and measured.limit_bytes > measured.rss_bytes and 0 <= measured.memory_pct < 100


class FakeRedis:
    def __init__(self, readings):
        self.readings = list(readings)

    def info(self, section):
        assert section == "stats"
        return {"total_connections_received": self.readings.pop(0)}


def test_churn_is_new_connections_a_second_over_the_window():
    clock = iter([0.0, 5.0])
    churn = sample_churn(FakeRedis([1000, 1425]), 5, sleep=lambda s: None, clock=lambda: next(clock))
    assert (churn.new_connections, churn.per_second) == (425, 85.0)
    assert ChurnSample(900, 100, 5).new_connections == 0  # Redis restarted in between: no negative rate


def test_the_churn_check_fails_above_its_threshold():
    inventory = load_inventory(None, environ=ENV)
    redis_checks.test_redis_connection_churn(ChurnSample(100, 110, 5.0), inventory, Verdict("redis"))
    with pytest.raises(FAILED, match="at most 10 new connections a second; saw 425 new connections in 5.0 s \\(85/s\\)"):
        redis_checks.test_redis_connection_churn(ChurnSample(1000, 1425, 5.0), inventory, Verdict("redis"))


# -- helpers: a process engine is never asked of Docker -----------------------------------------------------------

from fixtures.judgement import fix_for  # noqa: E402
from fixtures.spec import REGISTRY  # noqa: E402
from observation.targets import PortTarget  # noqa: E402
from remediation import ports as port_helpers  # noqa: E402
from remediation.context import Context  # noqa: E402
from remediation.errors import RemediationError  # noqa: E402
from remediation.registry import HELPERS  # noqa: E402


def no_docker(host):
    raise AssertionError(f"a helper asked Docker on host {host.name} about a process engine")


def process_context(inventory, tmp_path, lines):
    return Context(inventory, docker_factory=no_docker, out=lines.append, audit_path=tmp_path / "audit.log",
                   sleep=lambda s: None)


def test_docker_helpers_refuse_a_process_engine_and_name_the_process_helpers(engine_process, tmp_path):
    inventory, *_ = engine_process
    ctx = process_context(inventory, tmp_path, [])
    for helper in ("diagnose-startup", "restart-engine", "diagnose-engine", "start-container", "isolate-engine"):
        with pytest.raises(RemediationError, match="runs as a plain process .*use diagnose-process proc"):
            HELPERS[helper].run(ctx, "proc", False)


def test_a_host_without_docker_is_never_asked(tmp_path):
    (tmp_path / "inv.yaml").write_text("hosts: [{name: box, docker: false}]\nengines: {risk: {port: 8200}}\n")
    ctx = process_context(load_inventory(tmp_path / "inv.yaml", environ=ENV), tmp_path, [])
    with pytest.raises(RemediationError, match="has no Docker"):
        ctx.docker("box")


def test_diagnose_process_shows_pid_ports_redis_and_the_last_log_lines(engine_process, tmp_path):
    inventory, port, bus_port, pid = engine_process
    (tmp_path / "e.log").write_text("".join(f"line {i}\n" for i in range(100)))
    lines = []
    assert HELPERS["diagnose-process"].run(process_context(inventory, tmp_path, lines), "proc", False) == 0
    text = "\n".join(lines)
    assert f"pid {pid} (pid file" in text and f"listening on {port}" in text
    assert f"127.0.0.1:{bus_port}" in text and "line 99" in text and "line 69" not in text


def test_restart_process_dry_run_names_the_command_and_apply_runs_it(engine_process, tmp_path):
    inventory, *_ = engine_process
    marker = tmp_path / "restarted"
    engine = inventory.engines["proc"]
    engine.process.restart_command = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"]
    lines = []
    ctx = process_context(inventory, tmp_path, lines)
    assert HELPERS["restart-process"].run(ctx, "proc", False) == 0
    assert any("dry run" in line for line in lines) and not marker.exists()
    ctx.confirm = lambda what, plan: None
    ctx.bundle_dir = tmp_path / "bundle"
    assert HELPERS["restart-process"].run(ctx, "proc", True) == 0  # the port still accepts: ready at once
    assert marker.exists() and (tmp_path / "bundle" / "process.txt").exists()
    assert "restart-process" in (tmp_path / "audit.log").read_text()
    engine.process.restart_command = None
    with pytest.raises(RemediationError, match="names no way to restart proc"):
        HELPERS["restart-process"].run(ctx, "proc", False)


def test_free_port_on_a_process_engines_port_points_at_diagnose_process(tmp_path, monkeypatch):
    (tmp_path / "inv.yaml").write_text("hosts: [{name: box, docker: false}]\nengines: {risk: {port: 8200}}\n")
    lines = []
    ctx = process_context(load_inventory(tmp_path / "inv.yaml", environ=ENV), tmp_path, lines)
    monkeypatch.setattr(port_helpers, "holders", lambda port: ({}, []))
    assert HELPERS["free-port"].run(ctx, "8200", False) == 0
    assert any("risk-engine is not serving:" in line and "diagnose-process risk" in line for line in lines)
    assert not any("diagnose-startup" in line for line in lines)


def test_a_failing_check_on_a_process_engine_names_diagnose_process(engine_process):
    inventory, port, *_ = engine_process
    engine = inventory.engines["proc"]
    fix = fix_for(REGISTRY["engine-health-answers"], {}, engine, {"inventory": None}, inventory)
    assert fix.argv[:2] == ("diagnose-process", "proc")
    fix = fix_for(REGISTRY["engine-bus-idle"], {}, engine, {"inventory": None}, inventory)
    assert fix.argv[:2] == ("check-messagebus", "proc")  # judges a process from its sockets
    port_target = PortTarget(port, "local", "127.0.0.1", "proc-engine")
    fix = fix_for(REGISTRY["port-open"], {}, port_target, {"inventory": None}, inventory)
    assert fix.argv[:2] == ("diagnose-process", "proc")


# -- systemd: MainPID and the journal, through stand-ins for systemctl and journalctl on PATH ---------------------

def stand_in(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_the_process_is_found_by_its_systemd_units_main_pid(engine_process, tmp_path, monkeypatch):
    inventory, _, _, pid = engine_process
    stand_in(tmp_path / "bin", "systemctl", f'[ "$5" = risk.service ] && echo {pid} || echo 0')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{__import__('os').environ['PATH']}")
    engine = inventory.engines["proc"]
    unit = engine.model_copy(update={"process": engine.process.model_copy(update={"pid_file": None,
                                                                                  "systemd_unit": "risk.service"})})
    facts = processes.look(unit, inventory)
    assert facts.pid == pid and facts.how == "systemd unit risk.service"
    stopped = unit.model_copy(update={"process": unit.process.model_copy(update={"systemd_unit": "gone.service"})})
    with pytest.raises(Unobservable, match="gone.service has no main process"):
        processes.look(stopped, inventory)


def test_a_units_journal_is_its_log_when_no_log_file_is_named(tmp_path, monkeypatch):
    stand_in(tmp_path / "bin", "journalctl", 'printf "ERROR one\\nERROR two\\nok\\n"')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{__import__('os').environ['PATH']}")
    scan = scan_process(process_engine(tmp_path, systemd_unit="gamma.service"), log_scan.HOURLY)
    assert scan.count("errors") == 2
