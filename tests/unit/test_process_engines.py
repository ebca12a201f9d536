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
from fixtures.verdict import Verdict
from observation import processes
from observation.docker_api import ContainerSnapshot
from observation.errors import Unobservable, Unobserved
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
