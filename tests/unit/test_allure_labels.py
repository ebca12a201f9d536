"""The Allure side of the reports, as pure logic: anchors, short parameters, categories, environment, config."""
from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest

import checks
from fixtures.spec import REGISTRY
from observation.inventory import DockerHost, Engine, Inventory
from observation.redact import Redactor
from observation.targets import ContainerTarget, PortTarget, ServiceTarget
from reports import allure_labels
from reports.allure_labels import (
    CATEGORIES,
    categories_allure2,
    environment_lines,
    guide_link,
    short_name,
    slug,
)
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


def test_guide_link_joins_url_and_anchor():
    assert guide_link("https://wiki.example/guide.md", "A > Port Conflicts") == "https://wiki.example/guide.md#port-conflicts"


def test_short_names_of_every_target_kind():
    assert short_name(Engine(name="risk", port=8200)) == "risk"
    assert short_name(ContainerTarget("nautilus-risk-engine", "local", "risk")) == "nautilus-risk-engine"
    assert short_name(PortTarget(8200, "local", "127.0.0.1", "risk-engine")) == "8200"
    assert short_name(ServiceTarget("backend", "local", "http://127.0.0.1:8001/health", None)) == "backend"
    assert repr(allure_labels.Shown("8200")) == "8200"  # allure-pytest shows repr(): no quotes, no dataclass dump


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
            assert set(matcher["statuses"]) <= {"failed", "broken"}
            labels = matcher.get("labels", {})
            if "check" in labels:
                named += re.fullmatch(r"\^\((.*)\)\$", labels["check"]).group(1).split("|")
            if "area" in labels:
                assert set(re.fullmatch(r"\^\((.*)\)\$", labels["area"]).group(1).split("|")) <= areas
    assert named and set(named) <= set(registry), sorted(set(named) - set(registry))
    assert [rule["name"] for rule in CATEGORIES] == [
        "Blocked by a root cause", "Cannot observe", "Engine down", "Engine slow", "Infrastructure down",
        "Maintenance due", "Known error in the logs"]


def test_category_patterns_match_the_suites_own_messages():
    # The messages fixtures/plugin.py writes for blocked and unobservable checks.
    blocked = "[risk-engine] blocked by container-running[nautilus-risk-engine]: fix that first; this check saw: x"
    unseen = "[risk-engine] cannot observe: redis at 127.0.0.1:6379 refused the connection"
    cannot = next(rule for rule in CATEGORIES if rule["name"] == "Cannot observe")
    assert re.search(cannot["matchers"]["trace"], unseen) and not re.search(cannot["matchers"]["trace"], blocked)
    java_like = {c["name"]: re.compile(c["traceRegex"]) for c in categories_allure2()}  # Allure 2 matches whole text
    assert java_like["Blocked by a root cause"].fullmatch(blocked + "\nmore")
    assert java_like["Cannot observe"].fullmatch("trace\n" + unseen)
    assert not java_like["Cannot observe"].fullmatch(blocked)


def test_environment_lines_are_redacted_and_name_the_target():
    inventory = Inventory(hosts=[DockerHost(name="trading-1", url="ssh://ops:hunter22@10.0.0.5")],
                          engines={"risk": Engine(name="risk", port=8200), "ml": Engine(name="ml", port=8400)})
    lines = environment_lines(inventory, tier="daily", run_id="20261125-101500-a1b2c3",
                              inventory_path="/etc/nautilus/inventory.yaml", selected=None,
                              redactor=Redactor(["hunter22"]))
    text = "\n".join(lines)
    assert "hunter22" not in text
    assert "tier=daily" in lines and "run_id=20261125-101500-a1b2c3" in lines and "engines=2" in lines
    assert "engine_hosts=trading-1" in lines and "inventory=/etc/nautilus/inventory.yaml" in lines
    assert all(re.fullmatch(r"[a-z_]+=[^\n]*", line) for line in lines)


def test_environment_selected_engines_count():
    inventory = Inventory(engines={"risk": Engine(name="risk", port=8200), "ml": Engine(name="ml", port=8400)})
    lines = environment_lines(inventory, tier="daily", run_id=None, inventory_path=None, selected=["risk"],
                              redactor=Redactor())
    assert "engines=1" in lines and "engines_selected=risk" in lines and "inventory=(the guide's topology)" in lines


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
