"""The guide's procedures (emergency restart, isolation, rebuild) against a fake Docker API: order, timeouts, safety.

The fake records every call that would change something; any API method it
does not define (kill, prune, remove_container, remove_volume, ...) is recorded
as forbidden, so "never killed, never pruned" is asserted on what was called.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys

import docker
import pytest

from observation.http import HttpSample
from observation.inventory import load_inventory
from observation.maintenance_windows import WindowBook
from remediation import compose, procedures
from remediation.cli import main
from remediation.context import Context
from remediation.errors import RemediationError
from remediation.invocation import ENTRY
from remediation.targets import platform_containers
from test_remediation import ENV, SECRET, Clock, FakeAPI, container

ALLOWED = {"start", "stop", "exec_create", "exec_start", "exec_inspect", "connect_container_to_network",
           "disconnect_container_from_network"}


class ProcedureAPI(FakeAPI):
    """FakeAPI plus stop, exec and network calls; every other changing method is recorded as forbidden."""

    def __init__(self, *containers):
        super().__init__(*containers)
        self.pg_isready = (0, b"127.0.0.1:5432 - accepting connections\n")
        self.start_leaves: dict[str, dict] = {}  # container -> State after start (default: running, healthy)

    def __getattr__(self, name):
        if name.startswith("_") or not hasattr(docker.APIClient, name):  # not an API method: a plain attribute
            raise AttributeError(name)
        return lambda *args, **kwargs: self.changes.append(("FORBIDDEN " + name, *args))

    def stop(self, name, timeout=None):
        self.changes.append(("stop", name, timeout))
        self._get(name)["attrs"]["State"].update({"Status": "exited", "ExitCode": 0})

    def start(self, name):
        self.changes.append(("start", name))
        state = self._get(name)["attrs"]["State"]
        state.update({"Status": "running", **({"Health": {"Status": "healthy"}} if "Health" in state else {})})
        state.update(self.start_leaves.get(name, {}))

    def exec_create(self, name, cmd, **_):
        self.changes.append(("exec", name, tuple(cmd)))
        return {"Id": "exec1"}

    def exec_start(self, exec_id, **_):
        return self.pg_isready[1]

    def exec_inspect(self, exec_id):
        return {"ExitCode": self.pg_isready[0]}

    def disconnect_container_from_network(self, name, network, **_):
        self.changes.append(("disconnect", name, network))
        self._get(name)["attrs"]["NetworkSettings"]["Networks"].pop(network)

    def connect_container_to_network(self, name, network, **kwargs):
        self.changes.append(("connect", name, network, kwargs.get("aliases")))
        self._get(name)["attrs"]["NetworkSettings"]["Networks"][network] = {"Aliases": kwargs.get("aliases")}


def platform_api() -> ProcedureAPI:
    inventory = load_inventory(None, environ=ENV)
    api = ProcedureAPI(*(container(name) for name in platform_containers(inventory)))
    factor = api.by_name["nautilus-factor-engine"]["attrs"]
    factor["Id"] = "f95d94e65a67" + "0" * 52
    factor["NetworkSettings"]["Networks"]["nautilus_nautilus-network"]["Aliases"] = [
        "nautilus-factor-engine", "factor-engine", "f95d94e65a67"]
    factor["Config"]["Labels"].update({"com.docker.compose.project": "nautilus",
                                       "com.docker.compose.project.config_files": "/srv/nautilus/compose.yaml",
                                       "com.docker.compose.project.working_dir": "/srv/nautilus"})
    return api


@pytest.fixture
def api():
    return platform_api()


@pytest.fixture
def output():
    return []


@pytest.fixture
def quiet_network(monkeypatch):
    """Engine /health, the backend's /health, Redis PING and port probes, without a network."""
    def healthy(session, url, **kwargs):
        return HttpSample(url, status=200, elapsed_ms=5.0, body={"status": "healthy", "messagebus_connected": True})
    monkeypatch.setattr("observation.engines.request", healthy)
    monkeypatch.setattr(procedures, "request", healthy)
    monkeypatch.setattr(procedures, "connect_redis", lambda inventory: io.StringIO())

    class Open:
        open, error = True, None
    monkeypatch.setattr(procedures, "probe_ports", lambda targets, timeout: {(t.host, t.port): Open for t in targets})


@pytest.fixture
def ctx(api, output, tmp_path, quiet_network, monkeypatch):
    monkeypatch.setattr(procedures, "ISOLATION_DIR", tmp_path / "isolation")
    clock = Clock()  # waits cost no real time
    inventory = load_inventory(None, environ=ENV)
    inventory.state_dir = str(tmp_path / "state")  # maintenance windows stay out of the checkout's reports/out
    return Context(inventory, docker_factory=lambda host: api, out=output.append,
                   confirm=lambda name, plan: None, audit_path=tmp_path / "audit.log",
                   bundle_dir=tmp_path / "bundle", sleep=clock.sleep, clock=clock)


