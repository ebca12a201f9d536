"""Remediation helpers without Docker: dry runs change nothing, disruptive ones confirm, bundles and audit stay clean.

The Docker client is a fake with the docker.APIClient methods the helpers call
(passed in through Context.docker_factory or main(docker_factory=...)); it
records every call that would change something.
"""
from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from observation.inventory import load_inventory
from observation.http import HttpSample
from observation.redis_bus import BusSnapshot
from remediation import actions, audit, ports
from remediation.cli import PROMPT, helper_table, main, terminal_confirm
from remediation.context import Context
from remediation.errors import FAILURES, RemediationError
from remediation.invocation import ENTRY
from remediation.registry import HELPERS, command_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pw-never-shown-9"
DSN = f"postgresql://nautilus:{SECRET}@postgres:5432/nautilus"
ENV = {"NAUTILUS_POSTGRES_PASSWORD": SECRET}
# What a helper says when it first opens Docker, with no hosts[].url and no DOCKER_HOST.
LOCAL = "host 'local' at unix:///var/run/docker.sock (from the default, with no hosts[].url and no DOCKER_HOST)"


def container(name: str, status: str = "running", health: str | None = "healthy", logs: str = "",
              ports_: list[dict] | None = None, restarts: int = 0, exit_code: int = 0) -> dict:
    return {"name": name, "logs": logs, "ports": ports_ or [], "attrs": {
        "Name": f"/{name}", "RestartCount": restarts,
        "State": {"Status": status, "ExitCode": exit_code, "Error": "", "OOMKilled": False,
                  **({"Health": {"Status": health}} if health else {})},
        "HostConfig": {"Memory": 256 * 2**20, "NanoCpus": 0, "RestartPolicy": {"Name": "unless-stopped"}},
        "Config": {"Env": [f"POSTGRES_PASSWORD={SECRET}", f"DATABASE_URL={DSN}"], "Image": "nautilus-lab-base",
                   "Labels": {"com.docker.compose.service": name.removeprefix("nautilus-")}},
        "NetworkSettings": {"Networks": {"nautilus_nautilus-network": {"IPAddress": "172.29.0.9"}}}}}


class FakeAPI:
    """docker.APIClient's ping, containers, inspect_container, logs, stats, start, restart, close."""

    def __init__(self, *containers: dict):
        self.by_name = {c["name"]: c for c in containers}
        self.changes: list[tuple] = []
        self.after_restart = {"Status": "running"}  # the State a restart leaves behind
        self.on_change = lambda: None

    def ping(self):
        return True

    def containers(self, all=False, **_):
        return [{"Names": [f"/{name}"], "Image": "nautilus-lab-base", "State": c["attrs"]["State"]["Status"],
                 "Status": f"Up 5 minutes ({c['attrs']['State'].get('Health', {}).get('Status', '-')})",
                 "Ports": c["ports"]} for name, c in self.by_name.items()
                if all or c["attrs"]["State"]["Status"] == "running"]

    def _get(self, name):
        if name not in self.by_name:
            raise docker.errors.NotFound(f"No such container: {name}")
        return self.by_name[name]

    def inspect_container(self, name):
        return copy.deepcopy(self._get(name)["attrs"])

    def logs(self, name, stdout=True, stderr=True, tail="all", since=None, **_):
        lines = self._get(name)["logs"].splitlines(keepends=True)
        return "".join(lines if tail == "all" else lines[-tail:]).encode()

    def stats(self, name, stream=True, one_shot=None, **_):
        # Each one-shot reading is a moment later: 2000 more CPU time of 10000 more system time, on 2 CPUs.
        self.readings = getattr(self, "readings", 0) + 1
        return {"cpu_stats": {"cpu_usage": {"total_usage": 1_000 + 2_000 * self.readings},
                              "system_cpu_usage": 10_000 * self.readings, "online_cpus": 2},
                "precpu_stats": {},
                "memory_stats": {"usage": 220 * 2**20, "limit": 256 * 2**20, "stats": {"inactive_file": 20 * 2**20}}}

    def start(self, name):
        self.on_change()
        self.changes.append(("start", name))
        self._get(name)["attrs"]["State"]["Status"] = "running"

    def restart(self, name, timeout=None):
        self.on_change()
        self.changes.append(("restart", name, timeout))
        self._get(name)["attrs"]["State"].update(self.after_restart)

    def close(self):
        pass


