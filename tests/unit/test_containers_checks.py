"""The container checks, called directly with constructed `docker inspect` data: a healthy container passes,
each bad fact fails its own check with a message that explains it."""
from __future__ import annotations

import copy
import json

import pytest

from checks import test_containers as checks
from fixtures.verdict import Verdict
from observation.errors import Unobservable
from observation.inventory import load_inventory
from observation.restart_history import RestartHistory, Seen, changes, deploys_since
from observation import targets
from observation.targets import ContainerTarget

INVENTORY = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
ENGINE = ContainerTarget("nautilus-risk-engine", "local", "risk")
POSTGRES = ContainerTarget("nautilus-postgres", "local", data_dir="/var/lib/postgresql/data")
REDIS = ContainerTarget("nautilus-redis", "local", data_dir="/data")

HEALTHY = {
    "Id": "c0ffee", "Name": "/nautilus-risk-engine", "RestartCount": 0,
    "State": {"Status": "running", "Running": True, "Restarting": False, "ExitCode": 0, "Error": "",
              "OOMKilled": False, "StartedAt": "2025-08-01T10:00:00.5Z", "FinishedAt": "0001-01-01T00:00:00Z",
              "Health": {"Status": "healthy"}},
    "Config": {"User": "10001:10001", "Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://127.0.0.1:8200/health"]}},
    "HostConfig": {"Memory": 256 * 2**20, "RestartPolicy": {"Name": "unless-stopped"},
                   "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}},
    "Mounts": [],
}


class States:
    """Stands in for ContainerSnapshot."""

    def __init__(self, **by_name):
        self.by_name = by_name

    def get(self, name, host):
        return self.by_name.get(name)


def states(target=ENGINE, **changes_) -> States:
    attrs = copy.deepcopy(HEALTHY)
    attrs["Name"] = "/" + target.name
    for path, value in changes_.items():
        node = attrs
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return States(**{target.name: attrs})


def verdict(target=ENGINE) -> Verdict:
    return Verdict(target.name)


def fails(match: str):
    return pytest.raises(pytest.fail.Exception, match=match)


# -- healthy passes ------------------------------------------------------------------

@pytest.mark.parametrize("check", [checks.test_container_not_oom_killed, checks.test_container_exit_code,
                                   checks.test_container_healthcheck_configured, checks.test_container_restart_policy,
                                   checks.test_container_memory_limit, checks.test_container_non_root,
                                   checks.test_container_log_rotation])
def test_a_healthy_container_passes(check):
    check(ENGINE, states(), verdict())


def test_restart_count_below_the_limit_passes():
    checks.test_container_restart_count(ENGINE, states(RestartCount=4), INVENTORY, verdict())


# -- one bad fact each ------------------------------------------------------------------

def test_oom_killed_fails_with_when_and_the_limit():
    with fails(r"OOM-killed when it last stopped \(2025-08-01T11:00:00Z, memory limit 256 MiB\); Docker restarted it "
               r"at 2025-08-01T10:00:00.5Z \(restart #1\)"):
        checks.test_container_not_oom_killed(
            ENGINE, states(State__OOMKilled=True, RestartCount=1, State__FinishedAt="2025-08-01T11:00:00Z"), verdict())
    with fails(r"memory limit 256 MiB\); now exited, exit code 137"):
        checks.test_container_not_oom_killed(
            ENGINE, states(State__OOMKilled=True, State__Status="exited", State__ExitCode=137), verdict())


@pytest.mark.parametrize("code,oom,said", [
    (125, False, r"125: a Docker daemon error.*docker version.*daemon's log"),
    (126, False, "126: the command could not be executed"),
    (127, False, "127: the command was not found"),
    (137, False, r"137: killed by a signal \(docker kill, a stop timeout, or the kernel\)"),
    (137, True, "137: killed by the kernel for running out of memory"),
    (139, False, "139: a segmentation fault"),
    (143, False, "143: terminated by SIGTERM \\(a stop"),
    (1, False, "1: an application error"),
    (2, False, "2: an application error"),
])
def test_exit_code_is_explained(code, oom, said):
    with fails(said):
        checks.test_container_exit_code(ENGINE, states(State__Status="exited", State__ExitCode=code,
                                                       State__OOMKilled=oom), verdict())


def test_exit_code_137_is_not_called_oom_without_oomkilled():
    with pytest.raises(pytest.fail.Exception) as failed:
        checks.test_container_exit_code(ENGINE, states(State__Status="exited", State__ExitCode=137), verdict())
    assert "memory" not in str(failed.value)


