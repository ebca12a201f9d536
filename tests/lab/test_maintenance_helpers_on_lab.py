"""The maintenance helpers on the real lab: the checks fail on a real fault, print the helper, the helper fixes it;
a dry run changes nothing; a planted backup and a symlink are never touched; `--remediate` ends green."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest

from conftest import LAB_INVENTORY, ROOT, run_checks
from remediation.invocation import render

INVENTORY = f"--inventory={LAB_INVENTORY}"
LOGS, BACKUPS = ROOT / "lab" / ".state" / "logs", ROOT / "lab" / ".state" / "backups"
SELECTION = ("-m", "daily or weekly", "-k", "logs_rotated or postgres_dead_tuples", INVENTORY)
DAY = 86400


def remediation(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NAUTILUS_AUDIT_LOG=str(tmp_path / "audit.log"))
    env.setdefault("NAUTILUS_POSTGRES_PASSWORD_FILE", str(ROOT / "lab" / ".state" / "postgres-password"))
    return subprocess.run([sys.executable, "-m", "remediation", *args, INVENTORY], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def files() -> dict:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in LOGS.iterdir()}


def table_stats(password: str) -> tuple:
    with psycopg.connect(host="127.0.0.1", dbname="nautilus", user="nautilus", password=password,
                         connect_timeout=5) as conn:
        return conn.execute("SELECT n_live_tup, n_dead_tup, vacuum_count, analyze_count FROM pg_stat_user_tables "
                            "WHERE relname = 'lab_bloat'").fetchone()


@pytest.fixture
def planted(lab):
    """An old backup file and an old symlinked *.log: neither may be touched by any helper."""
    backup = BACKUPS / "nautilus_backup_20200101-000000.sql.gz"
    backup.write_bytes(b"planted backup, must survive")
    outside = ROOT / "lab" / ".state" / "outside-target.log"
    outside.write_text("not a platform log\n")
    link = LOGS / "planted-link.log"
    link.symlink_to(outside)
    stamp = time.time() - 60 * DAY
    for path in (backup, outside):
        os.utime(path, (stamp, stamp))
    os.utime(link, (stamp, stamp), follow_symlinks=False)
    yield backup, link, outside
    for path in (backup, link, outside, LOGS / "planted-old.log.gz"):
        path.unlink(missing_ok=True)


@pytest.mark.lab_fault
def test_fixes_printed_dry_run_changes_nothing_apply_heals(tmp_path, fault, planted, lab_password):
    backup, link, outside = planted
    fault("old-log", "host")
    fault("dead-tuples", "postgres")
    run = run_checks(tmp_path, *SELECTION)
    assert run.failed == {"test_logs_rotated", "test_postgres_dead_tuples"}, run.output[-3000:]
    assert f"remediation: {render(['rotate-logs'])} " in run.messages["test_logs_rotated"]
    assert f"remediation: {render(['vacuum-analyze'])} " in run.messages["test_postgres_dead_tuples"]

    logs_before, stats_before = files(), table_stats(lab_password)
    for helper in ("rotate-logs", "vacuum-analyze"):
        dry = remediation(helper, tmp_path=tmp_path)
        assert dry.returncode == 0 and "dry run: nothing changed" in dry.stdout, dry.stdout + dry.stderr
    assert files() == logs_before and table_stats(lab_password) == stats_before
    assert not (tmp_path / "audit.log").exists()

    for helper in ("rotate-logs", "vacuum-analyze"):
        done = remediation(helper, "--apply", tmp_path=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "public.lab_bloat: dead rows 18000 -> 0" in done.stdout
    assert (LOGS / "planted-old.log.gz").exists() and not (LOGS / "planted-old.log").exists()
    assert not (LOGS / "planted-ancient.log").exists()
    assert backup.read_bytes() == b"planted backup, must survive" and link.is_symlink() and outside.exists()
    assert run_checks(tmp_path, *SELECTION).failed == set()


@pytest.mark.lab_fault
def test_remediate_shows_before_and_after_and_ends_green(tmp_path, fault, planted):
    backup, link, _ = planted
    fault("old-log", "host")
    fault("dead-tuples", "postgres")
    run = run_checks(tmp_path, *SELECTION, "--remediate", env={"NAUTILUS_AUDIT_LOG": str(tmp_path / "audit.log")})
    assert run.failed == {"test_logs_rotated", "test_postgres_dead_tuples"}  # the first pass, as it was
    assert f"ran: {render(['rotate-logs'])}" in run.output and "--apply -> exit 0" in run.output
    assert "test_logs_rotated: failed -> passed" in run.output, run.output[-3000:]
    assert "test_postgres_dead_tuples: failed -> passed" in run.output
    assert run.returncode == 0, run.output[-3000:]
    assert backup.read_bytes() == b"planted backup, must survive" and link.is_symlink()