def lab_like_api(risk_logs: str = "") -> FakeAPI:
    return FakeAPI(
        container("nautilus-risk-engine", logs=risk_logs or (f"INFO connecting to {DSN}\npassword={SECRET}\n"
                                                             "ERROR MessageBus connection failed\n"),
                  ports_=[{"IP": "127.0.0.1", "PrivatePort": 8200, "PublicPort": 8200, "Type": "tcp"}]),
        container("nautilus-factor-engine", status="restarting", health=None, restarts=5, exit_code=1),
        container("nautilus-redis"), container("nautilus-backend"),
        container("nautilus-postgres", status="exited", health=None, exit_code=0),
        container("unrelated-app"))


@pytest.fixture
def no_http(monkeypatch):
    """Engine /health as the helpers would see it, without any network; the body carries secrets."""
    def fake_request(session, url, read_timeout_s=5, **kwargs):
        assert read_timeout_s <= 5
        return HttpSample(url, status=200, elapsed_ms=12.0,
                          body={"status": "healthy", "messagebus_connected": True, "db": DSN, "password": SECRET})
    monkeypatch.setattr("observation.engines.request", fake_request)
    monkeypatch.setattr("remediation.messagebus.request", fake_request)


@pytest.fixture
def api():
    return lab_like_api()


@pytest.fixture
def output():
    return []


@pytest.fixture
def ctx(api, output, tmp_path, no_http):
    return Context(load_inventory(None, environ=ENV), docker_factory=lambda host: api, out=output.append,
                   audit_path=tmp_path / "audit.log", bundle_dir=tmp_path / "bundle", sleep=lambda s: None)


# -- registry -------------------------------------------------------------------

def test_registry_commands_kinds_and_one_function_per_helper():
    assert command_for("restart-engine", "risk") == f"{ENTRY} restart-engine risk"
    assert command_for("restart-redis", "ignored") == f"{ENTRY} restart-redis"
    assert command_for("free-port", 8200) == f"{ENTRY} free-port 8200"
    assert all(callable(h.run) for h in HELPERS.values())  # every name has its function
    assert {n for n, h in HELPERS.items() if h.disruptive} >= {"restart-container", "restart-engine",
                                                                "restart-redis", "restart-postgres", "postgres-sessions"}
    assert {n for n, h in HELPERS.items() if h.read_only} == {"diagnose-startup", "diagnose-engine",
                                                              "check-messagebus", "free-port", "diagnose-memory",
                                                              "diagnose-process"}
    assert HELPERS["start-container"].kind == "safe"
    assert {n for n, h in HELPERS.items() if h.needs_a_person} == (
        {n for n, h in HELPERS.items() if h.disruptive} | {"docker-cleanup"})


# -- dry runs -------------------------------------------------------------------

@pytest.mark.parametrize("helper, target, container, stop_s", [
    ("restart-engine", "risk", "nautilus-risk-engine", 10),
    ("restart-container", "backend", "nautilus-backend", 10),
    ("restart-container", "nautilus-redis", "nautilus-redis", 30),  # the guide's graceful stops
    ("restart-redis", None, "nautilus-redis", 30),
    ("restart-postgres", None, "nautilus-postgres", 60),
])
def test_dry_run_of_each_disruptive_helper_prints_the_plan_and_changes_nothing(ctx, api, output, tmp_path,
                                                                               helper, target, container, stop_s):
    assert HELPERS[helper].run(ctx, target, False) == 0
    assert api.changes == []
    assert not (tmp_path / "bundle").exists() and not ctx.audit_path.exists()
    assert output[0] == f"Docker endpoint: {LOCAL}"
    assert output[1].startswith(f"dry run of {helper} {container} (now ")
    assert output[2] == f"on Docker endpoint: {LOCAL}"
    steps = output[3:-1]
    assert [s.split(".")[0] for s in steps] == ["1", "2", "3", "4"]
    assert steps[0].startswith(f"1. save the pre-restart diagnostics to {tmp_path / 'bundle'}/")
    assert steps[1].startswith(f"2. restart {container} through the Docker API "
                               f"(POST /containers/{container}/restart?t={stop_s}, as `docker restart -t {stop_s} "
                               f"{container}`)")
    assert steps[2].startswith("3. wait up to 60 s")
    assert steps[3] == f"4. append the outcome to the audit log {ctx.audit_path}"
    assert output[-1] == ("dry run: nothing changed; add --apply to do it "
                          "(you will be asked to type the container name)")


