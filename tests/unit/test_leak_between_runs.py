"""The daily leak check: this run's memory sample against the previous run's, kept in the state folder."""
from __future__ import annotations

import json
import time

import pytest

from checks import test_leaks as checks
from fixtures.verdict import Verdict
from observation.inventory import load_inventory
from observation.memory_history import MIB, MemoryHistory, Remembered
from observation.stats import Usage

INVENTORY = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
RISK = INVENTORY.engines["risk"]
ATTRS = {"Id": "c1", "State": {"StartedAt": "2026-01-01T09:00:00Z"}}


class States:
    def __init__(self, attrs: dict):
        self.attrs = attrs

    def get(self, name: str, host: str) -> dict:
        return self.attrs


def usage_of(mib: float) -> dict:
    sample = Usage.of({"memory_stats": {"usage": int(mib * MIB), "limit": 256 * MIB}}, taken_at=time.monotonic())
    return {(RISK.host, RISK.container): sample}


def history_with(tmp_path, mib: float, seconds_ago: float, attrs: dict = ATTRS) -> MemoryHistory:
    (tmp_path / "memory.json").write_text(json.dumps({f"{RISK.host}/{RISK.container}": {
        "id": attrs["Id"], "started_at": attrs["State"]["StartedAt"], "used_bytes": int(mib * MIB),
        "at": time.time() - seconds_ago}}))
    return MemoryHistory(tmp_path)


def run(history, now_mib: float, attrs: dict = ATTRS, verdict=None):
    checks.test_engine_memory_growth_between_runs(RISK, usage_of(now_mib), States(attrs), history, INVENTORY,
                                                  verdict or Verdict("x"))


def test_a_leak_since_the_previous_run_fails_with_no_wait(tmp_path):
    history = history_with(tmp_path, 40, seconds_ago=30)  # 5 MB/s for 30 s: 150 MB
    with pytest.raises(pytest.fail.Exception, match=r"expected growth at most 10 MB/min, or under 50 MB in all, since "
                                                   r"the previous run; saw \+150 MiB in 0\.5 min \((299\.\d|300(\.\d)?) MB/min; 40 -> 190 MiB\)"):
        run(history, 190)


def test_jitter_over_a_short_gap_and_slow_growth_over_hours_pass(tmp_path):
    run(history_with(tmp_path, 100, seconds_ago=20), 110)  # 30 MB/min, but 10 MB in all
    run(history_with(tmp_path, 100, seconds_ago=3 * 3600), 190)  # 90 MB in 3 h: 0.5 MB/min


def test_first_run_and_a_restarted_container_are_skipped_and_recorded(tmp_path):
    history = MemoryHistory(tmp_path)
    with pytest.raises(pytest.skip.Exception, match="first run: no earlier sample"):
        run(history, 100)
    history.save()
    saved = json.loads((tmp_path / "memory.json").read_text())[f"{RISK.host}/{RISK.container}"]
    assert saved["id"] == "c1" and saved["used_bytes"] == 100 * MIB and abs(saved["at"] - time.time()) < 5
    restarted = {"Id": "c1", "State": {"StartedAt": "2026-01-01T10:00:00Z"}}
    with pytest.raises(pytest.skip.Exception, match="restarted or recreated since the previous run"):
        run(history_with(tmp_path, 40, seconds_ago=30), 190, attrs=restarted)


def test_an_unreadable_state_file_cannot_observe(tmp_path):
    (tmp_path / "memory.json").write_text("{broken")
    with pytest.raises(Exception, match="unreadable"):
        run(MemoryHistory(tmp_path), 100)


def test_growth_keeps_the_other_runs_entries(tmp_path):
    (tmp_path / "memory.json").write_text(json.dumps({"local/other": {"id": "x", "started_at": "", "used_bytes": 1,
                                                                      "at": 1.0}}))
    history = MemoryHistory(tmp_path)
    history.record("local", "nautilus-risk-engine", Remembered("c1", "", 5, 2.0))
    history.save()
    assert set(json.loads((tmp_path / "memory.json").read_text())) == {"local/other", "local/nautilus-risk-engine"}
