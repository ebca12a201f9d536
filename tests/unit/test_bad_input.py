"""Bad input stops a check run with one clear line: no traceback, no hang."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)


# `--inventory=PATH`, not `--inventory PATH`: pytest finds its rootdir before it
# loads any plugin, and an absolute PATH after a space would be taken for a test path.
def test_bad_inventory_is_one_line_and_exit_4(tmp_path):
    bad = tmp_path / "inv.yaml"
    bad.write_text("engines:\n  risk: {port: 99999}\n")
    done = run("-m", "emergency", f"--inventory={bad}", env={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    assert done.returncode == 4
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [f"ERROR: inventory: {bad}: engines.risk.port: must be between 1 and 65535 (got 99999)"]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("asked", [("--collect-only", "-q", "-m", "daily"), ("--markers",), ("--fixtures",)])
def test_what_touches_no_service_runs_without_secrets(asked):
    done = run(*asked, "--inventory=lab/inventory.yaml", env={})
    assert (done.returncode, done.stderr) == (0, "")


def test_missing_secret_fails_only_the_checks_that_need_it_in_one_line(tmp_path):
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(f"hosts: [{{name: local, url: 'unix://{tmp_path}/no-docker.sock'}}]\n"
                         "postgres: {port: 1}\n")  # never reached: the missing password stops the probe first
    done = run("-m", "daily", "-k", "test_postgres_size or host_disk_root", f"--inventory={inventory}",
               "--reports-dir", str(tmp_path / "out"), env={})
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert ("cannot observe: postgresql: postgres password: set NAUTILUS_POSTGRES_PASSWORD or NAUTILUS_POSTGRES_PASSWORD_FILE "
            "(a file holding it)") in done.stdout
    assert "host-disk" not in done.stdout.split("short test summary")[-1]  # no secret needed: judged as usual


def test_unknown_engine_option_is_one_line():
    done = run("-m", "emergency", "--engine", "rsk", env={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    assert done.returncode == 4
    assert "unknown engine(s) ['rsk']" in done.stderr and "Traceback" not in done.stderr


def test_dead_docker_daemon_fails_container_checks_with_the_reason(tmp_path):
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(f"hosts: [{{name: local, url: 'unix://{tmp_path}/no-docker.sock'}}]\n")
    done = run("-m", "emergency", "-k", "container_running", f"--inventory={inventory}",
               "--html", str(tmp_path / "r.html"), "--alluredir", str(tmp_path / "a"),
               env={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    assert done.returncode == 1
    assert "Traceback" not in done.stdout
    assert f"cannot observe: docker://local: no Docker daemon answers at unix://{tmp_path}/no-docker.sock" in done.stdout
    assert "passed" not in done.stdout.splitlines()[-1]


def test_a_trickled_answer_is_given_up_at_its_deadline():
    import time

    from observation.http import TooSlow, read_capped

    class Trickle:
        def read1(self, amt, decode_content=True):
            time.sleep(0.02)
            return b"x"

    started = time.monotonic()
    with pytest.raises(TooSlow, match="bytes received"):
        read_capped(Trickle(), 1 << 20, deadline=started + 0.1)
    assert time.monotonic() - started < 1


def test_a_big_answer_is_cut_past_the_cap():
    import io

    from observation.http import read_capped

    class Body(io.BytesIO):
        def read1(self, amt, decode_content=True):
            return super().read1(amt)

    assert len(read_capped(Body(b"y" * 5000), 1000, deadline=float("inf"))) == 1001