def forbidden(api) -> list:
    return [c for c in api.changes if c[0] not in {"stop", "start", "exec", "connect", "disconnect"}]


# -- emergency-restart --------------------------------------------------------------------------

STOP_ORDER = [{"nautilus-frontend", "nautilus-grafana", "nautilus-prometheus"},
              {f"nautilus-{e}-engine" for e in ("analytics", "risk", "factor", "ml", "features", "websocket",
                                                "strategy", "marketdata", "portfolio")},
              {"nautilus-backend"}, {"nautilus-postgres", "nautilus-redis"}]


def groups(calls: list[tuple], verb: str) -> list[set]:
    """Consecutive calls of `verb` grouped by the phase their container belongs to."""
    found: list[set] = []
    for call in calls:
        if call[0] != verb:
            continue
        group = next(g for g in STOP_ORDER if call[1] in g)
        if not found or found[-1] != group:
            found.append(group)
    return found


def test_emergency_restart_stops_in_reverse_and_starts_in_the_guides_phases(ctx, api, output, tmp_path):
    assert procedures.emergency_restart(ctx, None, True) == 0

    assert groups(api.changes, "stop") == STOP_ORDER
    assert groups(api.changes, "start") == list(reversed(STOP_ORDER))
    last_stop = max(i for i, c in enumerate(api.changes) if c[0] == "stop")
    first_start = min(i for i, c in enumerate(api.changes) if c[0] == "start")
    assert last_stop < first_start  # everything is down before anything starts
    exec_at = next(i for i, c in enumerate(api.changes) if c[0] == "exec")
    backend_at = api.changes.index(("start", "nautilus-backend"))
    assert api.changes[exec_at] == ("exec", "nautilus-postgres", ("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U",
                                                                  "nautilus", "-d", "nautilus", "-t", "5"))
    assert max(i for i, c in enumerate(api.changes) if c[0] == "start" and c[1] in STOP_ORDER[3]) < exec_at < backend_at
    assert forbidden(api) == []
    assert output[0].startswith("Docker endpoint: host 'local' at unix:///var/run/docker.sock (from the default")
    assert output[1] == f"diagnostics saved to {tmp_path / 'bundle'}"
    assert "pg_isready in nautilus-postgres: exit 0 (127.0.0.1:5432 - accepting connections)" in output
    assert "Redis PING at 127.0.0.1:6379: PONG" in output
    assert "backend http://127.0.0.1:8001/health: HTTP 200" in output
    assert output[-2].startswith("emergency-restart done: 15 containers restarted in 4 phases, all validated (")
    validation = json.loads((tmp_path / "bundle" / "post-restart-validation.json").read_text())
    assert len(validation["engines"]) == 9 and all(e["healthy"] for e in validation["engines"].values())
    assert (tmp_path / "bundle" / "manifest.json").exists()
    line = json.loads(ctx.audit_path.read_text())
    assert (line["helper"], line["target"]) == ("emergency-restart", "platform")


def test_postgres_and_redis_get_the_guides_60_s_to_stop_the_rest_10_s(ctx, api):
    procedures.emergency_restart(ctx, None, True)
    timeouts = {c[1]: c[2] for c in api.changes if c[0] == "stop"}
    assert timeouts.pop("nautilus-postgres") == 60 and timeouts.pop("nautilus-redis") == 60
    assert set(timeouts.values()) == {10} and len(timeouts) == 13