def test_start_container_dry_run_then_apply_without_confirmation(ctx, api, output):
    assert actions.start_container(ctx, "nautilus-postgres", False) == 0
    assert api.changes == [] and not ctx.audit_path.exists()
    assert output[3] == ("1. start nautilus-postgres through the Docker API (POST /containers/nautilus-postgres/start, "
                         "as `docker start nautilus-postgres`)")
    output.clear()
    assert actions.start_container(ctx, "postgres", True) == 0  # a service name works too
    assert api.changes == [("start", "nautilus-postgres")]
    assert "nautilus-postgres is running (no health check) after 0.0 s" in output
    line = json.loads(ctx.audit_path.read_text())
    assert (line["helper"], line["target"], line["bundle"]) == ("start-container", "nautilus-postgres", None)
    output.clear()
    assert actions.start_container(ctx, "nautilus-postgres", True) == 0
    assert output == ["nautilus-postgres is already running (running, 0 restarts); nothing to do"]
    assert len(api.changes) == 1


def test_start_container_leaves_a_crash_loop_alone(ctx, api, output):
    assert actions.start_container(ctx, "factor", True) == 1
    assert api.changes == [] and not ctx.audit_path.exists()
    assert "restarting under its restart policy" in output[1]


# -- applying a disruptive helper -----------------------------------------------

def test_apply_restart_confirms_writes_a_redacted_bundle_first_then_restarts_and_audits(ctx, api, output, tmp_path):
    asked, bundle = [], tmp_path / "bundle"
    ctx.confirm = lambda name, plan: asked.append((name, plan[0]))
    api.on_change = lambda: asked.append(("bundle written before the restart", (bundle / "manifest.json").exists()))

    assert HELPERS["restart-engine"].run(ctx, "risk", True) == 0

    assert asked == [("nautilus-risk-engine", "restart-engine will restart nautilus-risk-engine (now running "
                                              "(healthy), 0 restarts) on Docker host 'local':"),
                     ("bundle written before the restart", True)]
    assert api.changes == [("restart", "nautilus-risk-engine", 10)]
    assert output == [f"Docker endpoint: {LOCAL}", f"diagnostics saved to {bundle}",
                      "restarted nautilus-risk-engine (docker restart -t 10)",
                      "nautilus-risk-engine is running and healthy after 0.0 s",
                      f"audit: one line appended to {ctx.audit_path}"]
    files = {p.name: p.read_text() for p in bundle.iterdir()}
    assert set(files) == {"manifest.json", "docker-ps.txt", "containers.json", "inspect.json", "engine-health.json",
                          "host.json", "nautilus-risk-engine.log", "nautilus-factor-engine.log", "nautilus-redis.log",
                          "nautilus-backend.log", "nautilus-postgres.log"}  # not unrelated-app
    everything = "".join(files.values())
    assert SECRET not in everything
    assert "POSTGRES_PASSWORD" not in everything and '"Env"' not in everything
    assert files["nautilus-risk-engine.log"] == ("INFO connecting to postgresql://nautilus:***@postgres:5432/nautilus\n"
                                                 "password=***\nERROR MessageBus connection failed\n")
    health = json.loads(files["engine-health.json"])
    assert len(health) == 9 and health["risk"]["body"]["password"] == "***"
    assert health["risk"]["body"]["db"] == "postgresql://nautilus:***@postgres:5432/nautilus"
    inspect = json.loads(files["inspect.json"])["nautilus-risk-engine"]
    assert inspect["Config"] == {"Image": "nautilus-lab-base",
                                 "Labels": {"com.docker.compose.service": "risk-engine"}}
    ps = files["docker-ps.txt"].splitlines()
    assert ps[0].split() == ["NAME", "STATUS", "HEALTH", "RESTARTS", "PORTS"]
    assert ps[1].split()[0] == "nautilus-backend"
    assert [r for r in ps if r.startswith("nautilus-factor-engine")][0].split()[-2:] == ["5", "-"]
    assert json.loads(files["manifest.json"])["problems"] == []
    line = json.loads(ctx.audit_path.read_text())
    assert line["outcome"] == "nautilus-risk-engine is running and healthy after 0.0 s"
    assert line["bundle"] == str(bundle)