def test_exit_code_message_carries_the_state_error():
    with fails(r"125: .*State.Error: driver failed programming external connectivity"):
        checks.test_container_exit_code(ENGINE, states(State__Status="created", State__ExitCode=125,
                                                       State__Error="driver failed programming external connectivity"),
                                        verdict())


def test_restart_count_at_the_limit_fails():
    with fails(r"expected fewer than 5 restarts by Docker; saw 5 restarts"):
        checks.test_container_restart_count(ENGINE, states(RestartCount=5), INVENTORY, verdict())


def test_restart_count_limit_is_per_engine():
    inventory = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    inventory.engines["risk"].thresholds["restart_count_max"] = 10
    checks.test_container_restart_count(ENGINE, states(RestartCount=7), inventory, verdict())


@pytest.mark.parametrize("healthcheck,said", [(None, "no health check"), ({"Test": ["NONE"]}, "disabled")])
def test_missing_healthcheck_fails(healthcheck, said):
    with fails(said):
        checks.test_container_healthcheck_configured(ENGINE, states(Config__Healthcheck=healthcheck), verdict())


@pytest.mark.parametrize("policy", ["no", ""])
def test_no_restart_policy_fails(policy):
    with fails(r"saw restart policy 'no'$"):
        checks.test_container_restart_policy(ENGINE, states(HostConfig__RestartPolicy={"Name": policy}), verdict())


@pytest.mark.parametrize("check, changes, fix", [
    (checks.test_container_restart_policy, {"HostConfig__RestartPolicy": {"Name": "no"}}, "set restart:"),
    (checks.test_container_memory_limit, {"HostConfig__Memory": 0}, "set mem_limit"),
    (checks.test_container_non_root, {"Config__User": "root"}, "set user:"),
    (checks.test_container_healthcheck_configured, {"Config__Healthcheck": None}, "add a healthcheck:"),
    (checks.test_container_log_rotation, {"HostConfig__LogConfig": {"Type": "none", "Config": {}}}, "set logging:"),
    (checks.test_container_healthy, {"State__Health": None}, "add a healthcheck:"),
], ids=lambda p: getattr(p, "__name__", None))
def test_a_compose_setting_is_seen_in_the_finding_and_fixed_in_its_own_field(check, changes, fix):
    v = verdict()
    with pytest.raises(pytest.fail.Exception) as failure:
        check(ENGINE, states(**changes), v)
    assert "fix" not in str(failure.value) and "compose file)" not in str(failure.value)
    assert dict(v.records)["advice"].startswith(fix)


@pytest.mark.parametrize("policy", ["always", "on-failure", "unless-stopped"])
def test_restarting_policies_pass(policy):
    checks.test_container_restart_policy(ENGINE, states(HostConfig__RestartPolicy={"Name": policy}), verdict())


def test_no_memory_limit_fails():
    with fails("no memory limit"):
        checks.test_container_memory_limit(ENGINE, states(HostConfig__Memory=0), verdict())


@pytest.mark.parametrize("user", ["", "root", "0", "0:0"])
def test_root_user_fails(user):
    with fails("expected a non-root Config.User"):
        checks.test_container_non_root(ENGINE, states(Config__User=user), verdict())


@pytest.mark.parametrize("config,said", [
    ({"Type": "json-file", "Config": {}}, "json-file without max-size"),
    ({"Type": "none", "Config": {}}, "driver none"),
])
def test_unrotated_logs_fail(config, said):
    with fails(said):
        checks.test_container_log_rotation(ENGINE, states(HostConfig__LogConfig=config), verdict())


@pytest.mark.parametrize("config", [{"Type": "journald", "Config": {}}, {"Type": "local", "Config": {}},
                                    {"Type": "syslog", "Config": {"syslog-address": "udp://x:514"}}])
def test_drivers_that_rotate_pass(config):
    checks.test_container_log_rotation(ENGINE, states(HostConfig__LogConfig=config), verdict())


def test_missing_container_fails_each_check():
    with fails("to exist on local"):
        checks.test_container_memory_limit(ENGINE, States(), verdict())


# -- data on volumes -------------------------------------------------------------------------

def test_only_postgres_and_redis_have_a_data_dir():
    chosen, _ = targets.containers(INVENTORY, None)
    assert {t.name: t.data_dir for t in chosen if t.data_dir} == {"nautilus-postgres": "/var/lib/postgresql/data",
                                                                  "nautilus-redis": "/data"}


