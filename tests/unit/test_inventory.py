"""Inventory: the guide's defaults, the lab's file, merging, and one clear line for each bad input."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from observation.inventory import (BusEvidence, HeartbeatStream, DockerHost, Endpoint, Engine, HealthFields, Inventory, InventoryError,
                                MetricsSpec, Secrets, Thresholds, load_inventory, resolve_secret)
from observation.redact import redact
from observation.errors import Unobservable
from observation.postgres import connect_postgres

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab" / "inventory.yaml"
SECRET = "pw-for-tests-7Qz"
ENV = {"NAUTILUS_POSTGRES_PASSWORD": SECRET}
GUIDE_PORTS = {"analytics": 8100, "risk": 8200, "factor": 8300, "ml": 8400, "features": 8500,
               "websocket": 8600, "strategy": 8700, "marketdata": 8800, "portfolio": 8900}
GUIDE_SERVICES = {"backend": (8001, "nautilus-backend"), "frontend": (3000, "nautilus-frontend"),
                  "postgres": (5432, "nautilus-postgres"), "redis": (6379, "nautilus-redis"),
                  "prometheus": (9090, "nautilus-prometheus"), "grafana": (3001, "nautilus-grafana")}


def write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, environ=ENV) -> Inventory:
    return load_inventory(write(tmp_path, text), environ=environ)


def refusal(call) -> str:
    """The InventoryError message of `call()`, checked to be a single line free of the secret."""
    with pytest.raises(InventoryError) as caught:
        call()
    message = str(caught.value)
    assert message.count("\n") == 0, message
    assert SECRET not in message
    return message


def refused(tmp_path: Path, text: str, environ=ENV) -> str:
    """The message for a bad file, with the file's path (checked to lead it) shortened to its name."""
    message = refusal(lambda: load_text(tmp_path, text, environ))
    prefix = f"{tmp_path}/"
    assert message.startswith(prefix + "inventory.yaml: "), message
    return message.removeprefix(prefix)


# -- defaults: the guide's topology ---------------------------------------------

def test_defaults_are_the_guides_engines():
    inv = load_inventory(None, environ=ENV)
    engines = inv.engine_list()
    assert [(e.name, e.port) for e in engines] == list(GUIDE_PORTS.items())
    assert [e.container for e in engines] == [f"nautilus-{name}-engine" for name in GUIDE_PORTS]
    assert {e.host for e in engines} == {"local"}
    assert {e.health_path for e in engines} == {"/health"}
    assert {e.metrics.format for e in engines} == {"prometheus"}
    # No client name by default: the guide's engines are not known to set one (see BusEvidence).
    assert [e.bus for e in engines] == [BusEvidence(client_name=None, heartbeat_key=None)] * 9


def test_defaults_carry_the_guides_fields_metrics_and_endpoints():
    engines = load_inventory(None, environ=ENV).engines
    assert engines["ml"].health == HealthFields(status="status", uptime="uptime_seconds",
                                                messagebus="messagebus_connected", healthy_values=["healthy"],
                                                expected=[])
    assert engines["risk"].health.expected == ["monitoring_active", "monitored_portfolios", "breach_alerts_sent"]
    assert engines["factor"].health.expected == ["factors_calculated", "factor_definitions_loaded"]
    assert engines["analytics"].metrics.names == {"requests": "analytics_requests_total",
                                                  "duration": "analytics_request_duration",
                                                  "errors": "analytics_errors_total"}
    assert engines["risk"].metrics.names == {"checks": "risk_checks_total", "check_duration": "risk_check_duration"}
    assert engines["websocket"].metrics.names == {"connections": "websocket_connections_active",
                                                  "messages": "websocket_messages_sent_total"}
    assert engines["analytics"].endpoints == {"calculate": Endpoint(
        path="/analytics/calculate/{portfolio}", method="POST",
        body={"positions": [{"symbol": "AAPL", "quantity": 100, "price": 150}]})}
    assert engines["risk"].endpoints == {"risk_check": Endpoint(
        path="/risk/check/{portfolio}", method="POST", body={"portfolio_value": 1000000, "positions": []})}
    assert engines["websocket"].endpoints == {"websocket_stats": Endpoint(path="/websocket/stats", method="GET")}
    assert {name: e.endpoints for name, e in engines.items() if name not in ("analytics", "risk", "websocket")} == \
        {name: {} for name in ("factor", "ml", "features", "strategy", "marketdata", "portfolio")}