def test_apply_without_confirmation_changes_nothing(ctx, api, tmp_path):
    ctx.confirm = lambda name, plan: (_ for _ in ()).throw(RemediationError("not confirmed"))
    with pytest.raises(RemediationError, match="not confirmed"):
        HELPERS["restart-redis"].run(ctx, None, True)
    assert api.changes == [] and not (tmp_path / "bundle").exists() and not ctx.audit_path.exists()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_restart_waits_at_most_60_s_then_says_so_and_exits_1(api, output, tmp_path, no_http):
    clock = Clock()
    ctx = Context(load_inventory(None, environ=ENV), docker_factory=lambda host: api, out=output.append,
                  confirm=lambda name, plan: None, audit_path=tmp_path / "audit.log", bundle_dir=tmp_path / "b",
                  ready_timeout_s=600, sleep=clock.sleep, clock=clock)
    api.after_restart = {"Status": "running", "Health": {"Status": "unhealthy"}}
    assert HELPERS["restart-engine"].run(ctx, "risk", True) == 1
    assert clock.now == 60
    assert output[3] == ("nautilus-risk-engine is not ready after 60 s: running (unhealthy), 0 restarts; "
                         f"next: {ENTRY} diagnose-startup nautilus-risk-engine")
    assert json.loads(ctx.audit_path.read_text())["outcome"] == output[3]


def test_a_failed_restart_is_audited_and_reported_in_one_line(ctx, api):
    ctx.confirm = lambda name, plan: None

    def broken(name, timeout=None):
        raise docker.errors.APIError("500 Server Error: Internal Server Error (\"cannot restart\")")
    api.restart = broken
    with pytest.raises(FAILURES, match=r"^Docker host 'local' failed to restart nautilus-redis \(500"):
        HELPERS["restart-redis"].run(ctx, None, True)
    line = json.loads(ctx.audit_path.read_text())
    assert line["outcome"].startswith("failed: Docker host 'local' failed to restart nautilus-redis")
    assert line["bundle"] == str(ctx.bundle_dir)


# -- the audit log --------------------------------------------------------------

