"""The helpers that fit a diagnosis, and the checks' choice of them, without Docker or databases.

Helpers run against the fake Docker API of test_remediation (a dry run changes nothing); checks are
called with constructed samples and their `verdict.records` say which fix they chose.
"""
from __future__ import annotations

import json

import pytest
import redis

from checks import test_containers as containers
from checks import test_infrastructure as infra
from checks import test_ports as ports
from fixtures.verdict import Verdict
from observation import postgres as pg
from observation import redis_bus
from observation.docker_api import ContainerSnapshot, State
from observation.errors import Unobservable
from observation.inventory import load_inventory
from observation.lazy import Lazy
from observation.ports import PortProbe
from observation.targets import ContainerTarget, PortTarget
from remediation import compose, fitting, sequence
from remediation.diagnose import startup_advice
from remediation.errors import RemediationError
from remediation.registry import HELPERS

from test_remediation import ENV, FakeAPI, container

FAILED = pytest.fail.Exception
INV = load_inventory(None, environ=ENV)
RISK = ContainerTarget("nautilus-risk-engine", "local", "risk")


class Api(FakeAPI):
    def unpause(self, name):
        self.changes.append(("unpause", name))
        self._get(name)["attrs"]["State"]["Status"] = "running"

    def containers(self, all=False, **kw):
        listed = super().containers(all=all, **kw)
        for row in listed:
            row["Labels"] = {"com.docker.compose.project": "nautilus",
                             "com.docker.compose.project.config_files": "/srv/nautilus/compose.yaml",
                             "com.docker.compose.project.working_dir": "/srv/nautilus"}
        return listed


@pytest.fixture
def api():
    return Api(container("nautilus-risk-engine", status="paused"), container("nautilus-redis"),
               container("nautilus-postgres"), container("nautilus-backend"))


@pytest.fixture
def output():
    return []


@pytest.fixture
def ctx(api, output, tmp_path):
    from remediation.context import Context
    return Context(INV, docker_factory=lambda host: api, out=output.append, audit_path=tmp_path / "audit.log",
                   bundle_dir=tmp_path / "bundle", sleep=lambda s: None)


# -- unpause-container ---------------------------------------------------------------------------

def test_unpause_dry_run_changes_nothing_then_apply_unpauses_and_audits(ctx, api, output):
    assert HELPERS["unpause-container"].run(ctx, "risk", False) == 0
    assert api.changes == [] and not ctx.audit_path.exists()
    assert output[2] == output[0].replace("Docker endpoint:", "on Docker endpoint:")  # the plan names it
    assert output[3].startswith("1. unpause nautilus-risk-engine through the Docker API (POST /containers/"
                                "nautilus-risk-engine/unpause")
    output.clear()
    assert HELPERS["unpause-container"].run(ctx, "risk", True) == 0
    assert api.changes == [("unpause", "nautilus-risk-engine")]
    assert json.loads(ctx.audit_path.read_text())["helper"] == "unpause-container"
    output.clear()
    assert HELPERS["unpause-container"].run(ctx, "risk", True) == 0  # running now: nothing to do
    assert "is not paused" in output[0] and len(api.changes) == 1


# -- create-container ----------------------------------------------------------------------------

@pytest.fixture
def compose_calls(monkeypatch):
    calls = []
    config = {"name": "nautilus", "services": {"frontend": {"container_name": "nautilus-frontend"},
                                                "risk-engine": {"container_name": "nautilus-risk-engine"}}}

    def fake(ctx, where, verb, *args):
        calls.append((where.service, verb, *args))
        assert where.files == ["/srv/nautilus/compose.yaml"] and where.working_dir == "/srv/nautilus"
        return json.dumps(config) if verb == "config" else ""
    monkeypatch.setattr(compose, "run", fake)
    return calls


def test_create_container_dry_run_only_reads_the_compose_config(ctx, api, output, compose_calls):
    assert HELPERS["create-container"].run(ctx, "frontend", False) == 0
    assert compose_calls == [("", "config", "--format", "json")]
    assert api.changes == [] and not ctx.audit_path.exists()
    assert "up -d --no-deps frontend" in output[3] and "volumes are reused, never removed" in output[3]
    assert "-p nautilus -f /srv/nautilus/compose.yaml --project-directory /srv/nautilus" in output[3]


def test_create_container_apply_runs_compose_up_for_that_service_only(ctx, api, output, compose_calls, monkeypatch):
    recorded = compose.run

    def creating(c, where, verb, *args):
        if verb == "up":  # Compose creates the container
            api.by_name["nautilus-frontend"] = container("nautilus-frontend")
        return recorded(c, where, verb, *args)
    monkeypatch.setattr(compose, "run", creating)
    assert HELPERS["create-container"].run(ctx, "nautilus-frontend", True) == 0
    assert compose_calls[-1] == ("frontend", "up", "-d", "--no-deps", "frontend")
    assert json.loads(ctx.audit_path.read_text())["helper"] == "create-container"


