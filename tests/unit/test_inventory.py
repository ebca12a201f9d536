"""Inventory: the guide's defaults, merging, and one clear line for each bad input."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.inventory import InventoryError, Thresholds, load_inventory, resolve_secret

ROOT = Path(__file__).resolve().parents[2]
ENV = {"NAUTILUS_POSTGRES_PASSWORD": "pw-for-tests"}


def load_text(tmp_path, text: str, environ=ENV):
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return load_inventory(path, environ=environ)


def refused(tmp_path, text: str, environ=ENV) -> str:
    with pytest.raises(InventoryError) as caught:
        load_text(tmp_path, text, environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_the_guides_topology():
    inv = load_inventory(None, environ=ENV)
    assert {e.name: e.port for e in inv.engine_list()} == {
        "analytics": 8100, "risk": 8200, "factor": 8300, "ml": 8400, "features": 8500,
        "websocket": 8600, "strategy": 8700, "marketdata": 8800, "portfolio": 8900}
    assert [e.container for e in inv.engine_list()][:2] == ["nautilus-analytics-engine", "nautilus-risk-engine"]
    assert {s: inv.services[s].port for s in inv.services} == {
        "backend": 8001, "frontend": 3000, "postgres": 5432, "redis": 6379, "prometheus": 9090, "grafana": 3001}
    assert inv.engines["risk"].health.expected == ["monitoring_active", "monitored_portfolios", "breach_alerts_sent"]
    assert inv.hosts[0].url == "unix:///var/run/docker.sock"
    assert inv.thresholds.response_slow_ms == 1000 and inv.thresholds.db_active_connections == 20


def test_lab_inventory_loads_with_both_contracts():
    inv = load_inventory(ROOT / "lab" / "inventory.yaml", environ=ENV)
    assert "grafana" not in inv.services
    assert inv.engines["portfolio"].health.uptime == "metrics.uptime_seconds"
    assert inv.engines["risk"].metrics.format == "json"
    assert inv.engines["analytics"].metrics.format == "prometheus"


def test_a_file_changes_only_what_it_names(tmp_path):
    inv = load_text(tmp_path, "engines:\n  risk: {port: 8201}\nthresholds: {response_slow_ms: 800}\n")
    assert inv.engines["risk"].port == 8201
    assert inv.engines["risk"].container == "nautilus-risk-engine"
    assert inv.engines["ml"].port == 8400
    assert inv.thresholds.response_slow_ms == 800 and inv.thresholds.response_critical_ms == 5000


def test_null_removes_an_engine_or_service(tmp_path):
    inv = load_text(tmp_path, "engines: {ml: null}\nservices: {grafana: null}\n")
    assert "ml" not in inv.engines and "grafana" not in inv.services


def test_engine_threshold_overrides(tmp_path):
    inv = load_text(tmp_path, "engines:\n  risk: {thresholds: {response_slow_ms: 800}}\n")
    assert inv.engines["risk"].limits(inv.thresholds).response_slow_ms == 800
    assert inv.engines["ml"].limits(inv.thresholds).response_slow_ms == 1000


@pytest.mark.parametrize("text,expected", [
    ("engines:\n  risk: {prot: 8200}\n", "engines.risk.prot: unknown key"),
    ("surprise: 1\n", "surprise: unknown key"),
    ("engines:\n  risk: {port: eighty}\n", "engines.risk.port"),
    ("engines:\n  risk: {port: 70000}\n", "engines.risk.port: must be between 1 and 65535 (got 70000)"),
    ("engines:\n  risk: {port: 8100}\n", "engines.risk.port: 8100 is already used by engines.analytics"),
    ("engines:\n  risk: {host: elsewhere}\n", "engines.risk.host: unknown host 'elsewhere'"),
    ("engines:\n  risk: {thresholds: {speed: 3}}\n", "engines.risk.thresholds: unknown threshold(s) ['speed']"),
    ("thresholds: {cpu_warning_pct: 90}\n", "thresholds: cpu_warning_pct (90.0) must be below cpu_critical_pct (80"),
    ("engines:\n  risk: {thresholds: {response_slow_ms: 200}}\n",
     "engines.risk.thresholds: response_ok_ms (500.0) must be below response_slow_ms (200.0)"),
    ("hosts: [{name: a, url: 'http://x'}]\n", "hosts.0.url: must start with unix://, tcp:// or ssh://"),
    ("engines: [1, 2]\n", "engines"),
    ("- just\n- a list\n", "the inventory must be a mapping"),
    ("engines:\n  risk: {port: 8200\n", "not valid YAML at line"),
])
def test_bad_files_are_refused_with_one_line_naming_the_key(tmp_path, text, expected):
    message = refused(tmp_path, text)
    assert expected in message
    assert str(tmp_path / "inventory.yaml") in message


def test_missing_file(tmp_path):
    with pytest.raises(InventoryError, match=r"nope\.yaml: cannot read the inventory \(No such file"):
        load_inventory(tmp_path / "nope.yaml", environ=ENV)


def test_nautilus_inventory_selects_the_file(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text("engines: {risk: {port: 9200}}\n")
    inv = load_inventory(None, environ={**ENV, "NAUTILUS_INVENTORY": str(path)})
    assert inv.engines["risk"].port == 9200


def test_missing_secret_names_both_ways_to_give_it():
    with pytest.raises(InventoryError) as caught:
        load_inventory(None, environ={})
    assert str(caught.value) == ("postgres password: set NAUTILUS_POSTGRES_PASSWORD or "
                                 "NAUTILUS_POSTGRES_PASSWORD_FILE (a file holding it)")


def test_secret_from_file_and_never_shown(tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-a-file\n")
    inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD_FILE": str(secret_file)})
    assert inv.secrets.postgres_password == "from-a-file"
    assert "from-a-file" not in repr(inv) + str(inv.model_dump()) + inv.model_dump_json()


def test_unreadable_or_empty_secret_file(tmp_path):
    with pytest.raises(InventoryError, match="cannot read NAUTILUS_POSTGRES_PASSWORD_FILE"):
        resolve_secret("NAUTILUS_POSTGRES_PASSWORD", {"NAUTILUS_POSTGRES_PASSWORD_FILE": str(tmp_path / "x")})
    (tmp_path / "empty").write_text("")
    with pytest.raises(InventoryError, match="is empty"):
        resolve_secret("NAUTILUS_POSTGRES_PASSWORD", {"NAUTILUS_POSTGRES_PASSWORD_FILE": str(tmp_path / "empty")})


def test_redis_password_required_only_when_named(tmp_path):
    message = refused(tmp_path, "redis: {password_env: LAB_REDIS_PW}\n")
    assert message.startswith("redis password: set LAB_REDIS_PW")


def test_unknown_engine_selection_lists_the_known_ones():
    inv = load_inventory(None, environ=ENV)
    with pytest.raises(InventoryError, match=r"unknown engine\(s\) \['rsk'\]; known: \['analytics'"):
        inv.engine_list(["rsk"])
    assert [e.name for e in inv.engine_list(["ml", "risk"])] == ["risk", "ml"]


def test_several_hosts_keep_ports_apart(tmp_path):
    inv = load_text(tmp_path, "hosts: [{name: a}, {name: b, url: 'ssh://ops@b'}]\n"
                              "engines:\n  risk2: {port: 8200, host: b}\n")
    assert inv.engines["risk2"].host == "b" and inv.engines["risk"].host == "a"


def test_threshold_defaults_match_the_guide():
    t = Thresholds()
    assert (t.cpu_warning_pct, t.cpu_critical_pct) == (50, 80)
    assert (t.memory_high_pct, t.memory_warning_pct, t.memory_critical_pct) == (70, 80, 90)
    assert (t.response_ok_ms, t.response_slow_ms, t.response_critical_ms) == (500, 1000, 5000)
    assert (t.risk_check_ms, t.analytics_calculation_ms) == (100, 1000)
    assert (t.websocket_connections_warning, t.websocket_connections_critical) == (750, 800)
    assert (t.db_active_connections, t.slow_query_ms) == (20, 1000)
