"""One Docker endpoint rule for checks, helpers and the lab: the inventory's url, else DOCKER_HOST, else the socket."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from observation import docker_api
from observation.docker_endpoint import LOCAL_SOCKET, DockerEndpoint, docker_endpoint
from observation.inventory import load_inventory
from remediation.cli import main
from remediation.context import Context

from test_remediation import ENV, lab_like_api

ROOT = Path(__file__).resolve().parents[2]
DEAD = "unix:///nonexistent.sock"


def test_the_inventory_url_beats_docker_host_which_beats_the_local_socket():
    env = {"DOCKER_HOST": "tcp://d:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs"}
    given = docker_endpoint("ssh://ops@t1", env, url_source="hosts[0].url in the inventory")
    assert given == DockerEndpoint("ssh://ops@t1", False, None, "hosts[0].url in the inventory",
                                   "fix hosts[0].url in the inventory")
    assert docker_endpoint(None, env) == DockerEndpoint("tcp://d:2376", True, "/certs", "DOCKER_HOST",
                                                        "fix or unset DOCKER_HOST")
    local = docker_endpoint(None, {"DOCKER_HOST": ""})  # empty is unset, as for the SDK
    assert (local.url, local.tls_verify, local.cert_path) == (LOCAL_SOCKET, False, None)
    assert local.describe() == ("unix:///var/run/docker.sock (from the default, with no hosts[].url and no "
                                "DOCKER_HOST)")
    assert docker_endpoint(None, {"DOCKER_HOST": DEAD}).describe() == f"{DEAD} (from DOCKER_HOST)"


def test_an_inventory_url_keeps_its_own_tls_rule_and_ignores_the_tls_variables():
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/env-certs"}
    assert docker_endpoint("tcp://h:2376", env, tls_verify=True, cert_path="/inv").cert_path == "/inv"
    # As before: cert_path alone (no tls_verify) meant no TLS for an inventory url.
    assert docker_endpoint("tcp://h:2376", env, cert_path="/inv").cert_path is None


def certificates(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):  # the SDK refuses paths that are not files
        (directory / name).write_text("")
    return str(directory)


@pytest.mark.parametrize("tls_env", [
    {},
    {"DOCKER_TLS_VERIFY": "1"},
    {"DOCKER_TLS_VERIFY": "0"},  # any value but "" verifies
    {"DOCKER_TLS_VERIFY": ""},
    {"DOCKER_CERT_PATH": "CERTS"},  # TLS with client certificates, daemon not verified
    {"DOCKER_CERT_PATH": ""},
    {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "CERTS"},
    {"DOCKER_TLS_VERIFY": "yes", "DOCKER_CERT_PATH": ""},
], ids=repr)
def test_docker_host_tls_variables_read_as_the_docker_sdk_reads_them(tls_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.docker, where both look without DOCKER_CERT_PATH
    home_certs = certificates(tmp_path / "home" / ".docker")
    certs = certificates(tmp_path / "certs")
    env = {"DOCKER_HOST": "tcp://d:2376", **{k: certs if v == "CERTS" else v for k, v in tls_env.items()}}
    sdk = docker.utils.kwargs_from_env(environment=env)
    ours = docker_endpoint(None, env)
    assert ours.url == sdk["base_url"]
    tls = sdk.get("tls")
    assert ours.cert_path == (os.path.dirname(tls.cert[0]) if tls else None)
    assert ours.tls_verify == (bool(tls.verify) if tls else False)
    if tls_env.get("DOCKER_TLS_VERIFY") and not tls_env.get("DOCKER_CERT_PATH"):
        assert ours.cert_path == home_certs


def test_connect_uses_the_resolved_endpoint(monkeypatch, tmp_path):
    made, certs = [], certificates(tmp_path)
    monkeypatch.setattr(docker_api.docker, "APIClient", lambda **kwargs: made.append(kwargs))
    inv = load_inventory(None, environ={**ENV, "DOCKER_HOST": "tcp://d:2376", "DOCKER_TLS_VERIFY": "1",
                                        "DOCKER_CERT_PATH": certs})
    docker_api.connect(inv.hosts[0], timeout_s=3)
    assert made[0]["base_url"] == "tcp://d:2376" and made[0]["timeout"] == 3
    tls = made[0]["tls"]
    assert (tls.cert, tls.ca_cert, tls.verify) == ((f"{certs}/cert.pem", f"{certs}/key.pem"), f"{certs}/ca.pem", True)
    docker_api.connect(load_inventory(None, environ=ENV).hosts[0])
    assert (made[1]["base_url"], made[1]["tls"]) == (LOCAL_SOCKET, None)


def test_importable_without_pydantic_for_the_lab():
    code = ("import sys; sys.modules['pydantic'] = None; sys.modules['docker'] = None\n"
            "from observation.docker_endpoint import docker_endpoint\n"
            "print(docker_endpoint(None, {'DOCKER_HOST': 'unix:///x.sock'}).describe())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "unix:///x.sock (from DOCKER_HOST)\n", "")


def test_the_daemon_down_message_says_what_to_change_where_the_url_came_from(tmp_path):
    refused = OSError(2, "No such file or directory")
    inv = load_inventory(None, environ={**ENV, "DOCKER_HOST": DEAD})
    assert docker_api.daemon_down(inv.hosts[0], refused) == (
        f"no Docker daemon answers at {DEAD} (from DOCKER_HOST): no such file or directory; start it "
        "(`sudo systemctl start docker`) or fix or unset DOCKER_HOST")
    path = tmp_path / "inventory.yaml"
    path.write_text(f"hosts: [{{name: a, url: '{DEAD}'}}]\n")
    inv = load_inventory(path, environ={**ENV, "DOCKER_HOST": "tcp://elsewhere:2375"})
    assert docker_api.daemon_down(inv.hosts[0], refused).endswith(
        f"at {DEAD} (from hosts[0].url in the inventory): no such file or directory; start it "
        "(`sudo systemctl start docker`) or fix hosts[0].url in the inventory")


# -- the helpers ----------------------------------------------------------------------------------

def test_a_helper_acts_on_docker_host_and_its_dry_run_names_it(tmp_path):
    asked, api, out, err = [], lab_like_api(), io.StringIO(), io.StringIO()
    environ = {**ENV, "DOCKER_HOST": DEAD, "NAUTILUS_AUDIT_LOG": str(tmp_path / "a.log")}

    def factory(host):
        asked.append(host.url)
        return api
    code = main(["restart-engine", "risk"], docker_factory=factory, stdin=io.StringIO(), stdout=out, stderr=err,
                environ=environ)
    assert (code, err.getvalue(), asked, api.changes) == (0, "", [DEAD], [])
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Docker endpoint: host 'local' at {DEAD} (from DOCKER_HOST)"
    assert lines[1].startswith("dry run of restart-engine nautilus-risk-engine (now running")
    assert lines[2] == f"on Docker endpoint: host 'local' at {DEAD} (from DOCKER_HOST)"


def test_a_dead_docker_host_is_refused_in_one_line_never_replaced_by_the_local_daemon(tmp_path):
    asked, out, err = [], io.StringIO(), io.StringIO()

    def factory(host):
        asked.append(host.url)
        assert host.url == DEAD, "must not reach any other daemon"
        return docker_api.connect(host, timeout_s=3)  # the real client, on a socket that does not exist
    code = main(["restart-engine", "risk", "--apply", "--yes"], docker_factory=factory, stdin=io.StringIO(),
                stdout=out, stderr=err,
                environ={**ENV, "DOCKER_HOST": DEAD, "NAUTILUS_AUDIT_LOG": str(tmp_path / "a.log")})
    assert (code, out.getvalue(), asked) == (2, "", [DEAD])
    assert err.getvalue().startswith(f"remediation: no Docker daemon answers at {DEAD} (from DOCKER_HOST): ")
    assert err.getvalue().endswith("; start it (`sudo systemctl start docker`) or fix or unset DOCKER_HOST\n")
    assert err.getvalue().count("\n") == 1 and not (tmp_path / "a.log").exists()


def test_the_context_keeps_every_endpoint_it_opened(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text("hosts: [{name: a, url: 'ssh://ops@a'}, {name: b}]\n")
    said, api = [], lab_like_api()
    ctx = Context(load_inventory(path, environ={**ENV, "DOCKER_HOST": "tcp://b:2375"}),
                  docker_factory=lambda host: api, out=said.append)
    ctx.say_endpoints()
    assert said == []  # a dry run that opened no Docker names none
    ctx.docker("a")
    ctx.docker("b")
    ctx.docker("a")  # once per host
    ctx.say_endpoints()
    assert said == ["Docker endpoint: host 'a' at ssh://ops@a (from hosts[0].url in the inventory)",
                    "Docker endpoint: host 'b' at tcp://b:2375 (from DOCKER_HOST)",
                    "on Docker endpoints: host 'a' at ssh://ops@a (from hosts[0].url in the inventory); "
                    "host 'b' at tcp://b:2375 (from DOCKER_HOST)"]
    assert [e.url for e in ctx.endpoints.values()] == ["ssh://ops@a", "tcp://b:2375"]
