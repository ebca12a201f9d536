"""Remediation helpers: dry runs change nothing, disruptive ones confirm, bundles and audit stay clean."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.inventory import load_inventory
from remediation import actions
from remediation.bundle import write_bundle
from remediation.context import Context, RemediationError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pw-never-shown-9"


class FakeContainer:
    def __init__(self, name, status="running", logs=b""):
        self.name, self.status, self._logs = name, status, logs
        self.attrs = {"State": {"Status": status, "ExitCode": 0, "Health": {"Status": "healthy"}},
                      "RestartCount": 0, "HostConfig": {"PortBindings": {}},
                      "Config": {"Env": [f"POSTGRES_PASSWORD={SECRET}"]}}
        self.calls = []

    def logs(self, **kw):
        return self._logs

    def start(self):
        self.calls.append("start")

    def restart(self, timeout):
        self.calls.append("restart")


class FakeDocker:
    def __init__(self, *containers):
        self.by_name = {c.name: c for c in containers}
        self.containers = self

    def ping(self):
        return True

    def get(self, name):
        import docker
        if name not in self.by_name:
            raise docker.errors.NotFound(name)
        return self.by_name[name]

    def list(self, all=False):
        return list(self.by_name.values())


@pytest.fixture
def ctx(tmp_path):
    risk = FakeContainer("nautilus-risk-engine", logs=(
        f"INFO connecting to postgresql://nautilus:{SECRET}@postgres:5432/nautilus\n"
        f"password={SECRET}\nERROR MessageBus connection failed\n").encode())
    fake = FakeDocker(risk, FakeContainer("nautilus-redis"), FakeContainer("nautilus-postgres", status="exited"))
    inventory = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": SECRET})
    return Context(inventory, docker_factory=lambda: fake, audit_path=tmp_path / "audit.log")


def test_dry_run_of_every_disruptive_helper_changes_nothing(ctx):
    for helper, target in (("restart-engine", "risk"), ("restart-redis", None), ("restart-container", "nautilus-redis")):
        lines = actions.ACTIONS[helper](ctx, target, False)
        assert lines[-1].startswith("dry run: nothing changed")
    assert all(c.calls == [] for c in ctx.docker().by_name.values())
    assert not ctx.audit_path.exists()


def test_start_container_dry_run_then_apply(ctx):
    assert "docker start nautilus-postgres" in actions.start_container(ctx, "nautilus-postgres", False)[0]
    assert ctx.docker().by_name["nautilus-postgres"].calls == []
    ctx.docker().by_name["nautilus-postgres"].status = "running"  # what docker start would do
    assert actions.start_container(ctx, "nautilus-postgres", False) == ["nautilus-postgres is already running; nothing to do"]


def test_apply_restart_writes_a_redacted_bundle_and_an_audit_line(ctx, monkeypatch, tmp_path):
    monkeypatch.setattr("remediation.bundle.OUT_DIR", tmp_path / "out")
    monkeypatch.setattr("remediation.bundle.requests.get", lambda *a, **k: (_ for _ in ()).throw(
        __import__("requests").ConnectionError()))
    lines = actions.restart(ctx, "restart-engine", "risk", True)
    assert ctx.docker().by_name["nautilus-risk-engine"].calls == ["restart"]
    bundle = Path(lines[0].removeprefix("diagnostics saved to "))
    written = "".join(p.read_text() for p in bundle.iterdir())
    assert "nautilus-risk-engine.log" in {p.name for p in bundle.iterdir()}
    assert SECRET not in written and "POSTGRES_PASSWORD" not in written
    assert "postgresql://nautilus:***@postgres" in written
    audit = json.loads(ctx.audit_path.read_text().splitlines()[-1])
    assert (audit["helper"], audit["target"], audit["applied"]) == ("restart-engine", "nautilus-risk-engine", True)
    assert audit["bundle"] == str(bundle)


def test_unknown_targets_are_refused_with_the_known_ones(ctx):
    with pytest.raises(RemediationError, match=r"unknown engine 'rsk'; known: analytics, factor"):
        actions.restart(ctx, "restart-engine", "rsk", False)
    with pytest.raises(RemediationError, match="unknown container 'nautilus-nope'"):
        actions.start_container(ctx, "nautilus-nope", False)
    with pytest.raises(RemediationError, match="free-port takes a port number"):
        actions.free_port(ctx, "risk", False)


def test_known_startup_error_is_recognised(ctx):
    ctx.docker().by_name["nautilus-risk-engine"]._logs = (
        b"ImportError: cannot import name 'MessagePriority' from 'enhanced_messagebus_client'\n")
    lines = actions.diagnose_startup(ctx, "nautilus-risk-engine", False)
    assert any(line.startswith("known cause: the guide's factor-engine import error") for line in lines)


def test_proc_net_tcp_parsing():
    table = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
             "   0: 0100007F:2008 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n"
             "   1: 0100007F:2008 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 222 1\n"
             "   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1\n")
    assert actions.listening_inodes(table, 8200) == {"111"}
    assert actions.listening_inodes(table, 8080) == {"333"}


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remediation", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "NAUTILUS_POSTGRES_PASSWORD": "x", **(env or {})})


def test_cli_errors_are_one_line_and_exit_2():
    done = run_cli("fix-everything")
    assert (done.returncode, done.stderr.strip()) == (
        2, "remediation: unknown helper 'fix-everything'; run `python -m remediation list`")
    done = run_cli("restart-engine")
    assert (done.returncode, done.stderr.strip()) == (2, "remediation: restart-engine needs a <engine> argument")


def test_cli_refuses_disruptive_apply_without_a_terminal():
    done = run_cli("restart-engine", "risk", "--apply")
    assert done.returncode == 2
    assert done.stderr.strip() == ("remediation: refusing a disruptive action without a terminal to confirm it: "
                                   "rerun with --yes")


def test_cli_list_names_every_helper():
    from remediation.registry import HELPERS
    done = run_cli("list")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(HELPERS)