def test_create_container_leaves_an_existing_container_alone(ctx, api, output, compose_calls):
    assert HELPERS["create-container"].run(ctx, "risk", True) == 0
    assert compose_calls == [] and "exists" in output[1]


def test_create_container_refuses_a_service_the_compose_file_does_not_have(ctx, api, compose_calls):
    with pytest.raises(RemediationError, match="no service .* creates a container named nautilus-prometheus"):
        HELPERS["create-container"].run(ctx, "prometheus", True)


# -- diagnose-memory -----------------------------------------------------------------------------

def test_diagnose_memory_reads_limit_usage_growth_and_the_oom_kill(ctx, api, output):
    api.by_name["nautilus-backend"]["attrs"]["State"]["OOMKilled"] = True
    assert HELPERS["diagnose-memory"].run(ctx, "backend", False) == 0
    text = "\n".join(output)
    assert "limits: memory 256 MiB" in text and "OOM kill: Docker records" in text
    assert "memory: 200 MiB of 256 MiB (78.1 %" in text and "growth: +0.0 MiB/min" in text
    assert api.changes == []


# -- postgres-sessions ---------------------------------------------------------------------------

class Conn:
    def __init__(self):
        self.terminated = []
        self.closed = False

    def execute(self, sql, params=None):
        rows = {"pg_settings": [("max_connections", "100"), ("superuser_reserved_connections", "3")],
                "GROUP BY": [("lab-filler", "172.17.0.1", "nautilus", "idle", 87, 400.0),
                             ("nautilus-risk-engine", "172.23.0.7", "nautilus", "idle", 1, 3.0)],
                "state = 'idle'": [(100 + i, "lab-filler", "172.17.0.1", "nautilus", 400.0) for i in range(87)]}
        if "pg_terminate_backend" in sql:
            self.terminated.append(params[0])
            return Result([(True,)])
        return Result(next(v for k, v in rows.items() if k in sql))

    def close(self):
        self.closed = True


class Result:
    def __init__(self, rows):
        self.rows = rows

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0]


def test_postgres_sessions_lists_holders_and_a_dry_run_ends_nothing(ctx, output, monkeypatch):
    conn = Conn()
    monkeypatch.setattr(fitting, "connect", lambda c: conn)
    assert HELPERS["postgres-sessions"].run(ctx, None, False) == 0
    text = "\n".join(output)
    assert "89 client sessions (this one included) of max_connections 100" in text
    assert "   87  lab-filler from 172.17.0.1 as nautilus, idle" in text
    assert "idle longer than 5 min" in text and "dry run: nothing changed" in text
    assert conn.terminated == [] and conn.closed and not ctx.audit_path.exists()


def test_postgres_sessions_apply_asks_bundles_ends_idle_and_audits(ctx, output, monkeypatch, tmp_path):
    conn, asked = Conn(), []
    monkeypatch.setattr(fitting, "connect", lambda c: conn)
    monkeypatch.setattr(sequence, "write_bundle", lambda c, h, t, d: d)
    ctx.confirm = lambda name, plan: asked.append(name)
    assert HELPERS["postgres-sessions"].run(ctx, None, True) == 0
    assert asked == ["nautilus-postgres"] and len(conn.terminated) == 87
    assert json.loads(ctx.audit_path.read_text())["outcome"].startswith("ended 87 of 87 idle session(s)")


def test_postgres_sessions_without_confirmation_ends_nothing(ctx, monkeypatch):
    conn = Conn()
    monkeypatch.setattr(fitting, "connect", lambda c: conn)
    with pytest.raises(RemediationError, match="nobody confirmed"):
        HELPERS["postgres-sessions"].run(ctx, None, True)
    assert conn.terminated == []


def test_idle_limit_refuses_nonsense():
    with pytest.raises(RemediationError):
        fitting.idle_limit_min({"NAUTILUS_SESSIONS_IDLE_MIN": "five"})


# -- restart timeouts and exit code 137 ----------------------------------------------------------

def test_restart_gives_postgres_and_redis_the_guides_graceful_stop(ctx, api, monkeypatch):
    monkeypatch.setattr(sequence, "write_bundle", lambda c, h, t, d: d)
    ctx.confirm = lambda name, plan: None
    for helper, name, seconds in (("restart-postgres", "nautilus-postgres", 60), ("restart-redis", "nautilus-redis", 30),
                                  ("restart-container", "nautilus-backend", 10)):
        HELPERS[helper].run(ctx, None if helper != "restart-container" else name, True)
        assert api.changes[-1] == ("restart", name, seconds)


