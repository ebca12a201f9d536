"""An engine whose /health has no uptime or no bus flag (inventory `uptime: false`, `messagebus: false`).

Seen on a deployment: engines answering healthy without these fields failed "no such field", and a null in the
inventory only brought the default path back. With `false` the checks that read the field are not applied to
that engine (deselected, never passed), and the helpers judge it without the field.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checks import test_engine_health as health
from checks import test_messagebus as bus
from observation.http import HttpSample
from observation.inventory import InventoryError, load_inventory
from observation.redis_bus import BusSnapshot
from remediation import procedures
from remediation.context import Context
from remediation.registry import HELPERS
from test_remediation import ENV, FakeAPI, container

ROOT = Path(__file__).resolve().parents[2]
NO_FIELDS = "engines:\n  ml:\n    health: {uptime: false, messagebus: false}\n"


def inventory(tmp_path, text):
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    return load_inventory(path, environ=ENV)


def test_false_says_the_field_does_not_exist_and_null_still_means_the_default(tmp_path):
    ml = inventory(tmp_path, NO_FIELDS).engines["ml"].health
    assert (ml.uptime, ml.messagebus) == (False, False)
    assert not ml.reports("uptime") and not ml.reports("messagebus")
    default = inventory(tmp_path, "engines:\n  ml:\n    health: {uptime: null, messagebus: null}\n").engines["ml"]
    assert (default.health.uptime, default.health.messagebus) == ("uptime_seconds", "messagebus_connected")
    assert default.health.reports("uptime")


@pytest.mark.parametrize("value", ["true", "''", "3"])
def test_anything_but_a_path_or_false_is_refused_in_one_line(tmp_path, value):
    with pytest.raises(InventoryError, match="engines.ml.health.uptime: must be a dotted path into /health, or "
                                             "false when the engine has no such field"):
        inventory(tmp_path, f"engines:\n  ml:\n    health: {{uptime: {value}}}\n")


def test_the_checks_reading_an_absent_field_do_not_apply_to_that_engine(tmp_path):
    inv = inventory(tmp_path, NO_FIELDS)
    for check in (health.test_engine_uptime, bus.test_engine_messagebus_flag):
        spec = check.pytestmark[-1].args[0]
        assert spec.applies(inv.engines["ml"]) is False and spec.applies(inv.engines["risk"]) is True


def test_a_run_collects_no_uptime_or_flag_check_for_that_engine(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(NO_FIELDS + f"state_dir: {tmp_path / 'state'}\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           "-m", "daily", f"--inventory={path}", "-k", "uptime or messagebus_flag"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "NAUTILUS_POSTGRES_PASSWORD": "x"})
    assert done.returncode == 0, done.stdout + done.stderr
    ids = {line.split("::")[1] for line in done.stdout.splitlines() if "::" in line}
    assert {"test_engine_uptime[risk-engine]", "test_engine_messagebus_flag[risk-engine]"} <= ids
    assert not {"test_engine_uptime[ml-engine]", "test_engine_messagebus_flag[ml-engine]"} & ids


BARE = {"status": "healthy"}  # what such an engine answers: no uptime, no bus flag


def bare_health(session, url, **kwargs):
    return HttpSample(url, status=200, elapsed_ms=5.0, body=BARE)


def test_post_restart_validation_judges_the_engine_on_its_status_alone(tmp_path, monkeypatch):
    inv = inventory(tmp_path, NO_FIELDS)
    monkeypatch.setattr("observation.engines.request", bare_health)

    class Open:
        open, error = True, None
    monkeypatch.setattr(procedures, "probe_ports", lambda targets, timeout: {(t.host, t.port): Open for t in targets})
    said = []
    ctx = Context(inv, out=said.append, audit_path=tmp_path / "audit.log")
    bad = procedures.validate(ctx, tmp_path)
    assert not [line for line in bad if "ml engine" in line]
    assert any(line.startswith("  ml engine ") and line.endswith("healthy (HTTP 200, status 'healthy')")
               for line in said), said
    # An engine that should have the flag still shows it missing (the validation judges status only).
    assert any("risk engine" in line and "messagebus MISSING" in line for line in said)


def test_check_messagebus_trusts_redis_alone_for_an_engine_without_a_flag(tmp_path, monkeypatch):
    inv = inventory(tmp_path, NO_FIELDS)
    monkeypatch.setattr("remediation.messagebus.request", bare_health)
    monkeypatch.setattr("remediation.messagebus.redis_view", lambda ctx, engine: {
        "ping_ms": 0.4, "connected_clients": 1, "used_memory": "1.2M",
        "snapshot": BusSnapshot(clients=[{"name": "", "addr": "172.29.0.9:5000", "idle": "0"}], taken_at=1.0)})
    api = FakeAPI(container("nautilus-ml-engine"), container("nautilus-redis"))  # the engine at 172.29.0.9
    said = []
    ctx = Context(inv, docker_factory=lambda host: api, out=said.append, audit_path=tmp_path / "audit.log")
    assert HELPERS["check-messagebus"].run(ctx, "ml", False) == 0
    assert "self-reported bus flag: none (the inventory says its /health has no such field: health.messagebus " \
           "false), so Redis is the only witness" in said
    assert "verdict: Redis sees the engine on the bus" in said
    assert not [line for line in said if "flag is wrong" in line or "missing" in line]