def test_audit_line_format(tmp_path, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")
    path = tmp_path / "deep" / "audit.log"
    audit.ensure_writable(path)
    audit.append(path, audit.record("restart-engine", "nautilus-risk-engine", "ok", tmp_path / "b"))
    audit.append(path, audit.record("start-container", "nautilus-redis", "ok"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [list(line) for line in lines] == [["time", "user", "helper", "target", "applied", "outcome", "bundle"]] * 2
    first = lines[0]
    assert (first["helper"], first["target"], first["applied"], first["bundle"]) == (
        "restart-engine", "nautilus-risk-engine", True, str(tmp_path / "b"))
    assert first["time"][:4].isdigit() and first["time"][10] == "T" and first["time"][-6] in "+-"
    assert first["user"].endswith("(sudo by alice)") or first["user"] == "alice"
    assert lines[1]["bundle"] is None


def test_audit_log_that_cannot_be_written_stops_the_action_first(ctx, api, tmp_path):
    (tmp_path / "file").write_text("")
    ctx.audit_path = tmp_path / "file" / "audit.log"  # a file where a directory should be
    ctx.confirm = lambda name, plan: None
    with pytest.raises(RemediationError, match="cannot write the audit log .*nothing changed"):
        HELPERS["restart-engine"].run(ctx, "risk", True)
    assert api.changes == [] and not (tmp_path / "bundle").exists()


# -- read-only helpers ----------------------------------------------------------

def test_diagnose_startup_spots_the_guides_factor_engine_errors(ctx, api, output):
    api.by_name["nautilus-factor-engine"]["logs"] = (
        f"connecting with {DSN}\n"
        "ImportError: cannot import name 'MessagePriority' from 'enhanced_messagebus_client'\n"
        "TypeError: MessageBusConfig.__init__() got an unexpected keyword argument 'client_id'\n")
    assert HELPERS["diagnose-startup"].run(ctx, "factor", False) == 0
    assert api.changes == []
    assert output[2:6] == ["state: restarting, 5 restarts, last exit code 1", "exit code: 1",
                           "error (State.Error): none", "OOM-killed: no"]
    assert "limits: memory 256 MiB, CPUs no limit" in output
    assert ("dependencies: nautilus-postgres exited, 0 restarts, last exit code 0; "
            "nautilus-redis running (healthy), 0 restarts") in output
    assert [line.split(" (")[0] for line in output if line.startswith("known cause")] == [
        "known cause: the guide's factor-engine import error",
        "known cause: the guide's factor-engine MessageBusConfig error"]
    assert ("fix (the guide's; advice only, nothing was done): rebuild the image without cache, then start it: "
            "docker compose build --no-cache factor-engine && docker compose up -d factor-engine") in output
    assert f"advice: dependency nautilus-postgres is exited: {ENTRY} start-container nautilus-postgres" \
        in output
    assert "  | connecting with postgresql://nautilus:***@postgres:5432/nautilus" in output
    assert SECRET not in "\n".join(output)


def test_diagnose_engine_reports_health_stats_and_log_counts(ctx, api, output):
    api.by_name["nautilus-risk-engine"]["logs"] = "ERROR a\nException b\nrequest failed\nslow query\ntimeout\nok\n"
    assert HELPERS["diagnose-engine"].run(ctx, "risk", False) == 0
    assert output[2] == ("health: GET http://127.0.0.1:8200/health -> HTTP 200 in 12 ms (OK; slow above 1000 ms, "
                         "critical above 5000 ms)")
    assert output[3] == ('health body: {"status": "healthy", "messagebus_connected": true, '
                         '"db": "postgresql://nautilus:***@postgres:5432/nautilus", "password": ***}')
    assert "stats: CPU 40.0 % (warning at 50 %), memory 200 MiB of 256 MiB (78.1 %; warning at 80 %)" in output
    assert ("logs of the last hour (6 lines): 3 error/exception/failed lines, 2 slow/timeout/blocking lines"
            in output)


def test_check_messagebus_trusts_redis_over_the_engines_flag(ctx, output, monkeypatch):
    monkeypatch.setattr("remediation.messagebus.redis_view", lambda ctx, engine: {
        "ping_ms": 0.4, "connected_clients": 3, "used_memory": "1.2M",
        "snapshot": BusSnapshot(clients=[{"name": "nautilus-ml-engine", "addr": "172.29.0.2:5000", "idle": "0"}],
                                taken_at=1.0)})
    assert HELPERS["check-messagebus"].run(ctx, "risk", False) == 0
    assert "a Redis connection from nautilus-risk-engine (172.29.0.9): ABSENT from CLIENT LIST (1 clients)" in output
    assert "verdict: Redis does NOT see the engine although it reports true: its flag is wrong" in output
    assert "advice: check the network: docker network inspect nautilus_nautilus-network" in output


def test_check_messagebus_with_redis_down_says_how_to_bring_it_back(ctx, api, output, monkeypatch):
    monkeypatch.setattr("remediation.messagebus.redis_view", lambda ctx, engine: {"error": "no answer (connection refused)"})
    api.by_name["nautilus-redis"]["attrs"]["State"] = {"Status": "exited", "ExitCode": 137, "OOMKilled": True}
    assert HELPERS["check-messagebus"].run(ctx, "ml", False) == 0
    assert output[2:4] == ["Redis PING: no answer (connection refused)",
                           "Redis container nautilus-redis: exited, 0 restarts, last exit code 137, OOM-killed"]
    assert output[5:8] == ["verdict: Redis does not answer, so no engine is on the bus",
                           f"advice: start Redis: {ENTRY} start-container nautilus-redis",
                           "advice: Redis logs: docker logs --tail 50 nautilus-redis"]
    assert api.changes == []


# -- free-port ------------------------------------------------------------------

PROC_NET_TCP = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:2260 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n"
    "   1: 0100007F:2260 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 5555 1 0\n"
    "   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0\n")
PROC_NET_TCP6 = (
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:2260 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000     0        0 777 1 0\n")


def test_proc_net_tcp_parsing():
    assert ports.listening_sockets(PROC_NET_TCP, 8800) == {"4242": "127.0.0.1:8800"}  # not the ESTABLISHED one
    assert ports.listening_sockets(PROC_NET_TCP, 8080) == {"333": "0.0.0.0:8080"}
    assert ports.listening_sockets(PROC_NET_TCP6, 8800) == {"777": "[::]:8800"}
    assert ports.listening_sockets(PROC_NET_TCP, 9999) == {}


def test_holders_maps_the_listening_inode_to_its_process(tmp_path):
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(PROC_NET_TCP)
    (proc / "net" / "tcp6").write_text(PROC_NET_TCP6)
    for pid, inode, cmd in ((4321, 4242, b"python3\0-m\0lab.port_holder\x008800\0"), (99, 5555, b"curl\0x\0")):
        (proc / str(pid) / "fd").mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(cmd)
        os.symlink(f"socket:[{inode}]", proc / str(pid) / "fd" / "3")
        os.symlink("/dev/null", proc / str(pid) / "fd" / "0")
    sockets, found = ports.holders(8800, proc)
    assert sockets == {"4242": "127.0.0.1:8800", "777": "[::]:8800"}
    assert [(h.pid, h.command, h.address) for h in found] == [(4321, "python3 -m lab.port_holder 8800", "127.0.0.1:8800")]
    assert found[0].user  # the owner of /proc/4321, by name or uid


def test_free_port_names_container_and_process_and_kills_nothing(ctx, output, monkeypatch):
    killed = []
    monkeypatch.setattr(os, "kill", lambda *a: killed.append(a))
    monkeypatch.setattr(ports, "holders", lambda port: ({"4242": "127.0.0.1:8200"}, [
        ports.Holder(4321, "root", "/usr/sbin/docker-proxy -proto tcp -host-port 8200", "127.0.0.1:8200")]))
    assert HELPERS["free-port"].run(ctx, "8200", False) == 0
    assert output[1:5] == [
        "the inventory gives port 8200 to risk-engine", f"Docker endpoint: {LOCAL}",
        "port 8200 is published by container nautilus-risk-engine (running; 127.0.0.1:8200->8200/tcp)",
        "port 8200 is held by process 4321: /usr/sbin/docker-proxy -proto tcp -host-port 8200 (user root, listening "
        "on 127.0.0.1:8200) - Docker's port proxy for the container above"]
    assert output[5].startswith("nothing was killed: this helper never runs the guide's `lsof -ti:8200 | xargs kill -9`")
    assert output[6].startswith("to free it: stop the owner deliberately")
    assert killed == []


def test_free_port_on_a_free_port_says_who_should_be_there(ctx, output, monkeypatch):
    monkeypatch.setattr(ports, "holders", lambda port: ({}, []))
    HELPERS["free-port"].run(ctx, "8300", False)
    assert output[3] == ("nothing listens on port 8300 and no container publishes it: the port is free; factor-engine "
                         f"is not serving: {ENTRY} diagnose-startup nautilus-factor-engine")


# -- targets --------------------------------------------------------------------

def test_bad_targets_are_refused_with_the_valid_ones(ctx, api):
    cases = [("restart-engine", "rsk", "restart-engine: 'rsk' is not an engine; valid: analytics, factor, features, "
                                       "marketdata, ml, portfolio, risk, strategy, websocket"),
             ("restart-engine", None, "restart-engine: needs an engine; valid: analytics, "),
             ("start-container", "unrelated-app", "start-container: 'unrelated-app' is not a container; valid: "
                                                  "nautilus-analytics-engine, nautilus-backend, "),
             ("free-port", "risk", "free-port: 'risk' is not a port number (1-65535); the platform's ports: 3000, "),
             ("free-port", "70000", "free-port: '70000' is not a port number (1-65535)"),
             ("restart-redis", "nautilus-redis", "restart-redis: takes no target (got 'nautilus-redis')")]
    for helper, target, message in cases:
        with pytest.raises(RemediationError) as caught:
            HELPERS[helper].run(ctx, target, True)
        assert str(caught.value).startswith(message)
    assert api.changes == []


# -- the command line -----------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_main(*argv: str, api: FakeAPI | None = None, stdin: io.StringIO | None = None,
             environ: dict | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), docker_factory=(lambda host: api) if api else None, stdin=stdin or io.StringIO(),
                stdout=out, stderr=err, environ={**ENV, **(environ or {})})
    return code, out.getvalue(), err.getvalue()


def test_cli_refuses_a_disruptive_apply_without_a_terminal(api, tmp_path):
    code, out, err = run_main("restart-engine", "risk", "--apply", api=api,
                              environ={"NAUTILUS_AUDIT_LOG": str(tmp_path / "a.log")})
    assert (code, out) == (2, "")
    assert err == ("remediation: refusing to act on nautilus-risk-engine without confirmation: stdin is not a "
                   "terminal; rerun with --yes to confirm\n")
    assert api.changes == [] and not (tmp_path / "a.log").exists()


def test_cli_asks_for_the_container_name_on_a_terminal(api, tmp_path, no_http):
    env = {"NAUTILUS_AUDIT_LOG": str(tmp_path / "a.log")}
    code, out, err = run_main("restart-redis", "--apply", f"--bundle-dir={tmp_path / 'b'}", api=api,
                              stdin=Terminal("nautilus-rediss\n"), environ=env)
    assert code == 2 and api.changes == [] and out == f"Docker endpoint: {LOCAL}\n"
    assert err.endswith(f"{PROMPT.format('nautilus-redis')}remediation: the answer did not match nautilus-redis; "
                        "nothing changed\n")

    code, out, err = run_main("restart-redis", "--apply", f"--bundle-dir={tmp_path / 'b'}", api=api,
                              stdin=Terminal("nautilus-redis\n"), environ=env)
    assert code == 0 and api.changes == [("restart", "nautilus-redis", 30)]
    assert out.splitlines()[1] == f"diagnostics saved to {tmp_path / 'b'}"
    assert json.loads((tmp_path / "a.log").read_text())["helper"] == "restart-redis"


def test_terminal_confirm_needs_a_terminal_even_with_the_right_answer_waiting():
    err = io.StringIO()
    with pytest.raises(RemediationError, match="stdin is not a terminal; rerun with --yes"):
        terminal_confirm(io.StringIO("nautilus-redis\n"), err)("nautilus-redis", ["the plan"])
    assert err.getvalue() == ""
    terminal_confirm(Terminal("nautilus-redis\n"), err)("nautilus-redis", ["the plan"])
    assert err.getvalue() == "the plan\nType nautilus-redis to confirm: "


def test_cli_yes_skips_the_question(api, tmp_path, no_http):
    code, out, err = run_main("restart-engine", "risk", "--apply", "--yes", f"--bundle-dir={tmp_path / 'b'}", api=api,
                              environ={"NAUTILUS_AUDIT_LOG": str(tmp_path / "a.log")})
    assert (code, err) == (0, "")
    assert api.changes == [("restart", "nautilus-risk-engine", 10)]


def test_cli_dry_run_is_the_default(api, tmp_path):
    code, out, err = run_main("restart-engine", "risk", api=api, environ={"NAUTILUS_AUDIT_LOG": str(tmp_path / "a.log")})
    assert (code, err) == (0, "") and api.changes == []
    assert out.splitlines()[-1].startswith("dry run: nothing changed")


@pytest.mark.parametrize("argv, message", [
    (["fix-everything"], f"remediation: unknown helper 'fix-everything' (every helper: {ENTRY} list)"),
    (["restart-engin", "risk"], "remediation: unknown helper 'restart-engin'; did you mean restart-engine? (every helper: "),
    (["restart-engin", "--help"], "remediation: unknown helper 'restart-engin'; did you mean restart-engine? (every helper: "),
    (["restart-engine", "rsk"], "remediation: restart-engine: 'rsk' is not an engine; valid: analytics, "),
    (["restart-engine"], "remediation: restart-engine: needs an engine; valid: "),
    (["free-port", "http"], "remediation: free-port: 'http' is not a port number (1-65535)"),
    (["list", "extra"], "remediation: list takes no target (got 'extra')"),
    (["restart-engine", "risk", "--force"], f"remediation: unrecognized arguments: --force; usage: {ENTRY} "),
    ([], "remediation: the following arguments are required: helper; usage: "),
])
def test_cli_errors_are_one_line_and_exit_2(api, argv, message):
    code, out, err = run_main(*argv, api=api)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_cli_bad_inventory_and_missing_secret_are_one_line(tmp_path):
    bad = tmp_path / "inv.yaml"
    bad.write_text("engines:\n  risk: {port: 99999}\n")
    code, _, err = run_main("diagnose-engine", "risk", f"--inventory={bad}")
    assert (code, err) == (2, f"remediation: inventory: {bad}: engines.risk.port: must be between 1 and 65535 "
                              "(got 99999)\n")
    out, err_io = io.StringIO(), io.StringIO()
    # PostgreSQL's password is needed by a helper that talks to PostgreSQL; set nowhere, it is one line
    assert main(["postgres-sessions"], stdout=out, stderr=err_io, environ={}) == 2
    assert err_io.getvalue() == ("remediation: postgres password: set NAUTILUS_POSTGRES_PASSWORD or "
                                 "NAUTILUS_POSTGRES_PASSWORD_FILE (a file holding it)\n")


def test_cli_docker_daemon_down_is_one_line():
    def no_daemon(host):
        raise docker.errors.DockerException("Error while fetching server API version: ('Connection aborted.', "
                                            "FileNotFoundError(2, 'No such file or directory'))")
    out, err = io.StringIO(), io.StringIO()
    code = main(["restart-engine", "risk"], docker_factory=no_daemon, stdout=out, stderr=err, environ=ENV)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue() == ("remediation: no Docker daemon answers at unix:///var/run/docker.sock (from the default, "
                              "with no hosts[].url and no DOCKER_HOST): no such file or directory; start it (`sudo "
                              "systemctl start docker`) or set hosts[].url in the inventory or DOCKER_HOST\n")


def test_cli_unexpected_errors_are_one_line_too(api):
    api.inspect_container = lambda name: 1 / 0
    code, out, err = run_main("diagnose-startup", "factor", api=api)
    assert code == 2 and err.startswith("remediation: unexpected error: ZeroDivisionError") and err.count("\n") == 1


def test_cli_list_and_as_a_module():
    lines = helper_table().splitlines()
    look, act = lines.index(next(line for line in lines if line.startswith("look first"))), \
        lines.index(next(line for line in lines if line.startswith("act")))
    assert look == 0 < act
    rows = [line.split()[:3] for line in lines if line.startswith("  ")]
    assert sorted(rows) == sorted([h.name, f"<{h.target}>" if h.target else "-", h.kind] for h in HELPERS.values())
    # the read-only diagnoses come first, under "look first"; every acting helper after, under "act"
    assert {r[2] for r in rows[:act - 1]} == {"read-only"} and "read-only" not in {r[2] for r in rows[act - 1:]}
    done = subprocess.run([sys.executable, "-m", "remediation", "list"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, helper_table(), "")
    done = subprocess.run([sys.executable, "-m", "remediation", "fix-everything"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **ENV})
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_free_port_sets_apart_what_listens_on_another_address_of_the_machine(ctx, output, monkeypatch):
    """The risk engine's address is 127.0.0.2 here; a program on 127.0.0.1:8200 is not in its way, one on all
    addresses is."""
    ctx.inventory.hosts[0].address = "127.0.0.2"
    monkeypatch.setattr(ports, "holders", lambda port: ({"1": "127.0.0.1:8200"}, [
        ports.Holder(41, "root", "python3 -m http.server 8200", "127.0.0.1:8200")]))
    HELPERS["free-port"].run(ctx, "8200", False)
    said = "\n".join(output)
    assert ("port 8200 is also held by process 41: python3 -m http.server 8200 (user root, listening on "
            "127.0.0.1:8200), on another address: not in the way of 127.0.0.2:8200") in said
    assert "port 8200 is also published by container nautilus-risk-engine (running; 127.0.0.1:8200->8200/tcp), " \
           "on another address: not in the way of 127.0.0.2:8200" in said
    assert "nothing listens on 127.0.0.2:8200 and no container publishes it: the port is free" in said
    output.clear()
    monkeypatch.setattr(ports, "holders", lambda port: ({"2": "0.0.0.0:8200"}, [
        ports.Holder(42, "root", "nc -l 8200", "0.0.0.0:8200")]))
    HELPERS["free-port"].run(ctx, "8200", False)
    said = "\n".join(output)
    assert "port 8200 is held by process 42: nc -l 8200 (user root, listening on 0.0.0.0:8200)" in said
    assert "the port is free" not in said
