"""The platform network: the check container-on-platform-network on recorded `docker inspect` documents, its
fix reconnect-network against the fake Docker API, and the checks that rest on it blocked by it."""
from __future__ import annotations

import copy
import json

import pytest

from checks import test_containers as checks
from checks.coverage import load_checks
from fixtures.dependencies import Outcomes
from fixtures.judgement import fix_for
from fixtures.spec import REGISTRY
from fixtures.verdict import Verdict
from observation import networks
from observation.inventory import load_inventory
from observation.targets import ContainerTarget
from remediation import procedures
from remediation import networks as reconnect
from remediation.errors import RemediationError
from remediation.invocation import ENTRY
from test_procedures import ProcedureAPI, platform_api  # noqa: F401  (the fake Docker API and its fixtures)
from test_procedures import ctx, output, quiet_network  # noqa: F401
from test_remediation import ENV, LOCAL

INVENTORY = load_inventory(None, environ=ENV)
ENGINE = ContainerTarget("nautilus-analytics-engine", "local", "analytics")
REDIS = ContainerTarget("nautilus-redis", "local", data_dir="/data")
GUIDE_NETWORK = "nautilus_nautilus-network"

# Recorded from the lab (docker inspect nautilus-analytics-engine, lab/compose.yaml), trimmed to what the check
# reads; the lab's network renamed to the guide's, as the default inventory expects it.
RECORDED = {
    "Id": "04aed03d26340f273a0df22b2e787ad6cb65896177ffb8e80fcf2da85b6cce05",
    "Name": "/nautilus-analytics-engine", "RestartCount": 0,
    "State": {"Status": "running", "Running": True, "Restarting": False, "ExitCode": 0, "Error": "",
              "OOMKilled": False, "Health": {"Status": "healthy"}},
    "Config": {"Labels": {"com.docker.compose.project": "nautilus",
                          "com.docker.compose.service": "analytics-engine"}},
    "NetworkSettings": {"Ports": {"8100/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8100"}]}, "Networks": {
        GUIDE_NETWORK: {"IPAMConfig": None, "Links": None,
                        "Aliases": ["nautilus-analytics-engine", "analytics-engine", "04aed03d2634"],
                        "NetworkID": "d26680e6f8cd", "Gateway": "172.18.0.1", "IPAddress": "172.18.0.8",
                        "IPPrefixLen": 16, "MacAddress": "02:42:ac:12:00:08", "DriverOpts": None}}},
}
# The same container after `docker network disconnect nautilus_nautilus-network nautilus-analytics-engine`: Docker
# keeps its published ports in HostConfig but NetworkSettings lists no network and no port.
DISCONNECTED = {**RECORDED, "NetworkSettings": {"Ports": {}, "Networks": {}}}
ON_BRIDGE = {**RECORDED, "NetworkSettings": {"Ports": {}, "Networks": {"bridge": {"IPAddress": "172.17.0.4"}}}}


class States:
    """Stands in for ContainerSnapshot: the run's one `docker inspect` of each container."""

    def __init__(self, **by_name):
        self.by_name = by_name

    def get(self, name, host):
        return copy.deepcopy(self.by_name.get(name))


def judge(attrs: dict, target: ContainerTarget = ENGINE, inventory=INVENTORY) -> Verdict:
    verdict = Verdict(target.name)
    checks.test_container_on_platform_network(target, States(**{target.name: attrs}), inventory, verdict)
    return verdict


@pytest.fixture
def markers(tmp_path, monkeypatch):
    """isolate-engine's markers in a folder of the test's own (the check and both helpers read the same)."""
    folder = tmp_path / "isolation"
    monkeypatch.setattr(networks, "ISOLATION_DIR", folder)
    monkeypatch.setattr(procedures, "ISOLATION_DIR", folder)
    return folder


# -- the check ---------------------------------------------------------------------------------

def test_a_container_on_the_platform_network_passes(markers):
    verdict = judge(RECORDED)
    assert ("evidence:networks", json.dumps([GUIDE_NETWORK], indent=2)) in verdict.records