def test_emergency_restart_dry_run_prints_numbered_phases_and_changes_nothing(ctx, api, output, tmp_path):
    assert procedures.emergency_restart(ctx, None, False) == 0
    assert api.changes == [] and not (tmp_path / "bundle").exists() and not ctx.audit_path.exists()
    assert output[1] == ("dry run of emergency-restart of 15 platform containers (15 running now); "
                         "with --apply it would:")
    assert output[2] == ("on Docker endpoint: host 'local' at unix:///var/run/docker.sock (from the default, with no "
                         "hosts[].url and no DOCKER_HOST)")
    steps = output[3:14]
    assert [s.split(".")[0] for s in steps] == [str(i) for i in range(1, 12)]
    assert steps[1].startswith("2. stop frontend and the other platform services: nautilus-frontend, nautilus-grafana, "
                               "nautilus-prometheus (POST /containers/NAME/stop?t=10")
    assert steps[4].startswith("5. stop infrastructure (PostgreSQL, Redis): nautilus-postgres, nautilus-redis "
                               "(POST /containers/NAME/stop?t=60, as `docker stop -t 60`")
    assert steps[5].startswith("6. phase 1, infrastructure (PostgreSQL, Redis): start nautilus-postgres, "
                               "nautilus-redis")
    assert "`pg_isready` inside nautilus-postgres (docker exec) and a Redis PING at 127.0.0.1:6379" in steps[5]
    assert steps[6].startswith("7. phase 2, backend: start nautilus-backend")
    assert "GET http://127.0.0.1:8001/health" in steps[6]
    assert steps[7].startswith("8. phase 3, engines (9, all at once)")
    assert steps[8].startswith("9. phase 4, frontend and the other platform services")
    assert steps[9].startswith("10. post-restart validation")
    assert "nothing is killed, removed or pruned" in output[14]
    assert output[-1] == "dry run: nothing changed; add --apply to do it (you will be asked to type 'nautilus')"


def test_emergency_restart_refused_without_confirmation_changes_nothing(ctx, api, tmp_path):
    ctx.confirm = lambda name, plan: (_ for _ in ()).throw(RemediationError("not confirmed"))
    with pytest.raises(RemediationError, match="not confirmed"):
        procedures.emergency_restart(ctx, None, True)
    assert api.changes == [] and not (tmp_path / "bundle").exists() and not ctx.audit_path.exists()


@pytest.mark.parametrize("helper, target", [("emergency-restart", None), ("isolate-engine", "factor"),
                                            ("restore-engine", "factor"), ("rebuild-engine", "factor")])
def test_cli_refuses_each_procedure_without_a_terminal(api, tmp_path, helper, target):
    out, err = io.StringIO(), io.StringIO()
    code = main([helper, *([target] if target else []), "--apply"], docker_factory=lambda host: api,
                stdin=io.StringIO(), stdout=out, stderr=err, environ={**ENV, "NAUTILUS_AUDIT_LOG": str(tmp_path / "a")})
    assert code == 2 and out.getvalue() == ""
    assert "without confirmation: stdin is not a terminal; rerun with --yes" in err.getvalue()
    assert api.changes == [] and not (tmp_path / "a").exists()


def test_a_failing_phase_stops_the_procedure_and_says_what_is_left_down(ctx, api, output):
    api.start_leaves["nautilus-backend"] = {"Health": {"Status": "unhealthy"}}
    ctx.ready_timeout_s = 0
    assert procedures.emergency_restart(ctx, None, True) == 1
    assert not any(c[0] == "start" and "engine" in c[1] for c in api.changes)  # engines never started
    line = output[-2]
    assert line.startswith("emergency-restart stopped at phase 2 (backend): nautilus-backend is not ready after 0 s: "
                           f"running (unhealthy), 0 restarts; next: {ENTRY} diagnose-startup "
                           "nautilus-backend; left down: nautilus-analytics-engine, ")
    assert "nautilus-frontend" in line and "nautilus-postgres" not in line.split("left down:")[1]
    assert json.loads(ctx.audit_path.read_text())["outcome"].startswith("emergency-restart stopped at phase 2")


def test_pg_isready_failing_stops_at_phase_1(ctx, api, output):
    api.pg_isready = (2, b"127.0.0.1:5432 - no response\n")
    assert procedures.emergency_restart(ctx, None, True) == 1
    assert "pg_isready in nautilus-postgres: exit 2 (127.0.0.1:5432 - no response)" in output[-2]
    assert output[-2].startswith("emergency-restart stopped at phase 1 (infrastructure (PostgreSQL, Redis))")
    assert not any(c == ("start", "nautilus-backend") for c in api.changes)


def test_a_missing_container_is_refused_before_anything_changes(ctx, api):
    del api.by_name["nautilus-ml-engine"]
    with pytest.raises(RemediationError, match="container nautilus-ml-engine does not exist.*nothing changed"):
        procedures.emergency_restart(ctx, None, True)
    assert api.changes == []


# -- isolate-engine / restore-engine ------------------------------------------------------------

def test_isolate_dry_run_changes_nothing(ctx, api, output, tmp_path):
    assert procedures.isolate_engine(ctx, "factor", False) == 0
    assert api.changes == [] and not (tmp_path / "isolation").exists() and not (tmp_path / "bundle").exists()
    assert "3. disconnect it from nautilus_nautilus-network (docker network disconnect)" in output