def test_exit_137_without_oom_is_a_signal_not_a_memory_problem():
    killed = State.of({"State": {"Status": "exited", "ExitCode": 137, "OOMKilled": False}})
    advice = " ".join(startup_advice("", killed, "risk-engine", "nautilus-risk-engine", {}))
    assert "killed by a signal (docker kill, a stop timeout, or the kernel)" in advice
    assert "memory limit" not in advice and "OOM-killed" not in advice
    oom = State.of({"State": {"Status": "running", "ExitCode": 0, "OOMKilled": True}})
    assert "diagnose-memory nautilus-risk-engine" in " ".join(startup_advice("", oom, "s", "nautilus-risk-engine", {}))


# -- the checks choose the fix from what they saw ------------------------------------------------

def snapshot(status: str | None, name: str = "nautilus-risk-engine") -> ContainerSnapshot:
    found = {} if status is None else {name: {"Name": f"/{name}", "RestartCount": 0,
                                              "State": {"Status": status, "ExitCode": 0}}}
    return ContainerSnapshot({"local": found}, {})


def fix_of(verdict: Verdict) -> list[tuple[str, str]]:
    return [r for r in verdict.records if r[0] in ("remedy", "advice")]


@pytest.mark.parametrize("status, port_open, fix", [
    ("paused", False, [("remedy", "unpause-container nautilus-risk-engine")]),
    ("restarting", False, [("remedy", "diagnose-startup nautilus-risk-engine")]),
    ("exited", True, [("remedy", "free-port 8200")]),
    ("exited", False, []),  # the check's own start-container
])
def test_container_running_names_the_fix_that_fits(status, port_open, fix):
    verdict = Verdict("x")
    with pytest.raises(FAILED) as failure:
        containers.test_container_running(RISK, snapshot(status), INV,
                                          {("local", 8200): PortProbe(port_open, 0.1)}, verdict)
    assert fix_of(verdict) == fix
    assert ("port 8200 is held by another process" in str(failure.value)) == port_open


def test_a_missing_container_is_created_not_started():
    verdict = Verdict("x")
    with pytest.raises(FAILED, match="no such container"):
        containers.test_container_exists(RISK, snapshot(None), verdict)
    assert fix_of(verdict) == [("remedy", "create-container nautilus-risk-engine")]


def test_oom_kill_names_the_memory_diagnosis():
    from fixtures.spec import REGISTRY
    assert REGISTRY["container-not-oom-killed"].remedy == "diagnose-memory"
    assert REGISTRY["container-not-restart-looping"].remedy == "diagnose-startup"


def test_port_open_fails_when_another_process_answers_for_a_stopped_container():
    port = PortTarget(8200, "local", "127.0.0.1", "risk-engine")
    with pytest.raises(FAILED, match="accepts connections while nautilus-risk-engine is exited: another process"):
        ports.test_port_open(port, {("local", 8200): PortProbe(True, 0.1)}, INV, snapshot("exited"), Verdict("p"))
    ports.test_port_open(port, {("local", 8200): PortProbe(True, 0.1)}, INV, snapshot("running"), Verdict("p"))


def test_postgres_out_of_slots_names_postgres_sessions_not_a_restart():
    def full():
        raise Unobservable("PostgreSQL at 127.0.0.1:5432 refuses new connections: too many clients already")
    verdict = Verdict("postgres-ready")
    with pytest.raises(Unobservable):
        infra.test_postgres_ready(Lazy("postgresql", full), verdict)
    assert fix_of(verdict) == [("remedy", "postgres-sessions")]


def test_wrong_redis_password_says_which_secret_and_no_restart(monkeypatch):
    class Refusing:
        def __init__(self, **kwargs):
            pass

        def ping(self):
            raise redis.AuthenticationError("WRONGPASS invalid username-password pair")

        def close(self):
            pass
    monkeypatch.setattr(redis_bus.redis, "Redis", Refusing)
    with_env = load_inventory(None, environ={**ENV, "LAB_REDIS_PW": "wrong"}).model_copy()
    with_env.redis.password_env = "LAB_REDIS_PW"
    with pytest.raises(Unobservable) as refused:
        redis_bus.connect_redis(with_env)
    assert refused.value.fix.startswith("check the secret LAB_REDIS_PW") and "restart" not in str(refused.value)
    with pytest.raises(Unobservable) as none:
        redis_bus.connect_redis(load_inventory(None, environ=ENV))
    assert "names no redis.password_env" in none.value.fix and "None" not in none.value.fix


def test_wrong_postgres_password_says_which_secret(monkeypatch):
    import psycopg

    def refuse(**kwargs):
        raise psycopg.OperationalError('connection failed: FATAL: password authentication failed for user "nautilus"')
    monkeypatch.setattr(pg.psycopg, "connect", refuse)
    with pytest.raises(Unobservable) as refused:
        pg.connect_postgres(INV)
    assert refused.value.fix.startswith("check the secret NAUTILUS_POSTGRES_PASSWORD")
