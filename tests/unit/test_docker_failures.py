"""What a Docker failure means, in words: a daemon that is down or frozen, and an API call Docker refused.

Fakes only: errors are built as the Docker SDK builds them (a requests response turned into an APIError),
the daemon's process from a pid file and a /proc status file under tmp_path.
"""
from __future__ import annotations

import socket

import docker
import pytest
import requests
import urllib3

from checks import test_infrastructure as infra
from fixtures.verdict import Verdict
from observation import docker_api
from observation.docker_api import DaemonDown, Docker, DockerHosts, daemon_process, failure
from observation.errors import ContainerMissing, Unobservable
from observation.inventory import load_inventory
from observation.reach import connect_from

ENV = {"NAUTILUS_POSTGRES_PASSWORD": "x"}
INV = load_inventory(None, environ=ENV)
HOST = INV.hosts[0]  # the local socket, from the default
SOCKET = "unix:///var/run/docker.sock (from the default, with no hosts[].url and no DOCKER_HOST)"


def api_error(status: int, explanation: str, url="http+docker://localhost/v1.41/containers/x/exec"):
    """An APIError as the SDK raises it for a daemon's HTTP answer."""
    response = requests.Response()
    response.status_code, response.url = status, url
    response.reason = requests.status_codes._codes[status][0].replace("_", " ").title()
    response._content = requests.compat.json.dumps({"message": explanation}).encode()
    try:
        response.raise_for_status()
    except requests.HTTPError as exc:
        try:
            docker.errors.create_api_error_from_http_exception(exc)
        except docker.errors.APIError as api:
            return api
    raise AssertionError("not an error status")


def chained(*excs: BaseException) -> BaseException:
    """The first exception, raised from the second, raised from the third...: a chain as the libraries make it."""
    for outer, inner in zip(excs, excs[1:]):
        outer.__cause__ = inner
    return excs[0]


def version_failed(*causes: BaseException) -> BaseException:
    """What building an APIClient raises when its version request fails: the SDK wraps requests, urllib3, OSError."""
    return chained(docker.errors.DockerException(f"Error while fetching server API version: {causes[0]}"), *causes)


def read_timeout() -> BaseException:
    return chained(requests.ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. "
                                        "(read timeout=3)"),
                   urllib3.exceptions.ReadTimeoutError(None, "/version", "Read timed out. (read timeout=3)"),
                   TimeoutError("timed out"))


def aborted(cause: OSError) -> BaseException:
    return chained(requests.ConnectionError(f"('Connection aborted.', {cause!r})"),
                   urllib3.exceptions.ProtocolError("Connection aborted.", cause), cause)


FROZEN = version_failed(read_timeout())
MISSING = version_failed(aborted(FileNotFoundError(2, "No such file or directory")))
REFUSED = version_failed(aborted(ConnectionRefusedError(111, "Connection refused")))


@pytest.fixture
def dockerd(tmp_path, monkeypatch):
    """A dockerd pid file and its /proc status, in a state the test sets."""
    monkeypatch.setattr(docker_api, "DOCKER_PID_FILE", tmp_path / "docker.pid")
    monkeypatch.setattr(docker_api, "PROC", tmp_path / "proc")

    def in_state(state: str, name: str = "dockerd", pid: int = 812) -> None:
        (tmp_path / "docker.pid").write_text(f"{pid}\n")
        (tmp_path / "proc" / str(pid)).mkdir(parents=True, exist_ok=True)
        (tmp_path / "proc" / str(pid) / "status").write_text(f"Name:\t{name}\nUmask:\t0022\nState:\t{state}\n")
    return in_state


# -- a daemon that is down, or running and frozen ---------------------------------------------------

@pytest.mark.parametrize("exc, reason", [(MISSING, "no such file or directory"), (REFUSED, "connection refused")])
def test_a_missing_or_refusing_socket_is_a_daemon_to_start(exc, reason, dockerd):
    dockerd("S (sleeping)")  # a stale process is no reason to restart: nothing listens
    down = DaemonDown.of(HOST, exc)
    assert down.finding == f"no Docker daemon answers at {SOCKET}: {reason}"
    assert down.fix == "start it (`sudo systemctl start docker`) or set hosts[].url in the inventory or DOCKER_HOST"