def test_a_container_on_no_network_fails_saying_so(markers):
    with pytest.raises(pytest.fail.Exception) as failed:
        judge(DISCONNECTED)
    assert str(failed.value) == (
        "[nautilus-analytics-engine] expected attached to the platform network nautilus_nautilus-network; saw on no "
        "network at all: nothing reaches it, and it reaches neither Redis nor PostgreSQL")


def test_a_container_on_other_networks_fails_naming_them(markers):
    with pytest.raises(pytest.fail.Exception, match=r"expected attached to the platform network "
                                                    r"nautilus_nautilus-network; saw on bridge only$"):
        judge(ON_BRIDGE)


def test_the_network_is_the_inventorys(markers):
    lab = INVENTORY.model_copy(update={"platform_network": "nautilus-lab_nautilus-network"})
    with pytest.raises(pytest.fail.Exception, match="saw on nautilus_nautilus-network only"):
        judge(RECORDED, inventory=lab)
    lab_attrs = copy.deepcopy(RECORDED)
    lab_attrs["NetworkSettings"]["Networks"] = {"nautilus-lab_nautilus-network": {}}
    judge(lab_attrs, inventory=lab)


def test_a_service_container_is_judged_too(markers):
    with pytest.raises(pytest.fail.Exception, match=r"^\[nautilus-redis\] expected attached"):
        judge({**DISCONNECTED, "Name": "/nautilus-redis"}, target=REDIS)


def test_an_isolated_engine_is_in_maintenance_not_failing(markers):
    markers.mkdir()
    (markers / "analytics.json").write_text(json.dumps({"engine": "analytics"}))
    verdict = Verdict(ENGINE.name)
    with pytest.raises(pytest.skip.Exception, match=r"analytics in maintenance: isolated by isolate-engine"):
        checks.test_container_on_platform_network(ENGINE, States(**{ENGINE.name: DISCONNECTED}), INVENTORY,
                                                   verdict)
    assert [key for key, _ in verdict.records] == ["evidence:state", "maintenance"]
    judge(RECORDED)  # a marker left behind while the engine is back on the network: judged, and it passes


def test_the_failure_names_reconnect_network_with_its_exact_command():
    spec = REGISTRY["container-on-platform-network"]
    assert (spec.tiers, spec.severity) == (("emergency", "daily"), "critical")
    fix = fix_for(spec, {}, ENGINE, {"inventory": "/srv/inventory.yaml"})
    assert fix.text == f"{ENTRY} reconnect-network nautilus-analytics-engine --inventory=/srv/inventory.yaml"


# -- what rests on it --------------------------------------------------------------------------

CHECKS = load_checks()  # every check module imported: their declared prerequisites, as a run reads them


def needs_of(check_id: str) -> tuple[str, ...]:
    return CHECKS[check_id].needs


@pytest.mark.parametrize("dependent", ["port-open", "engine-health-answers", "engine-reaches-redis",
                                       "engine-reaches-postgres", "engine-bus-connection", "engine-bus-idle",
                                       "engine-messagebus-flag", "engine-heartbeat-fresh"])
def test_an_engine_off_the_network_blocks_what_rests_on_its_network(dependent):
    root = "container-on-platform-network[nautilus-analytics-engine]"
    outcomes = Outcomes(needs_of=needs_of)
    outcomes.record("container-on-platform-network", "engine:analytics", "failed", root)
    assert outcomes.blocker(CHECKS[dependent].needs, "engine:analytics") == root
    assert outcomes.blocker(CHECKS[dependent].needs, "engine:risk") is None  # only that engine's checks


@pytest.mark.parametrize("service, dependent", [("redis", "engine-reaches-redis"), ("redis", "engine-bus-connection"),
                                                ("redis", "engine-heartbeat-fresh"),
                                                ("postgres", "engine-reaches-postgres")])
def test_redis_or_postgres_off_the_network_blocks_every_engines_reach(service, dependent):
    root = f"container-on-platform-network[nautilus-{service}]"
    outcomes = Outcomes(needs_of=needs_of)
    outcomes.record("container-on-platform-network", f"service:{service}", "failed", root)
    assert outcomes.blocker(CHECKS[dependent].needs, "engine:risk") == root