def test_defaults_services_and_infrastructure():
    inv = load_inventory(None, environ=ENV)
    assert {name: (s.port, s.container) for name, s in inv.services.items()} == GUIDE_SERVICES
    assert inv.services["backend"].health_path == "/health"
    assert inv.services["frontend"].health_path == "/"
    assert [h.model_dump() for h in inv.hosts] == [DockerHost(
        name="local", url="unix:///var/run/docker.sock", address="127.0.0.1", tls_verify=False, cert_path=None
    ).model_dump()]
    assert inv.hosts[0].endpoint.source == "the default, with no hosts[].url and no DOCKER_HOST"
    assert (inv.redis.host, inv.redis.port, inv.redis.db, inv.redis.password_env, inv.redis.container) == \
        ("127.0.0.1", 6379, 0, None, "nautilus-redis")
    assert (inv.postgres.host, inv.postgres.port, inv.postgres.dbname, inv.postgres.user,
            inv.postgres.password_env, inv.postgres.container) == \
        ("127.0.0.1", 5432, "nautilus", "nautilus", "NAUTILUS_POSTGRES_PASSWORD", "nautilus-postgres")
    assert (inv.compose_project, inv.log_dir, inv.backup_dir) == ("nautilus", "/var/log/nautilus",
                                                                  "/var/backups/nautilus")
    assert inv.thresholds == Thresholds()


def test_threshold_defaults_match_the_guide():
    t = Thresholds()
    assert (t.cpu_warning_pct, t.cpu_critical_pct) == (50, 80)
    assert (t.memory_high_pct, t.memory_warning_pct, t.memory_critical_pct) == (70, 80, 90)
    assert (t.response_ok_ms, t.response_slow_ms, t.response_critical_ms) == (500, 1000, 5000)
    assert (t.risk_check_ms, t.analytics_calculation_ms) == (100, 1000)
    assert (t.websocket_connections_warning, t.websocket_connections_critical) == (750, 800)
    assert (t.db_active_connections, t.slow_query_ms) == (20, 1000)
    assert (t.restart_loop_count, t.heartbeat_max_age_s) == (3, 15)


# -- the lab's file ------------------------------------------------------------

def test_lab_inventory_keeps_the_guides_topology_without_grafana():
    inv = load_inventory(LAB, environ=ENV)
    assert {e.name: (e.port, e.container) for e in inv.engine_list()} == \
        {name: (port, f"nautilus-{name}-engine") for name, port in GUIDE_PORTS.items()}
    assert {name: (s.port, s.container) for name, s in inv.services.items()} == \
        {name: spec for name, spec in GUIDE_SERVICES.items() if name != "grafana"}
    in_stream = {"risk", "marketdata", "portfolio"}  # beats read from the stream every engine writes, as on the platform
    assert {e.name: e.bus for e in inv.engine_list()} == {
        name: BusEvidence(client_name=f"nautilus-{name}-engine", heartbeat_key=f"nautilus:heartbeat:{name}")
        if name not in in_stream else
        BusEvidence(client_name=f"nautilus-{name}-engine", heartbeat_stream=HeartbeatStream(
            stream="nautilus:messagebus", match={"engine": name, "kind": "heartbeat"}))
        for name in GUIDE_PORTS}
    assert {tuple(e.health.healthy_values) for e in inv.engine_list()} == {("healthy",)}


