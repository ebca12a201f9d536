"""Maintenance windows: opened, listed, closed and expired; the `maintenance` helper's command line."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from observation.maintenance_windows import Window, WindowBook, WindowError, parse_duration
from remediation.cli import main

ENV = {"NAUTILUS_POSTGRES_PASSWORD": "pw-unit"}


def at(hours: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat(timespec="seconds")


def test_a_window_past_its_end_is_over_and_dropped_at_the_next_write(tmp_path):
    windows = WindowBook(tmp_path)
    windows.open(Window("engine:risk", "index rebuild", "maintenance", at(-3), at(-1)))
    windows.open(Window("engine:ml", "retraining", "maintenance", at(-1), at(2)))
    assert list(windows.active()) == ["engine:ml"]
    assert set(json.loads((tmp_path / "maintenance.json").read_text())) == {"engine:ml"}


def test_a_window_without_an_end_lasts_until_it_is_closed(tmp_path):
    windows = WindowBook(tmp_path)
    windows.open(Window("engine:factor", "isolated", "isolate-engine", at(-100), None))
    assert list(windows.active()) == ["engine:factor"]
    assert windows.close("engine:factor").reason == "isolated"
    assert windows.close("engine:factor") is None and windows.active() == {}


def test_an_unreadable_file_is_said_in_one_line(tmp_path):
    (tmp_path / "maintenance.json").write_text("{not json")
    with pytest.raises(WindowError, match=r"maintenance file .* is unreadable \(JSONDecodeError\); fix or remove it"):
        WindowBook(tmp_path).active()


@pytest.mark.parametrize("text", ["", "2", "2x", "h", "0m", "-1h"])
def test_durations_that_are_not_refused_in_one_line(text):
    with pytest.raises(WindowError, match="--for"):
        parse_duration(text)


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    return path


def helper(*argv: str, audit=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {**ENV, "NAUTILUS_AUDIT_LOG": str(audit)} if audit else ENV
    code = main(["maintenance", *argv], stdout=out, stderr=err, stdin=io.StringIO(), environ=env)
    return code, out.getvalue(), err.getvalue()


def test_open_is_a_dry_run_until_applied_then_listed_then_closed(inventory, tmp_path):
    audit_log = tmp_path / "audit.log"
    code, out, _ = helper("risk", "--for", "2h", "--reason", "index rebuild", f"--inventory={inventory}")
    assert code == 0 and "dry run of maintenance risk" in out and "nothing changed" in out
    assert not (tmp_path / "state" / "maintenance.json").exists()

    code, out, _ = helper("nautilus-risk-engine", "--for", "2h", "--reason", "index rebuild", "--apply",
                          f"--inventory={inventory}", audit=audit_log)
    assert code == 0 and "opened: risk in maintenance: index rebuild, until " in out
    window = WindowBook(tmp_path / "state").active()["engine:risk"]
    assert timedelta(minutes=119) < datetime.fromisoformat(window.until) - datetime.now(timezone.utc) <= timedelta(hours=2)

    code, out, _ = helper(f"--inventory={inventory}")
    assert code == 0 and "maintenance windows open now" in out and "risk: in maintenance: index rebuild" in out

    code, out, _ = helper("risk", "--end", "--apply", f"--inventory={inventory}", audit=audit_log)
    assert code == 0 and "closed the window of risk" in out
    assert WindowBook(tmp_path / "state").active() == {}
    audit = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert [(a["helper"], a["target"]) for a in audit] == [("maintenance", "engine:risk"),
                                                            ("maintenance --end", "engine:risk")]


@pytest.mark.parametrize("argv,message", [
    (("risk", "--for", "2h"), "needs both --for"),
    (("risk", "--reason", "x"), "needs both --for"),
    (("risk", "--for", "8d", "--reason", "x"), "at most 7 days"),
    (("nothing-here", "--for", "1h", "--reason", "x"), "unknown target 'nothing-here'"),
    (("risk", "--end", "--reason", "x"), "takes no --for or --reason"),
    (("--for", "1h"), "name the engine or service"),
])
def test_bad_requests_are_refused_in_one_line(inventory, argv, message):
    code, out, err = helper(*argv, f"--inventory={inventory}")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_window_options_belong_to_maintenance_only(inventory):
    err = io.StringIO()
    assert main(["restart-engine", "risk", "--for", "1h", f"--inventory={inventory}"], stderr=err,
                stdout=io.StringIO(), environ=ENV) == 2
    assert "--for, --reason and --end belong to the maintenance helper" in err.getvalue()
