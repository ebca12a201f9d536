"""The one order every acting helper follows (remediation/sequence.py), on its own: confirm, bundle, act, audit."""
from __future__ import annotations

import json

import pytest

from observation.inventory import load_inventory
from remediation import sequence
from remediation.context import Context
from remediation.errors import RemediationError
from remediation.targets import Target

ENV = {"NAUTILUS_POSTGRES_PASSWORD": "pw"}


@pytest.fixture
def steps():
    return []


@pytest.fixture
def ctx(tmp_path, steps, monkeypatch):
    def bundle(c, helper, target, folder):
        steps.append("bundle")
        return folder
    monkeypatch.setattr(sequence, "write_bundle", bundle)
    return Context(load_inventory(None, environ=ENV), out=steps.append, audit_path=tmp_path / "audit.log",
                   confirm=lambda what, plan: steps.append(("confirm", what, plan)))


def audit_lines(ctx) -> list[dict]:
    return [json.loads(line) for line in ctx.audit_path.read_text().splitlines()]


def test_confirm_then_bundle_then_act_then_audit(ctx, steps, tmp_path):
    action = sequence.Action("restart-engine", "nautilus-risk-engine", ["1. restart it"], confirm="nautilus-risk-engine",
                             question="restart-engine will restart it:",
                             bundle=(Target("nautilus-risk-engine", "local"), tmp_path / "b"))

    def act(bundle):
        steps.append(("act", bundle))
        return "it is running", 0
    assert sequence.carry_out(ctx, action, act) == 0
    assert steps == [("confirm", "nautilus-risk-engine", ["restart-engine will restart it:", "1. restart it"]),
                     "bundle", f"diagnostics saved to {tmp_path / 'b'}", ("act", tmp_path / "b"), "it is running",
                     f"audit: one line appended to {ctx.audit_path}"]
    line, = audit_lines(ctx)
    assert (line["helper"], line["target"], line["outcome"], line["bundle"]) == (
        "restart-engine", "nautilus-risk-engine", "it is running", str(tmp_path / "b"))


def test_a_safe_action_asks_nothing_and_writes_no_bundle(ctx, steps):
    assert sequence.carry_out(ctx, sequence.Action("rotate-logs", "/logs", ["1. gzip"]), lambda b: ("done", 1)) == 1
    assert steps == ["done", f"audit: one line appended to {ctx.audit_path}"]
    assert audit_lines(ctx)[0]["bundle"] is None


def test_no_confirmation_means_no_bundle_no_action_no_audit(ctx, steps):
    def refuse(what, plan):
        raise RemediationError("nobody confirmed")
    ctx.confirm = refuse
    action = sequence.Action("restart-redis", "nautilus-redis", ["1. restart"], confirm="nautilus-redis")
    with pytest.raises(RemediationError):
        sequence.carry_out(ctx, action, lambda b: steps.append("acted"))
    assert steps == [] and not ctx.audit_path.exists()


def test_a_failure_is_audited_then_raised(ctx, steps):
    def act(bundle):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        sequence.carry_out(ctx, sequence.Action("rotate-logs", "/logs", []), act)
    assert audit_lines(ctx)[0]["outcome"] == "failed: KeyboardInterrupt"


def test_an_unwritable_audit_log_stops_before_anything(ctx, steps, tmp_path):
    ctx.audit_path = tmp_path  # a directory
    with pytest.raises(RemediationError, match="cannot write the audit log"):
        sequence.carry_out(ctx, sequence.Action("x", "y", [], confirm="y"), lambda b: steps.append("acted"))
    assert steps == []


def test_the_dry_run_prints_the_plan_and_says_who_will_be_asked(ctx, steps):
    assert sequence.dry_run(ctx, "restart-redis nautilus-redis", ["1. restart"], sequence.asks("nautilus-redis")) == 0
    assert steps == ["dry run of restart-redis nautilus-redis; with --apply it would:", "1. restart",
                     "dry run: nothing changed; add --apply to do it (you will be asked to type nautilus-redis)"]