def test_an_isolated_engine_puts_what_rests_on_its_network_in_maintenance():
    outcomes = Outcomes(needs_of=needs_of)
    outcomes.record("container-on-platform-network", "engine:ml", "maintenance", "ml in maintenance: isolated")
    assert outcomes.cause(CHECKS["engine-reaches-redis"].needs, "engine:ml") == (
        "maintenance", "ml in maintenance: isolated")


# -- the fix -----------------------------------------------------------------------------------

@pytest.fixture
def api():
    found = platform_api()
    found.by_name["nautilus-risk-engine"]["attrs"]["NetworkSettings"]["Networks"] = {}  # disconnected
    return found


def test_reconnect_dry_run_prints_the_plan_and_changes_nothing(ctx, api, output, tmp_path, markers):
    assert reconnect.reconnect_network(ctx, "risk", False) == 0
    assert api.changes == [] and not ctx.audit_path.exists() and not (tmp_path / "bundle").exists()
    assert output[1] == ("dry run of reconnect-network nautilus-risk-engine (now running (healthy), 0 restarts, on "
                         "no network) on Docker host 'local'; with --apply it would:")
    assert output[2] == f"on Docker endpoint: {LOCAL}"
    assert output[4] == ("2. connect nautilus-risk-engine to nautilus_nautilus-network (POST "
                         "/networks/nautilus_nautilus-network/connect, as `docker network connect --alias risk-engine "
                         "nautilus_nautilus-network nautilus-risk-engine`): the other containers reach it as "
                         "risk-engine")
    assert output[-1] == "dry run: nothing changed; add --apply to do it (you will be asked to type nautilus-risk-engine)"


def test_reconnect_apply_confirms_bundles_connects_and_audits(ctx, api, output, tmp_path, markers):
    asked = []
    ctx.confirm = lambda name, plan: asked.append((name, plan[0]))
    assert reconnect.reconnect_network(ctx, "nautilus-risk-engine", True) == 0
    assert asked == [("nautilus-risk-engine", "reconnect-network will connect nautilus-risk-engine to "
                                              "nautilus_nautilus-network:")]
    assert api.changes == [("connect", "nautilus-risk-engine", GUIDE_NETWORK, ["risk-engine"])]
    assert (tmp_path / "bundle" / "manifest.json").exists()
    assert "connected nautilus-risk-engine to nautilus_nautilus-network as risk-engine" in output
    line = json.loads(ctx.audit_path.read_text())
    assert (line["helper"], line["target"]) == ("reconnect-network", "nautilus-risk-engine")
    assert line["outcome"] == "nautilus-risk-engine is on nautilus_nautilus-network again (its networks: " \
                              "nautilus_nautilus-network)"
    output.clear()
    assert reconnect.reconnect_network(ctx, "risk", True) == 0  # once back on it there is nothing to do
    assert output == ["nautilus-risk-engine is already on nautilus_nautilus-network (its networks: "
                      "nautilus_nautilus-network); nothing to do"]
    assert len(api.changes) == 1


def test_reconnect_that_does_not_take_says_so_and_exits_1(ctx, api, output, markers):
    api.connect_container_to_network = lambda name, network, **kwargs: api.changes.append(("connect", name))
    assert reconnect.reconnect_network(ctx, "risk", True) == 1
    assert json.loads(ctx.audit_path.read_text())["outcome"] == ("nautilus-risk-engine is still not on "
                                                                  "nautilus_nautilus-network (its networks: none)")


def test_reconnect_refuses_an_isolated_engine_and_names_restore(ctx, api, markers):
    assert procedures.isolate_engine(ctx, "factor", True) == 0
    api.changes.clear()
    with pytest.raises(RemediationError, match=f"factor is isolated .*: undo the isolation with {ENTRY} "
                                               "restore-engine factor"):
        reconnect.reconnect_network(ctx, "factor", True)
    assert api.changes == []


def test_reconnect_acts_only_on_the_inventorys_containers(ctx, api):
    with pytest.raises(RemediationError, match="reconnect-network: .*unrelated-app"):
        reconnect.reconnect_network(ctx, "unrelated-app", True)
    assert api.changes == []
