"""The alert rules recipe: its promtool unit tests pass, and it reads only series the suite writes."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fixtures.record import SEVERITIES, TIERS, CheckRecord
from reports import machine
from reports.verdict import root_causes

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes"
RULES = RECIPES / "nautilus-checks.rules.yml"
RULE_TESTS = RECIPES / "nautilus-checks.rules.test.yml"
# Added by Prometheus when it scrapes node_exporter, never by the suite.
SCRAPE_LABELS = {"instance", "job"}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    # `make test` puts promtool beside the venv's python (taken out of Debian's package, no service installed).
    promtool = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
    if promtool is None:
        # A skip would let a broken rule file through CI unnoticed, so the missing tool is a failure.
        pytest.fail("promtool is not on PATH: `make test-tools` puts Debian's into .venv/bin", pytrace=False)
    return subprocess.run([promtool, *args], cwd=RECIPES, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    checked = _promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def record(check_id: str, target_id: str, outcome: str, severity: str = "critical", **extra) -> CheckRecord:
    return CheckRecord(f"checks/x.py::test_x[{target_id}]", check_id, "t", f"engine:{target_id}", target_id, outcome,
                       severity, engine=target_id, host="local", tiers=("daily",), subject=f"engine:{target_id}",
                       **extra)


def written_series() -> dict[str, set[str]]:
    """Every sample name both textfiles write, with its label names, for a run with one of each kind of series."""
    records = [
        record("container-running", "risk", "failed", finding="[risk] not running"),
        record("engine-health-answers", "risk", "blocked", blocked_by="container-running[risk]"),
        record("container-running", "ml", "maintenance", note="upgrade, until 12:00"),
        record("container-running", "analytics", "passed"),
    ]
    text = machine.checks_textfile(records, root_causes(records), tier="daily") + machine.run_textfile(
        tier="daily", finished=2000.0, duration_s=1.5, exit_code=1, last_success=1000.0)
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_rules_read_only_series_and_labels_the_textfiles_write():
    written = written_series()
    every_label = set().union(*written.values()) | SCRAPE_LABELS
    for rule in rules():
        expr = rule["expr"]
        selectors = re.findall(r"\b(nautilus_[a-z_]+)\s*(\{[^}]*\})?", expr)
        assert selectors, rule["alert"]
        for name, matchers in selectors:
            assert name in written, f"{rule['alert']}: {name} is not a series the suite writes"
            for label, value in re.findall(r'(\w+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"', matchers):
                assert label in written[name], f"{rule['alert']}: {name} has no label {label}"
                assert label != "tier" or value in TIERS, f"{rule['alert']}: no tier {value}"
                assert label != "severity" or value in SEVERITIES, f"{rule['alert']}: no severity {value}"
        for grouping in re.findall(r"\b(?:on|by|without|ignoring)\s*\(([^)]*)\)", expr):
            unknown = {label.strip() for label in grouping.split(",")} - every_label - {""}
            assert not unknown, f"{rule['alert']}: matches on {unknown}, which no series has"
        templated = set(re.findall(r"\$labels\.(\w+)", " ".join(rule.get("annotations", {}).values())))
        assert templated <= every_label, f"{rule['alert']}: annotations name {templated - every_label}"


def test_no_rule_alerts_per_check():
    """Alerting per failing, blocked or resting check is the storm the root cause series exists to prevent; those
    series may only take something away (after `unless`), so one cause is not counted twice."""
    for rule in rules():
        assert "nautilus_check_" not in rule["expr"].split("unless")[0], rule["alert"]
