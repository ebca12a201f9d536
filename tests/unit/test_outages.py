"""An engine down across runs for over an hour is the guide's Level 3 trigger, from the runs' own record."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from reports import outages
from reports.escalation import Failure

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_down_since_is_the_first_run_that_saw_it_down_and_ends_when_it_answers(tmp_path):
    assert outages.record(tmp_path, {"risk", "ml"}, {"risk"}, T0) == {"risk": T0}
    assert outages.record(tmp_path, {"risk", "ml"}, {"risk", "ml"}, T0 + timedelta(minutes=30)) == {
        "risk": T0, "ml": T0 + timedelta(minutes=30)}
    assert outages.record(tmp_path, {"risk", "ml"}, {"ml"}, T0 + timedelta(minutes=40)) == {
        "ml": T0 + timedelta(minutes=30)}
    assert outages.record(tmp_path, {"risk"}, {"risk"}, T0 + timedelta(minutes=50)) == {
        "risk": T0 + timedelta(minutes=50)}  # back down after answering: a new outage


def test_a_run_that_did_not_check_an_engine_keeps_what_earlier_runs_said(tmp_path):
    outages.record(tmp_path, {"risk"}, {"risk"}, T0)
    outages.record(tmp_path, set(), set(), T0 + timedelta(minutes=90))  # e.g. a `-k redis` rerun
    since = outages.record(tmp_path, {"risk"}, {"risk"}, T0 + timedelta(minutes=95))
    assert since == {"risk": T0}
    found = outages.outage_escalation(since, T0 + timedelta(minutes=95))
    assert found.level == 3 and "risk down since 09:00 UTC (95 min)" in found.why


def test_under_an_hour_or_a_damaged_file_is_no_trigger(tmp_path):
    (tmp_path / outages.FILE).write_text("{not json")
    since = outages.record(tmp_path, {"risk"}, {"risk"}, T0)
    assert since == {"risk": T0} and json.loads((tmp_path / outages.FILE).read_text()) == {"risk": T0.isoformat()}
    assert outages.outage_escalation(since, T0 + timedelta(minutes=59)) is None


def test_only_running_and_answering_root_causes_are_down():
    failures = [Failure("port-open", "ports", "critical", "risk"), Failure("engine-bus-idle", "messagebus", "critical", "ml"),
                Failure("redis-ping", "infrastructure", "critical", None)]
    assert outages.down_engines(failures) == {"risk"}
