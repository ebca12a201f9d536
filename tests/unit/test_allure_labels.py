"""The Allure side of the reports, as pure logic: anchors, short parameters, categories, environment, config."""
from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest

import checks
from fixtures.spec import REGISTRY
from fixtures.record import RunFacts
from observation.redact import Redactor
from reports import allure_labels
from reports.allure_labels import CATEGORIES, categories_allure2, environment_lines, fenced, guide_link, slug
from reports.allure_report import Unavailable, config_text, latest_results


@pytest.mark.parametrize("section, anchor", [
    ("Diagnostic Procedures > Full System Health Check", "full-system-health-check"),
    ("Common Issues & Solutions > Container Won't Start", "container-wont-start"),
    ("Diagnostic Procedures > Risk Engine (8200) Diagnostics", "risk-engine-8200-diagnostics"),
    ("Emergency Procedures > Complete System Restart (Emergency)", "complete-system-restart-emergency"),
    ("Common Issues & Solutions", "common-issues--solutions"),  # GitHub keeps both hyphens around a dropped "&"
    ("Knowledge Base > Engine-Specific Errors", "engine-specific-errors"),
])
def test_slug_is_githubs_heading_anchor(section, anchor):
    assert slug(section) == anchor


def test_guide_link_joins_url_and_anchor_and_is_none_without_a_url():
    assert guide_link("https://wiki.example/guide.md", "A > Port Conflicts") == "https://wiki.example/guide.md#port-conflicts"
    assert guide_link(None, "A > Port Conflicts") is None  # no link to a guide that is not shipped


def test_shown_values_print_without_quotes():
    assert repr(allure_labels.Shown("8200")) == "8200"  # allure-pytest shows repr(): no quotes, no dataclass dump


@pytest.mark.parametrize("text", ["python -m remediation x", "run `docker ps`", "a ``` b", "````"])
def test_a_fix_is_one_fenced_block_whatever_backticks_it_holds(text):
    block = fenced(text)
    fence = block.split("\n", 1)[0]
    assert set(fence) == {"`"} and block.endswith("\n" + fence) and block[len(fence) + 1:-len(fence) - 1] == text
    assert fence not in text


def _all_checks():
    for module in pkgutil.iter_modules(checks.__path__):
        if module.name.startswith("test_"):
            importlib.import_module(f"checks.{module.name}")
    return REGISTRY


def test_categories_name_only_real_checks_and_areas():
    registry = _all_checks()
    areas = {spec.area for spec in registry.values()}
    named = []
    for rule in CATEGORIES:
        matchers = rule["matchers"] if isinstance(rule["matchers"], list) else [rule["matchers"]]
        for matcher in matchers:
            assert set(matcher["statuses"]) <= {"failed", "broken", "skipped"}
            labels = matcher.get("labels", {})
            if "check" in labels:
                named += re.fullmatch(r"\^\((.*)\)\$", labels["check"]).group(1).split("|")
            if "area" in labels:
                assert set(re.fullmatch(r"\^\((.*)\)\$", labels["area"]).group(1).split("|")) <= areas
    assert named and set(named) <= set(registry), sorted(set(named) - set(registry))


def test_every_failure_has_a_category_and_skips_only_blocked_or_maintenance():
    """Allure files a failure no category takes under "Product errors": the last rule takes every one."""
    last = CATEGORIES[-1]["matchers"]
    assert set(last["statuses"]) == {"failed", "broken"} and "labels" not in last
    skips = [r for r in CATEGORIES for m in (r["matchers"] if isinstance(r["matchers"], list) else [r["matchers"]])
             if "skipped" in m["statuses"]]
    assert [r["name"] for r in skips] == ["Blocked by a root cause", "In maintenance"]


def test_allure2_categories_match_the_suites_own_blocked_message():
    blocked = "[risk-engine] blocked by container-running[nautilus-risk-engine]: fix that first; this check saw: x"
    java_like = {c["name"]: re.compile(c["messageRegex"]) for c in categories_allure2() if "messageRegex" in c}
    assert java_like["Blocked by a root cause"].fullmatch(blocked)


def test_environment_lines_are_redacted_and_lead_with_the_verdict():
    facts = RunFacts(inventory_path="/etc/nautilus/inventory.yaml",
                     hosts=(("trading-1", "10.0.0.5", "ssh://ops:hunter22@10.0.0.5 (from hosts[0].url)"),),
                     engines=("risk", "ml"), redactor=Redactor(["hunter22"]))
    lines = environment_lines(facts, tier="daily", run_id="20261125-101500-a1b2c3", verdict="1 root cause")
    text = "\n".join(lines)
    assert "hunter22" not in text and lines[0] == "verdict=1 root cause"
    assert "tier=daily" in lines and "run_id=20261125-101500-a1b2c3" in lines and "engines=2" in lines
    assert "engines_checked=risk, ml" in lines and "inventory=/etc/nautilus/inventory.yaml" in lines
    assert all(re.fullmatch(r"[a-z_]+=[^\n]*", line) for line in lines)


def test_config_is_a_module_of_plain_data(tmp_path):
    text = config_text(name="Nautilus health: daily", output=tmp_path / "r", history=tmp_path / "h.jsonl")
    body = json.loads(text.split("export default ", 1)[1].rstrip().rstrip(";"))
    assert body["categories"]["rules"] == CATEGORIES
    assert body["historyPath"] == str(tmp_path / "h.jsonl")
    assert body["plugins"]["awesome"]["options"]["singleFile"] is True


def test_latest_results_is_the_newest_run_of_the_tier(tmp_path):
    for name in ("daily-20261125-101500-a1b2c3-allure", "daily-20261125-111500-000000-allure",
                 "daily-or-weekly-20261126-000000-ffffff-allure", "emergency-20261127-000000-ffffff-allure"):
        (tmp_path / name).mkdir()
    assert latest_results(tmp_path, "daily").name == "daily-20261125-111500-000000-allure"
    with pytest.raises(Unavailable, match="no Allure results of tier 'weekly'"):
        latest_results(tmp_path, "weekly")
