"""The guide's system information comes from what the run sampled, and only from the platform's containers."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures.state import INVENTORY, TAKEN
from fixtures.system_facts import system_rows
from observation.errors import Unobserved
from observation.inventory import load_inventory

LAB = load_inventory(Path(__file__).resolve().parents[2] / "lab" / "inventory.yaml", environ={})


class Snapshot:
    def __init__(self, containers: dict[str, dict]):
        self.containers = containers

    def get(self, name: str, host: str) -> dict | None:
        return self.containers.get(name)


def config_with(taken: dict) -> SimpleNamespace:
    stash = pytest.Stash()
    stash[INVENTORY], stash[TAKEN] = LAB, taken
    return SimpleNamespace(stash=stash)


def container(network: str, compose: str | None = "2.40.3") -> dict:
    labels = {"com.docker.compose.version": compose} if compose else {}
    return {"Config": {"Labels": labels}, "NetworkSettings": {"Networks": {network: {}}}}


def test_rows_come_from_the_samples_and_the_platforms_containers_only():
    info = {"Name": "trade-1", "OperatingSystem": "Debian GNU/Linux 12", "KernelVersion": "6.1.0",
            "ServerVersion": "26.1.5"}
    snapshot = Snapshot({"nautilus-risk-engine": container("platform_net"),
                         "someone-elses-job": container("their_net", compose="1.29.2")})
    rows = dict(system_rows(config_with({"host_facts": SimpleNamespace(docker_info=info),
                                         "container_states": snapshot})))
    assert rows == {"Hostname": "trade-1", "OS": "Debian GNU/Linux 12", "Kernel": "6.1.0", "Docker": "26.1.5",
                    "Compose": "2.40.3", "Docker networks": "platform_net"}


def test_what_was_not_sampled_says_so_and_asks_nothing():
    down = SimpleNamespace(docker_info=Unobserved("docker://local: no Docker daemon answers"))
    rows = dict(system_rows(config_with({"host_facts": down})))
    assert set(rows.values()) == {"not read in this run"}
    assert dict(system_rows(config_with({})))["Docker"] == "not read in this run"


def test_the_html_shows_the_system_rows_under_what_was_checked():
    from fixtures.record import RunFacts
    from observation.redact import Redactor
    from reports.html_story import _environment

    facts = RunFacts(inventory_path=None, hosts=(("local", "127.0.0.1", "unix:///var/run/docker.sock"),),
                     engines=("risk",), redactor=Redactor([]),
                     system=lambda: (("Hostname", "trade-1"), ("Kernel", "6.1.0"), ("Docker networks", "platform_net")))
    html = _environment(facts, "daily", "run-1")
    assert html.startswith("<h3>What was checked</h3>")
    for label, value in facts.system():
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in html
