"""The lab acts only on what it created: beside objects that look like the platform's, it refuses and touches nothing.

Two hosts are made for real on the lab's Docker: (a) a platform service the lab does not have, started by Compose
under the project `nautilus` with a named volume holding a file; (b) an unlabelled container and volume with the
lab's own names. In each, `lab up`, `lab fault stop risk`, `lab down --volumes` and a lab test run by pytest refuse
in one line, and afterwards the foreign container has the same id and state and the volume still holds its file.

What these tests create carries a test label of its own (not the lab's), so their cleanup removes only that.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import LAB_OWNED, ROOT, lab_cli, lab_docker
from lab import PLATFORM_PROJECT, PROJECT
from lab.base_image import image_tag
from lab.compose import compose_binary

TEST_LABEL = {"io.nautilus-health.test": "foreign"}
KEPT = "platform data that must survive\n"
REFUSED = (("up",), ("fault", "stop", "risk"), ("down", "--volumes"))


def remove_test_objects() -> None:
    client = lab_docker()
    selector = {"label": "io.nautilus-health.test=foreign"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for volume in client.volumes.list(filters=selector):
        volume.remove()
    for network in client.networks.list(filters=selector):
        network.remove()


def observed(container_name: str, volume_name: str) -> dict:
    """What must not change: the foreign container's id and state, the volume's file, and every lab container."""
    client = lab_docker()
    container = client.containers.get(container_name)
    volume = client.volumes.get(volume_name)
    state = container.attrs["State"]
    lab = {c.name: (c.id, c.status) for c in client.containers.list(all=True, filters=LAB_OWNED)}
    return {"foreign": (container.id, state["Status"], state["StartedAt"]),
            "file": (Path(volume.attrs["Mountpoint"]) / "keep.txt").read_text(), "lab": lab}


def assert_everything_refuses(*names: str) -> None:
    for args in REFUSED:
        done = lab_cli(*args, check=False)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (args, done.stdout, done.stderr)
        assert lines[0].startswith("lab: refusing to act"), lines
        assert all(name in lines[0] for name in names), lines
        assert "another Docker host" in lines[0]
    # The suite's own lab tests refuse before any test runs (unit tests included: nothing at all runs).
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "tests/lab/test_lab_stack.py", "tests/unit/test_redact.py"],
                          cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "refusing to act" in done.stdout + done.stderr
    assert " passed" not in done.stdout and " failed" not in done.stdout


@pytest.fixture
def platform_project(tmp_path, lab):
    """(a): Compose project `nautilus` running a service the lab does not have (`nginx`), with a named volume."""
    compose_file = tmp_path / "compose.yaml"
    labels = "{io.nautilus-health.test: foreign}"
    compose_file.write_text(textwrap.dedent(f"""\
        name: {PLATFORM_PROJECT}
        services:
          nginx:
            image: {image_tag()}
            command: ["sh", "-c", "printf '{KEPT.strip()}\\\\n' > /data/keep.txt; exec sleep infinity"]
            labels: {labels}
            volumes: [web-data:/data]
        networks:
          default: {{labels: {labels}}}
        volumes:
          web-data: {{labels: {labels}}}
        """))
    subprocess.run([str(compose_binary()), "-f", str(compose_file), "up", "-d", "--wait"], check=True, timeout=120,
                   capture_output=True)
    yield f"{PLATFORM_PROJECT}-nginx-1", f"{PLATFORM_PROJECT}_web-data"
    remove_test_objects()


@pytest.mark.lab_fault
def test_a_compose_project_named_like_the_platform_is_never_touched(platform_project):
    container, volume = platform_project
    before = observed(container, volume)
    assert before["file"] == KEPT and len(before["lab"]) >= 14
    assert_everything_refuses(container, volume)
    assert observed(container, volume) == before


@pytest.fixture
def lab_names_taken(lab):
    """(b): the lab's own names taken by an unlabelled container and an unlabelled volume (the lab made way first)."""
    lab_cli("down", "--volumes")
    client = lab_docker()
    volume_name = f"{PROJECT}_postgres-data"
    client.volumes.create(volume_name, labels=TEST_LABEL)
    client.containers.run(image_tag(), ["sh", "-c", f"printf '{KEPT.strip()}\\n' > /data/keep.txt; "
                                                    "exec sleep infinity"],
                          name="nautilus-risk-engine", labels=TEST_LABEL, detach=True,
                          volumes={volume_name: {"bind": "/data", "mode": "rw"}}, network_mode="none")
    yield "nautilus-risk-engine", volume_name
    remove_test_objects()
    lab_cli("up")


@pytest.mark.lab_fault
def test_an_unlabelled_container_and_volume_with_the_labs_names_are_never_touched(lab_names_taken):
    container, volume = lab_names_taken
    before = observed(container, volume)
    assert before["file"] == KEPT and before["lab"] == {}
    assert_everything_refuses(container, volume)
    assert observed(container, volume) == before