def test_lab_inventory_reads_both_contracts():
    engines = load_inventory(LAB, environ=ENV).engines
    assert {name: e.metrics.format for name, e in engines.items()} == {
        "analytics": "prometheus", "factor": "prometheus", "ml": "prometheus", "websocket": "prometheus",
        "strategy": "prometheus", "risk": "json", "features": "json", "marketdata": "json", "portfolio": "none"}
    portfolio = engines["portfolio"].health
    assert (portfolio.status, portfolio.uptime, portfolio.messagebus) == \
        ("status", "metrics.uptime_seconds", "integrations.messagebus_connected")
    assert engines["risk"].health.expected == ["risk_checks_processed", "breaches_detected", "active_limits",
                                               "active_breaches"]
    assert engines["factor"].health.expected == ["factors_calculated", "factor_definitions_loaded"]
    # A body is replaced whole: the real risk engine gets `{}`, not the guide's body merged with it.
    assert engines["risk"].endpoints["risk_check"] == Endpoint(path="/risk/check/{portfolio}", method="POST", body={})
    assert engines["analytics"].endpoints["calculate"].method == "POST"
    assert engines["websocket"].endpoints["websocket_stats"] == Endpoint(path="/websocket/stats")
    assert engines["ml"].metrics.names == {"requests": "ml_requests_total", "duration": "ml_request_duration_seconds",
                                           "errors": "ml_errors_total"}
    assert engines["analytics"].metrics.names["duration"] == "analytics_request_duration_seconds"
    assert engines["risk"].metrics.names == {"requests": "total_requests", "rate": "requests_per_second",
                                             "errors": "total_errors", "uptime": "uptime",
                                             "checks": "total_risk_checks", "breaches": "total_breaches"}


def test_lab_inventory_holds_no_secret():
    raw = yaml.safe_load(LAB.read_text())
    assert redact(raw) == raw  # no key or value that looks like a secret


# -- merging -------------------------------------------------------------------

def test_a_file_changes_only_what_it_names(tmp_path):
    inv = load_text(tmp_path, "engines:\n  risk: {port: 8201}\nthresholds: {response_slow_ms: 800}\n")
    defaults = load_inventory(None, environ=ENV)
    assert inv.engines["risk"].port == 8201
    assert inv.engines["risk"].model_dump(exclude={"port"}) == defaults.engines["risk"].model_dump(exclude={"port"})
    assert {n: e for n, e in inv.engines.items() if n != "risk"} == \
        {n: e for n, e in defaults.engines.items() if n != "risk"}
    assert inv.thresholds.response_slow_ms == 800 and inv.thresholds.response_critical_ms == 5000


def test_nested_mappings_merge_lists_and_bodies_replace(tmp_path):
    inv = load_text(tmp_path, "engines:\n  risk:\n    health: {uptime: metrics.up, expected: [a]}\n"
                              "    metrics: {names: {checks: my_checks}}\n"
                              "    endpoints: {risk_check: {body: {x: 1}}}\n")
    risk = inv.engines["risk"]
    assert (risk.health.status, risk.health.uptime, risk.health.expected) == ("status", "metrics.up", ["a"])
    assert risk.metrics.names == {"checks": "my_checks", "check_duration": "risk_check_duration"}
    assert risk.endpoints["risk_check"] == Endpoint(path="/risk/check/{portfolio}", method="POST", body={"x": 1})


def test_null_removes_an_engine_a_service_or_a_key(tmp_path):
    inv = load_text(tmp_path, "engines:\n  ml: null\n  risk: {metrics: {names: {check_duration: null}}}\n"
                              "services: {grafana: null}\nthresholds: {cpu_warning_pct: null}\n")
    assert sorted(inv.engines) == sorted(set(GUIDE_PORTS) - {"ml"})
    assert sorted(inv.services) == ["backend", "frontend", "postgres", "prometheus", "redis"]
    assert inv.engines["risk"].metrics.names == {"checks": "risk_checks_total"}
    assert inv.thresholds.cpu_warning_pct == 50


def test_new_engine_gets_its_name_container_and_first_host(tmp_path):
    inv = load_text(tmp_path, "hosts: [{name: trading-1}, {name: trading-2, url: 'ssh://ops@t2'}]\n"
                              "engines:\n  options: {port: 9100}\n  risk2: {port: 8200, host: trading-2}\n")
    options = inv.engines["options"]
    assert (options.name, options.container, options.host) == ("options", "nautilus-options-engine", "trading-1")
    assert (inv.engines["risk2"].host, inv.engines["risk"].host) == ("trading-2", "trading-1")
    assert inv.host("trading-2").url == "ssh://ops@t2"
    assert [(e.name, e.host) for e in inv.engine_list(["risk2", "risk", "options"])] == \
        [("risk", "trading-1"), ("risk2", "trading-2"), ("options", "trading-1")]


