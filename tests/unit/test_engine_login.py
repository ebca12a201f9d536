"""The PostgreSQL login probe an engine's container runs (observation/reach.py LOGIN_SCRIPT), run here with this
machine's python3 and psycopg2 against addresses that refuse: what it prints, its exit codes, and that the
engine's secrets never come out of it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from observation.reach import LOGIN_SCRIPT

SECRET = "s3cret-Pa55"


def login(env: dict, port: str = "1") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOGIN_SCRIPT, "127.0.0.1", port, "2"], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=30)


def test_a_refused_login_with_the_engines_settings_says_why_in_one_line_without_the_password():
    done = login({"POSTGRES_USER": "nautilus", "POSTGRES_PASSWORD": SECRET, "POSTGRES_DB": "nautilus"})
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("login with the engine's POSTGRES_* settings failed: ")
    assert len(done.stdout.strip().splitlines()) == 1 and SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize("url", [f"postgresql://nautilus:{SECRET}@127.0.0.1:1/nautilus",
                                 f"postgresql://nautilus:{SECRET}@127.0.0.1:1/nautilus?bad option"])
def test_a_database_url_is_used_first_and_masked_wherever_the_error_repeats_it(url):
    done = login({"DATABASE_URL": url, "POSTGRES_PASSWORD": "unused"})
    assert done.returncode == 1 and "the engine's DATABASE_URL failed" in done.stdout, done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr and url not in done.stdout


def test_an_image_without_psycopg2_cannot_try(tmp_path):
    (tmp_path / "psycopg2.py").write_text("raise ImportError('not in this image')\n")
    done = subprocess.run([sys.executable, "-c", LOGIN_SCRIPT, "127.0.0.1", "1", "2"], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 3 and done.stdout.strip() == "the image has no psycopg2 to log in with"