def test_isolate_then_restore(ctx, api, output, tmp_path):
    assert procedures.isolate_engine(ctx, "factor", True) == 0
    assert api.changes == [("stop", "nautilus-factor-engine", 10),
                           ("disconnect", "nautilus-factor-engine", "nautilus_nautilus-network")]
    marker = json.loads((tmp_path / "isolation" / "factor.json").read_text())
    assert (marker["engine"], marker["container"]) == ("factor", "nautilus-factor-engine")
    assert marker["networks"] == {"nautilus_nautilus-network": {
        "aliases": ["nautilus-factor-engine", "factor-engine"], "ipv4_address": None, "ipv6_address": None,
        "links": None}}
    report = (tmp_path / "bundle" / "isolation-report.log").read_text()
    assert "Container Status: running (healthy), 0 restarts" in report and "Resource Usage: CPU " in report
    assert "memory 200.0 MiB of 256.0 MiB (78.1 %)" in report
    assert SECRET not in report
    window = WindowBook(tmp_path / "state").active()["engine:factor"]
    assert (window.opened_by, window.until) == ("isolate-engine", None)
    assert f"restore with {ENTRY} restore-engine factor" in window.reason
    with pytest.raises(RemediationError, match="already isolated"):
        procedures.isolate_engine(ctx, "factor", True)

    api.changes.clear()
    assert procedures.restore_engine(ctx, "factor", True) == 0
    assert api.changes == [("connect", "nautilus-factor-engine", "nautilus_nautilus-network",
                            ["nautilus-factor-engine", "factor-engine"]), ("start", "nautilus-factor-engine")]
    assert not (tmp_path / "isolation" / "factor.json").exists()
    assert WindowBook(tmp_path / "state").active() == {}
    assert "closed the maintenance window of factor: its checks judge it again" in output
    assert forbidden(api) == []


def test_restore_refuses_without_a_marker(ctx, api):
    with pytest.raises(RemediationError, match="factor is not isolated .*nothing to restore"):
        procedures.restore_engine(ctx, "factor", True)
    assert api.changes == []


# -- rebuild-engine -----------------------------------------------------------------------------

@pytest.fixture
def compose_runs(monkeypatch, api):
    runs, config = [], {"services": {"factor-engine": {"image": "nautilus-lab-base"}}}

    def fake(argv, timeout_s):
        runs.append(argv)
        if "up" in argv:  # a fresh container, running and healthy
            api.by_name["nautilus-factor-engine"]["attrs"]["State"].update({"Status": "running"})
        out = json.dumps(config) if "config" in argv else ""
        return subprocess.CompletedProcess(argv, 0, out, "")
    monkeypatch.setattr(compose, "run_compose", fake)
    return runs, config


def test_rebuild_without_build_section_recreates_and_says_so(ctx, api, output, compose_runs):
    runs, _ = compose_runs
    assert procedures.rebuild_engine(ctx, "factor", False) == 0
    assert api.changes == [] and [r[-3:] for r in runs] == [["config", "--format", "json"]]
    assert any("no rebuild: service factor-engine has no build section" in line for line in output)
    output.clear()
    assert procedures.rebuild_engine(ctx, "factor", True) == 0
    assert api.changes == [("stop", "nautilus-factor-engine", 10)]
    assert runs[-1] == ["docker", "compose", "-p", "nautilus", "-f", "/srv/nautilus/compose.yaml",
                        "--project-directory", "/srv/nautilus", "up", "-d", "--force-recreate", "--no-deps",
                        "factor-engine"]
    assert not any("build" in r for r in runs)
    assert "factor-engine has no build section: rebuild = recreate" in output


def test_rebuild_with_build_section_builds_without_cache_first(ctx, api, compose_runs):
    runs, config = compose_runs
    config["services"]["factor-engine"]["build"] = {"context": "./backend/engines/factor"}
    ctx.inventory.compose_command = ["python3", "-m", "lab", "compose"]
    assert procedures.rebuild_engine(ctx, "factor", True) == 0
    verbs = [r[r.index("/srv/nautilus") + 1] for r in runs]
    assert verbs == ["config", "build", "up"]
    assert runs[1][-3:] == ["build", "--no-cache", "factor-engine"]
    assert runs[2][0] == sys.executable  # python3 in compose_command is the suite's own interpreter
    assert runs[-1][1:4] == ["-m", "lab", "compose"]


def test_rebuild_refuses_a_container_compose_did_not_create(ctx, api, compose_runs):
    api.by_name["nautilus-risk-engine"]["attrs"]["Config"]["Labels"] = {}
    with pytest.raises(RemediationError, match="not created by Docker Compose"):
        procedures.rebuild_engine(ctx, "risk", True)
    assert api.changes == [] and compose_runs[0] == []