def test_a_daemon_that_takes_the_connection_and_never_answers_is_restarted_not_started(dockerd):
    dockerd("D (disk sleep)")
    down = DaemonDown.of(HOST, FROZEN)
    assert down.finding == (f"the Docker daemon at {SOCKET} is running but does not answer (timed out); "
                            "dockerd pid 812 is in state D (disk sleep)")
    assert down.fix == ("see its state (`systemctl status docker`, `journalctl -u docker --since -10min`), then "
                        "restart it (`sudo systemctl restart docker`)")
    assert "systemctl start" not in str(down)


def test_a_stopped_daemon_is_resumed_first(dockerd):
    dockerd("T (stopped)")
    assert DaemonDown.of(HOST, FROZEN).fix.startswith("resume it (`sudo kill -CONT 812`: a signal or a debugger "
                                                      "stopped it), or see its state")


def test_a_unix_socket_whose_queue_is_full_is_frozen_too():
    full = version_failed(aborted(BlockingIOError(11, "Resource temporarily unavailable")))
    assert DaemonDown.of(HOST, full).fix.endswith("then restart it (`sudo systemctl restart docker`)")


def test_the_process_is_read_only_for_a_local_socket_and_only_when_it_is_dockerd(dockerd):
    dockerd("T (stopped)")
    assert daemon_process(HOST) == docker_api.DaemonProcess(812, "T (stopped)")
    remote = load_inventory(None, environ={**ENV, "DOCKER_HOST": "tcp://10.0.0.5:2376"}).hosts[0]
    assert daemon_process(remote) is None
    dockerd("S (sleeping)", name="bash")  # a stale pid file
    assert daemon_process(HOST) is None


def test_no_pid_file_no_process(dockerd):
    assert daemon_process(HOST) is None


class Hosts:
    """DockerHosts whose factory answers as a frozen or a missing daemon."""

    def __new__(cls, exc: BaseException) -> DockerHosts:
        def factory(host):
            raise exc
        return DockerHosts(INV, factory=factory)


def run_daemon_check(exc: BaseException) -> tuple[str, dict[str, str]]:
    verdict = Verdict("docker")
    with pytest.raises(pytest.fail.Exception) as failed:
        infra.test_docker_daemon_answers(Hosts(exc), INV, verdict)
    return str(failed.value), dict(verdict.records)


def test_the_daemon_check_restarts_a_frozen_daemon_and_shows_its_process(dockerd):
    dockerd("T (stopped)")
    finding, facts = run_daemon_check(FROZEN)
    assert finding == ("[docker] expected every Docker daemon to answer; saw docker://local: the Docker daemon at "
                       f"{SOCKET} is running but does not answer (timed out); dockerd pid 812 is in state T (stopped)")
    assert facts["advice"].startswith("Docker daemon on local: resume it (`sudo kill -CONT 812`")
    assert "sudo systemctl restart docker" in facts["advice"] and "systemctl start" not in facts["advice"]
    assert '"state": "T (stopped)"' in facts["evidence:dockerd on local"]


def test_the_daemon_check_starts_a_daemon_that_is_not_running(dockerd):
    finding, facts = run_daemon_check(MISSING)
    assert finding.endswith(f"saw docker://local: no Docker daemon answers at {SOCKET}: no such file or directory")
    assert facts["advice"] == ("Docker daemon on local: start it (`sudo systemctl start docker`) or set hosts[].url "
                               "in the inventory or DOCKER_HOST")
    assert "evidence:dockerd on local" not in facts  # no pid file: nothing to show


def test_a_real_socket_that_takes_connections_and_never_answers_reads_as_frozen(tmp_path):
    path = tmp_path / "d.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    try:
        host = load_inventory(None, environ={**ENV, "DOCKER_HOST": f"unix://{path}"}).hosts[0]
        with pytest.raises(DaemonDown) as frozen:
            Docker.open(host, lambda h: docker_api.connect(h, timeout_s=0.3))
    finally:
        listener.close()
    assert "is running but does not answer (timed out)" in frozen.value.finding
    with pytest.raises(DaemonDown) as gone:  # the socket file is left, nobody listens
        Docker.open(host, lambda h: docker_api.connect(h, timeout_s=0.3))
    assert gone.value.finding.endswith(": connection refused") and gone.value.fix.startswith("start it")