def test_data_on_a_volume_passes():
    mounts = [{"Type": "volume", "Name": "nautilus_postgres-data", "Destination": "/var/lib/postgresql/data"}]
    checks.test_container_data_on_volumes(POSTGRES, states(POSTGRES, Mounts=mounts), verdict(POSTGRES))
    checks.test_container_data_on_volumes(REDIS, states(REDIS, Mounts=[{"Type": "bind", "Source": "/srv/redis",
                                                                         "Destination": "/data"}]), verdict(REDIS))


def test_data_in_the_container_fails():
    mounts = [{"Type": "bind", "Source": "/etc/x", "Destination": "/opt/lab/start.sh"}]
    with fails(r"expected a volume \(or bind mount\) holding /var/lib/postgresql/data; saw bind on /opt/lab/start.sh"):
        checks.test_container_data_on_volumes(POSTGRES, states(POSTGRES, Mounts=mounts), verdict(POSTGRES))
    with fails("saw no mounts: the data lives in the container"):
        checks.test_container_data_on_volumes(REDIS, states(REDIS, Mounts=[]), verdict(REDIS))


# -- restarts since the last run ---------------------------------------------------------------

def run_restart_check(history: RestartHistory, container_states: States, seen: Verdict | None = None) -> None:
    deploys = deploys_since(history, container_states, [ENGINE])
    checks.test_container_restarts_since_last_run(ENGINE, container_states, history, deploys, seen or verdict())


def test_first_run_skips_saying_so_then_the_next_compares(tmp_path):
    first = RestartHistory(tmp_path)
    with pytest.raises(pytest.skip.Exception, match="first run: no earlier run recorded nautilus-risk-engine"):
        run_restart_check(first, states())
    first.save()
    second = RestartHistory(tmp_path)
    run_restart_check(second, states())  # nothing changed: passes
    second.save()
    third = RestartHistory(tmp_path)
    with fails(r"expected no restart since the previous run \(.*\); saw Docker restarted it 2 times "
               r"\(RestartCount 0 -> 2\); started again at 2025-08-01T12:00:00Z"):
        run_restart_check(third, states(RestartCount=2, State__StartedAt="2025-08-01T12:00:00Z"))


def test_a_manual_restart_and_a_recreation_are_seen(tmp_path):
    history = RestartHistory(tmp_path)
    history.record("local", ENGINE.name, Seen.of(HEALTHY))
    history.save()
    with fails("started again at 2025-08-02T09:00:00Z"):
        run_restart_check(RestartHistory(tmp_path), states(State__StartedAt="2025-08-02T09:00:00Z"))



def test_a_recreated_container_is_a_deploy_and_its_own_restarts_still_fail(tmp_path):
    history = RestartHistory(tmp_path)
    history.record("local", ENGINE.name, Seen.of({**HEALTHY, "Image": "sha256:aaaaaaaaaaaa1"}))
    history.save()
    seen = verdict()
    run_restart_check(RestartHistory(tmp_path), states(Id="beef", Image="sha256:bbbbbbbbbbbb2",
                                                       State__StartedAt="2025-08-02T09:00:00Z"), seen)
    assert dict(seen.records)["deploy"] == ("nautilus-risk-engine (image aaaaaaaaaaaa -> bbbbbbbbbbbb, started "
                                            "2025-08-02 09:00:00)")
    with fails(r"recreated, then Docker restarted the new container 2 times"):
        run_restart_check(RestartHistory(tmp_path), states(Id="beef", RestartCount=2))


def test_an_unreadable_state_file_cannot_observe_and_is_rewritten(tmp_path):
    (tmp_path / "containers.json").write_text("{not json")
    history = RestartHistory(tmp_path)
    with pytest.raises(Unobservable, match="unreadable"):
        run_restart_check(history, states())
    history.save()
    assert list(json.loads((tmp_path / "containers.json").read_text())) == ["local/nautilus-risk-engine"]


def test_save_merges_with_what_another_run_wrote_meanwhile(tmp_path):
    mine, theirs = RestartHistory(tmp_path), RestartHistory(tmp_path)
    mine.record("local", "a", Seen.of(HEALTHY))
    theirs.record("local", "b", Seen.of(HEALTHY))
    theirs.save()
    mine.save()
    assert sorted(json.loads((tmp_path / "containers.json").read_text())) == ["local/a", "local/b"]
    assert not list(tmp_path.glob(".containers-*"))  # no temp file left behind


def test_changes_in_words():
    before = Seen("c1", 1, "t1", "x")
    assert changes(before, Seen("c1", 1, "t1", "y")) == []
    assert changes(before, Seen("c1", 1, "t2", "y")) == ["started again at t2 (was t1)"]
