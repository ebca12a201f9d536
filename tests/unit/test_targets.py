"""Targets from the inventory: engines run as plain processes get no container checks."""
import subprocess
import sys
from pathlib import Path

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


def test_engines_on_a_host_without_docker_are_plain_processes(tmp_path):
    # Their checks that ask Docker (bus connection by container address, reach from inside, memory growth) go too.
    inv = inventory(tmp_path, "hosts: [{name: box}, {name: bare, docker: false}]\n"
                              "engines:\n  risk: {host: bare}\n")
    assert inv.engines["risk"].docker is False and inv.engines["ml"].docker is True


ROOT = Path(__file__).resolve().parents[2]
DOCKER_RUN_WIDE = {"test_docker_daemon_answers", "test_host_disk_docker_root", "test_docker_disk_reclaimable",
                   "test_docker_storage_driver"}


def collected(tmp_path, hosts: str) -> set[str]:
    """The checks a daily and weekly run would run on an inventory with these hosts (collection only)."""
    path = tmp_path / "inv.yaml"
    path.write_text(f"hosts: {hosts}\nstate_dir: {tmp_path / 'state'}\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           "-m", "daily or weekly", f"--inventory={path}"], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "NAUTILUS_POSTGRES_PASSWORD": "x"}, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return {line.split("::")[1].split("[")[0] for line in done.stdout.splitlines() if "::" in line}


def test_no_host_with_docker_leaves_out_every_docker_check(tmp_path):
    with_docker = collected(tmp_path, "[{name: local}]")
    assert DOCKER_RUN_WIDE <= with_docker and "test_container_running" in with_docker
    without = collected(tmp_path, "[{name: bare, docker: false}]")
    assert not DOCKER_RUN_WIDE & without  # deselected: no "cannot observe", no pass that judged no daemon
    assert not {"test_container_running", "test_engine_memory_growth", "test_engine_reaches_redis"} & without
    assert {"test_host_disk_root", "test_engine_health_answers", "test_redis_ping"} <= without


def test_docker_figures_follow_the_host_the_host_checks_read(tmp_path):
    # The host checks read the first host; the daemon check asks every host that runs Docker.
    first_bare = collected(tmp_path, "[{name: bare, docker: false}, {name: box, address: 10.0.0.2}]")
    assert "test_docker_daemon_answers" in first_bare
    assert not {"test_host_disk_docker_root", "test_docker_disk_reclaimable", "test_docker_storage_driver"} & first_bare