def test_a_helper_still_says_both_in_its_one_line():
    with pytest.raises(Unobservable) as caught:
        Docker.open(HOST, lambda host: (_ for _ in ()).throw(FROZEN))
    assert str(caught.value).endswith("; see its state (`systemctl status docker`, `journalctl -u docker --since "
                                      "-10min`), then restart it (`sudo systemctl restart docker`)")


# -- what a refused API call means ------------------------------------------------------------------

@pytest.mark.parametrize("error, said", [
    (api_error(409, "Container 3f2a9c is not running"),
     "container x is not running (Docker host 'local' refused to exec the probe: 409 Conflict)"),
    (api_error(409, "Container 3f2a9c is paused, unpause the container before exec"),
     "container x is paused (Docker host 'local' refused to exec the probe: 409 Conflict)"),
    (api_error(409, "Container 3f2a9c is restarting, wait until the container is running"),
     "container x is restarting (Docker host 'local' refused to exec the probe: 409 Conflict)"),
    (api_error(409, 'Conflict. The container name "/x" is already in use by container "3f2a9c"'),
     "Docker host 'local' refused to exec the probe: Conflict. The container name \"/x\" is already in use by "
     "container \"3f2a9c\" (409 Conflict)"),
    (api_error(404, "No such container: x"), "container x does not exist on Docker host 'local' (404 Not Found)"),
    (api_error(404, "No such exec instance: e1"),
     "Docker host 'local' refused to exec the probe: No such exec instance: e1 (404 Not Found)"),
    (api_error(500, 'OCI runtime exec failed: exec failed: unable to start container process: exec: "python3": '
                    "executable file not found in $PATH: unknown"),
     "Docker host 'local' failed to exec the probe: OCI runtime exec failed: exec failed: unable to start container "
     'process: exec: "python3": executable file not found in $PATH: unknown (500 Internal Server Error)'),
    (read_timeout(), "Docker host 'local' did not answer in time to exec the probe (timed out)"),
    (aborted(ConnectionRefusedError(111, "Connection refused")),
     "Docker host 'local' stopped answering while trying to exec the probe (connection refused)"),
    (docker.errors.InvalidVersion("one_shot is not supported for API version < 1.41"),
     "Docker host 'local' failed to exec the probe (one_shot is not supported for API version < 1.41)"),
], ids=["409-not-running", "409-paused", "409-restarting", "409-other", "404-container", "404-other", "500",
        "timeout", "connection", "client-side"])
def test_a_failed_call_says_what_it_means_with_the_status_kept(error, said):
    meaning = failure(error, "exec the probe", "x", "Docker host 'local'")
    assert str(meaning) == said
    assert "Client Error" not in said and "http+docker" not in said


def test_a_missing_container_stays_a_container_missing():
    assert isinstance(failure(api_error(404, "No such container: x"), "inspect x", "x"), ContainerMissing)
    assert isinstance(failure(docker.errors.NotFound("No such container: x"), "inspect x", "x"), ContainerMissing)
    assert not isinstance(failure(api_error(404, "No such image: y"), "list images"), ContainerMissing)


class RefusingApi:
    def __init__(self, error):
        self.error = error

    def restart(self, name, timeout):
        raise self.error

    def exec_create(self, container, cmd, **_):
        raise self.error


def test_docker_calls_and_the_engines_exec_say_the_same_thing():
    not_running = api_error(409, "Container 3f2a9c is not running")
    with pytest.raises(Unobservable) as restart:
        Docker(RefusingApi(not_running), HOST).restart("nautilus-risk-engine")
    assert str(restart.value) == ("container nautilus-risk-engine is not running (Docker host 'local' refused to "
                                  "restart nautilus-risk-engine: 409 Conflict)")
    with pytest.raises(Unobservable) as probe:
        connect_from(RefusingApi(not_running), "nautilus-risk-engine", "redis", 6379, 3, "Docker host 'local'")
    assert str(probe.value) == ("container nautilus-risk-engine is not running (Docker host 'local' refused to exec "
                                "the connect probe: 409 Conflict)")