def test_docker_endpoint_per_host_the_inventory_url_first_then_docker_host(tmp_path):
    env = {**ENV, "DOCKER_HOST": "tcp://fallback:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/env-certs"}
    inv = load_text(tmp_path, "hosts:\n  - {name: t1, url: 'ssh://ops@t1'}\n  - {name: t2}\n"
                              "  - {name: t3, url: 'tcp://t3:2376', tls_verify: true, cert_path: /t3-certs}\n",
                    environ=env)
    assert [(h.url, h.endpoint.source, h.endpoint.tls_verify, h.endpoint.cert_path) for h in inv.hosts] == [
        ("ssh://ops@t1", "hosts[0].url in the inventory", False, None),
        ("tcp://fallback:2376", "DOCKER_HOST", True, "/env-certs"),
        ("tcp://t3:2376", "hosts[2].url in the inventory", True, "/t3-certs")]
    alone = load_text(tmp_path, "hosts: [{name: t2}]\n", environ={**ENV, "DOCKER_HOST": "unix:///run/x.sock"})
    assert alone.hosts[0].endpoint.describe() == "unix:///run/x.sock (from DOCKER_HOST)"


def test_docker_endpoint_is_resolved_with_the_environ_given_not_the_process_one(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://from-the-process:2375")
    assert load_inventory(None, environ=ENV).hosts[0].url == "unix:///var/run/docker.sock"
    assert load_inventory(None, environ={**ENV, "DOCKER_HOST": "ssh://ops@x"}).hosts[0].url == "ssh://ops@x"
    assert DockerHost().url is None and DockerHost().endpoint.url == "tcp://from-the-process:2375"  # built in code


def test_engine_threshold_overrides(tmp_path):
    inv = load_text(tmp_path, "thresholds: {response_slow_ms: 900}\n"
                              "engines:\n  risk: {thresholds: {response_slow_ms: 800, restart_loop_count: 5}}\n")
    assert inv.engines["risk"].limits(inv.thresholds).response_slow_ms == 800
    assert inv.engines["risk"].limits(inv.thresholds).restart_loop_count == 5
    assert inv.engines["ml"].limits(inv.thresholds).response_slow_ms == 900
    assert inv.engines["risk"].limits(inv.thresholds).response_critical_ms == 5000


def test_loading_does_not_change_the_callers_document():
    document = {"engines": {"x": {"port": 9999}}}
    Inventory.model_validate(document)
    assert document == {"engines": {"x": {"port": 9999}}}


def test_models_refuse_unknown_keys_directly():
    for model, data in ((Thresholds, {"cpu": 1}), (HealthFields, {"state": "s"}), (MetricsSpec, {"fmt": "json"}),
                        (BusEvidence, {"client": "c"}), (DockerHost, {"socket": "/x"})):
        with pytest.raises(ValueError, match="Extra inputs are not permitted"):
            model.model_validate(data)
    assert Engine(name="risk", port=8200).container == "nautilus-risk-engine"


# -- bad input: one line naming the file and the key ----------------------------

@pytest.mark.parametrize("text,expected", [
    pytest.param("engines:\n  risk: {prot: 8200}\n", "engines.risk.prot: unknown key", id="unknown-key"),
    pytest.param("surprise: 1\n", "surprise: unknown key", id="unknown-top-key"),
    pytest.param("postgres: {password: hunter2}\n", "postgres.password: unknown key", id="password-in-file"),
    pytest.param("engines:\n  risk: {port: eighty}\n",
                 "engines.risk.port: Input should be a valid integer (got 'eighty')", id="wrong-type"),
    pytest.param("engines:\n  risk: {port: true}\n",
                 "engines.risk.port: Input should be a valid integer (got True)", id="bool-port"),
    pytest.param("engines:\n  risk: {health: {expected: monitoring_active}}\n",
                 "engines.risk.health.expected: Input should be a valid list (got 'monitoring_active')",
                 id="wrong-type-nested"),
    pytest.param("engines:\n  risk: 5\n",
                 "engines.risk: Input should be a valid dictionary or instance of Engine (got 5)", id="not-mapping"),
    pytest.param("engines:\n  risk: {port: 70000}\n",
                 "engines.risk.port: must be between 1 and 65535 (got 70000)", id="port-high"),
    pytest.param("engines:\n  risk: {port: 0}\n", "engines.risk.port: must be between 1 and 65535 (got 0)",
                 id="port-zero"),
    pytest.param("engines:\n  risk: {port: 8100}\n",
                 "engines.risk.port: 8100 is already used by engines.analytics on host 'local'", id="duplicate-port"),
    pytest.param("engines:\n  risk: {port: 8001}\n",
                 "services.backend.port: 8001 is already used by engines.risk on host 'local'",
                 id="duplicate-port-service"),
    pytest.param("engines:\n  risk: {host: elsewhere}\n",
                 "engines.risk.host: unknown host 'elsewhere' (known: ['local'])", id="unknown-host"),
    pytest.param("hosts: [{name: a}, {name: a, url: 'tcp://b:2376'}]\n", "hosts: duplicate host name(s) ['a']",
                 id="duplicate-host"),
    pytest.param("engines:\n  risk: {container: nautilus-ml-engine}\n",
                 "engines.ml.container: 'nautilus-ml-engine' is already used by engines.risk",
                 id="duplicate-container"),
    pytest.param("engines:\n  risk: {name: other}\n", "engines.risk.name: must match its key 'risk' (got 'other')",
                 id="name-not-key"),
    pytest.param("engines:\n  risk: {health_path: health}\n",
                 "engines.risk.health_path: must start with / (got 'health')", id="relative-path"),
    pytest.param("engines:\n  risk: {metrics: {format: xml}}\n",
                 "engines.risk.metrics.format: Input should be 'prometheus', 'json' or 'none' (got 'xml')",
                 id="metrics-format"),
    pytest.param("engines:\n  risk: {endpoints: {risk_check: {method: PUT}}}\n",
                 "engines.risk.endpoints.risk_check.method: Input should be 'GET' or 'POST' (got 'PUT')",
                 id="endpoint-method"),
    pytest.param("engines:\n  options: {}\n", "engines.options.port: Field required", id="new-engine-no-port"),
    pytest.param("engines:\n  risk: {thresholds: {speed: 3}}\n",
                 "engines.risk.thresholds: unknown threshold(s) ['speed']", id="unknown-threshold"),
    pytest.param("engines:\n  risk: {thresholds: {risk_check_ms: fast}}\n",
                 "engines.risk.thresholds: risk_check_ms: Input should be a valid number (got 'fast')",
                 id="threshold-type"),
    pytest.param("engines:\n  risk: {thresholds: {websocket_connections_warning: 700.5}}\n",
                 "engines.risk.thresholds: websocket_connections_warning: Input should be a valid integer (got 700.5)",
                 id="threshold-int"),
    pytest.param("engines:\n  risk: {thresholds: {response_slow_ms: 200}}\n",
                 "engines.risk.thresholds: response_ok_ms (500) must be below response_slow_ms (200)",
                 id="threshold-override-order"),
    pytest.param("thresholds: {cpu_warning_pct: 90}\n",
                 "thresholds: cpu_warning_pct (90) must be below cpu_critical_pct (80)", id="threshold-order"),
    pytest.param("thresholds: {memory_high_pct: 85}\n",
                 "thresholds: memory_high_pct (85) must be below memory_warning_pct (80)", id="memory-order"),
    pytest.param("thresholds: {cpu_warning_pct: -1}\n",
                 "thresholds.cpu_warning_pct: Input should be greater than 0 (got -1)", id="threshold-negative"),
    pytest.param("redis: {db: -1}\n", "redis.db: Input should be greater than or equal to 0 (got -1)",
                 id="redis-db"),
    pytest.param("hosts: [{name: a, url: 'http://x'}]\n",
                 "hosts.0.url: must start with unix://, tcp:// or ssh:// (got 'http://x')", id="host-url"),
    pytest.param("engines: [1, 2]\n", "engines: Input should be a valid dictionary", id="section-type"),
    pytest.param("- just\n- a list\n", "the inventory must be a mapping of sections, got list", id="top-list"),
    pytest.param("engines:\n  risk: {port: 8200\n",
                 "not valid YAML at line 3: expected ',' or '}', but got '<stream end>'", id="bad-yaml"),
    pytest.param("engines:\n\trisk: {port: 8200}\n",
                 "not valid YAML at line 2: found character '\\t' that cannot start any token", id="yaml-tab"),
    pytest.param("engines:\n  risk: {port: 8201}\n  risk: {port: 8202}\n",
                 "not valid YAML at line 3: duplicate key 'risk'", id="yaml-duplicate-key"),
])
def test_bad_files_are_refused_with_one_line_naming_the_key(tmp_path, text, expected):
    assert refused(tmp_path, text) == f"inventory.yaml: {expected}"


def test_the_message_names_the_file_as_given(tmp_path, monkeypatch):
    (tmp_path / "lab").mkdir()
    write(tmp_path / "lab", "engines:\n  risk: {port: 70000}\n")
    monkeypatch.chdir(tmp_path)
    assert refusal(lambda: load_inventory("lab/inventory.yaml", environ=ENV)) == \
        "lab/inventory.yaml: engines.risk.port: must be between 1 and 65535 (got 70000)"


def test_missing_file(tmp_path):
    assert refusal(lambda: load_inventory(tmp_path / "nope.yaml", environ=ENV)) == \
        f"{tmp_path}/nope.yaml: cannot read the inventory (No such file or directory)"


def test_directory_instead_of_file(tmp_path):
    assert refusal(lambda: load_inventory(tmp_path, environ=ENV)) == \
        f"{tmp_path}: cannot read the inventory (Is a directory)"


def test_empty_file_is_the_defaults(tmp_path):
    inv = load_text(tmp_path, "# nothing here\n")
    assert inv.model_dump() == load_inventory(None, environ=ENV).model_dump()


def test_nautilus_inventory_selects_the_file_and_a_path_wins(tmp_path):
    path = write(tmp_path, "engines: {risk: {port: 9200}}\n", "from-env.yaml")
    explicit = write(tmp_path, "engines: {risk: {port: 9300}}\n", "explicit.yaml")
    environ = {**ENV, "NAUTILUS_INVENTORY": str(path)}
    assert load_inventory(None, environ=environ).engines["risk"].port == 9200
    assert load_inventory(explicit, environ=environ).engines["risk"].port == 9300
    assert load_inventory(None, environ={**ENV, "NAUTILUS_INVENTORY": ""}).engines["risk"].port == 8200
    assert refusal(lambda: load_inventory(None, environ={**ENV, "NAUTILUS_INVENTORY": str(tmp_path / "x.yaml")})) \
        == f"{tmp_path}/x.yaml: cannot read the inventory (No such file or directory)"


def test_unknown_engine_selection_lists_the_known_ones():
    inv = load_inventory(None, environ=ENV)
    assert refusal(lambda: inv.engine_list(["rsk", "risk", "mll"])) == (
        "unknown engine(s) ['mll', 'rsk']; known: ['analytics', 'factor', 'features', 'marketdata', 'ml', "
        "'portfolio', 'risk', 'strategy', 'websocket']")
    assert [e.name for e in inv.engine_list(["ml", "risk"])] == ["risk", "ml"]
    assert len(inv.engine_list([])) == 9


def test_unknown_host_lookup():
    inv = load_inventory(None, environ=ENV)
    assert inv.host("local").address == "127.0.0.1"
    assert refusal(lambda: inv.host("far")) == "unknown host 'far'; known: ['local']"


# -- secrets -------------------------------------------------------------------

def test_missing_secret_names_both_ways_to_give_it():
    assert refusal(lambda: load_inventory(None, environ={}).secrets.postgres_password) == (
        "postgres password: set NAUTILUS_POSTGRES_PASSWORD or NAUTILUS_POSTGRES_PASSWORD_FILE (a file holding it)")


def test_secret_from_file(tmp_path):
    secret_file = write(tmp_path, f"  {SECRET}\n", "pw")
    inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD_FILE": str(secret_file)})
    assert inv.secrets.postgres_password == SECRET
    assert inv.secrets.redis_password is None
    assert inv.secrets.values() == [SECRET]


def test_secret_variable_wins_over_file(tmp_path):
    secret_file = write(tmp_path, "from-the-file\n", "pw")
    environ = {"NAUTILUS_POSTGRES_PASSWORD": SECRET, "NAUTILUS_POSTGRES_PASSWORD_FILE": str(secret_file)}
    assert resolve_secret("NAUTILUS_POSTGRES_PASSWORD", environ) == SECRET


def test_unreadable_or_empty_secret_file(tmp_path):
    missing = tmp_path / "x"
    inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD_FILE": str(missing)})
    assert refusal(lambda: inv.secrets.postgres_password) == (
        f"postgres password: cannot read NAUTILUS_POSTGRES_PASSWORD_FILE={missing} (No such file or directory)")
    empty = write(tmp_path, "\n", "empty")
    assert refusal(lambda: resolve_secret("PW", {"PW_FILE": str(empty)}, "postgres password")) == \
        f"postgres password: PW_FILE={empty} is empty"


def test_redis_password_required_only_when_named(tmp_path):
    assert load_inventory(None, environ=ENV).secrets.redis_password is None
    assert refusal(lambda: load_text(tmp_path, "redis: {password_env: LAB_REDIS_PW}\n").secrets.redis_password) == \
        "redis password: set LAB_REDIS_PW or LAB_REDIS_PW_FILE (a file holding it)"
    inv = load_text(tmp_path, "redis: {password_env: LAB_REDIS_PW}\n", environ={**ENV, "LAB_REDIS_PW": "r-9x"})
    assert (inv.secrets.redis_password, inv.secrets.values()) == ("r-9x", [SECRET, "r-9x"])


def test_refused_messages_redact_what_they_quote(tmp_path):
    message = refused(tmp_path, "hosts: [{name: a, url: 'http://ops:hunter2@x'}]\n")
    assert message == "inventory.yaml: hosts.0.url: must start with unix://, tcp:// or ssh:// (got 'http://ops:***@x')"


def test_secrets_are_read_when_first_needed(tmp_path):
    secret_file = write(tmp_path, "first\n", "pw")
    inv = load_inventory(LAB, environ={"NAUTILUS_POSTGRES_PASSWORD_FILE": str(secret_file)})
    secret_file.write_text("second\n")  # not read at load: the value is the file's when first asked for
    assert inv.secrets.postgres_password == "second"
    secret_file.write_text("third\n")  # then kept: one run, one password
    assert inv.secrets.postgres_password == "second"


def test_a_missing_secret_fails_only_what_needs_it():
    inv = load_inventory(LAB, environ={})  # loading, and everything but the service's own probes, needs no secret
    assert inv.secrets.values() == []
    with pytest.raises(Unobservable) as caught:
        connect_postgres(inv)
    assert str(caught.value) == "postgres password: set NAUTILUS_POSTGRES_PASSWORD or NAUTILUS_POSTGRES_PASSWORD_FILE " \
                                "(a file holding it)"
    assert caught.value.fix.startswith("give the suite NAUTILUS_POSTGRES_PASSWORD (or NAUTILUS_POSTGRES_PASSWORD_FILE")


def test_secret_never_shown_by_the_inventory(tmp_path):
    inv = load_inventory(LAB, environ=ENV)
    assert inv.secrets.postgres_password == SECRET
    shown = [repr(inv), str(inv), repr(inv.secrets), str(inv.secrets), str(inv.model_dump()), inv.model_dump_json(),
             repr(inv.model_copy())]
    assert [SECRET in text for text in shown] == [False] * len(shown)
    assert "secrets" not in inv.model_dump()
    assert repr(Secrets(SECRET, "r")) == "Secrets(***)"
