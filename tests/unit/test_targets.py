"""Targets from the inventory: engines run as plain processes get no container checks."""
from observation import targets
from observation.inventory import load_inventory


def inventory(tmp_path, text):
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    return load_inventory(path, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})


def test_an_engine_without_docker_has_no_container_target(tmp_path):
    inv = inventory(tmp_path, "engines:\n  risk: {docker: false}\n")
    names = targets.containers(inv, None)[1]
    assert "nautilus-risk-engine" not in names and "nautilus-ml-engine" in names
    assert "risk-engine" in targets.engines(inv, None)[1]  # still judged on what can be observed
    assert "port-8200" in targets.ports(inv, None)[1]


def test_a_host_without_docker_has_no_container_targets(tmp_path):
    inv = inventory(tmp_path, "hosts: [{name: bare, docker: false}]\n")
    assert targets.containers(inv, None) == ([], [])
    assert len(targets.engines(inv, None)[0]) == 9


def test_relative_directories_are_the_inventory_files(tmp_path):
    inv = inventory(tmp_path, "log_dir: logs\nbackup_dir: /srv/backups\n")
    assert inv.log_dir == str(tmp_path / "logs") and inv.backup_dir == "/srv/backups"
