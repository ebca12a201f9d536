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
from reports.allure_report import (NAME_LIMIT, Unavailable, config_text, latest_results, offline, properties,
                                   report_name, run_verdict, verdict_first)


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
    assert body["plugins"]["awesome"]["options"]["reportName"] == body["name"] == "Nautilus health: daily"
    # Allure refuses keys it does not know: there is no analytics switch to set here (see ANALYTICS)
    assert set(body) == {"name", "output", "historyPath", "appendHistory", "categories", "plugins"}


def test_report_name_leads_with_the_verdict_and_stays_a_heading():
    verdict = ("1 root cause (critical first), 17 checks blocked by them; "
               "container-running[nautilus-risk-engine] (critical)")
    assert report_name("daily", "20261125-101500-a1b2c3", verdict) == f"Nautilus health daily: {verdict}"
    assert report_name("weekly", "", None) == "Nautilus health: weekly"
    long = report_name("daily", "x", "3 root causes; " + "a finding\n" * 100)
    assert len(long) == NAME_LIMIT and long.endswith("\u2026") and "\n" not in long


def test_the_verdict_is_read_back_as_the_run_wrote_it(tmp_path):
    facts = RunFacts(inventory_path="C:\\nautilus\\inventory.yaml", hosts=(), engines=(), redactor=Redactor([]))
    verdict = "1 root cause (critical first); disk-free[C:\\data] (critical): 2 % free\nsecond line"
    lines = environment_lines(facts, tier="daily", run_id="r", verdict=verdict)
    (tmp_path / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_verdict(tmp_path) == verdict.replace("\n", " ")
    assert properties((tmp_path / "environment.properties").read_text())["inventory"] == "C:\\nautilus\\inventory.yaml"
    (tmp_path / "environment.properties").write_text("tier=daily\n", encoding="utf-8")
    assert run_verdict(tmp_path) is None and run_verdict(tmp_path / "missing") is None


def test_properties_read_as_java_reads_them():
    text = ("  # comment\n! also a comment\n\nverdict : two\\\n    lines\nkey\\ with\\ space=v\\u00e9\n"
            "a\\=b=c\nempty\n")
    assert properties(text) == {"verdict": "twolines", "key with space": "v\u00e9", "a=b": "c", "empty": ""}


# The analytics block exactly as Allure 3.18's awesome plugin writes it into index.html.
ALLURE_PAGE = """<!DOCTYPE html><html dir="ltr" lang="en"><head><meta charset="utf-8"><title> r </title>
<link rel="icon" href="data:image/svg+xml;base64,PHN2Zz4="><link rel="stylesheet" href="data:text/css;base64,Ym9keXt9">
</head><body><div id="app"></div><a href="https://allurereport.org">Allure Report</a>
<script src="data:text/javascript;base64,Ly8gYXBw"></script>
    <script async src="https://www.googletagmanager.com/gtag/js?id=G-LNDJ3J7WT0"></script>
    <script>
        window.dataLayer = window.dataLayer || [];
        function gtag(){dataLayer.push(arguments);}
        gtag('js', new Date());
        gtag('config', 'G-LNDJ3J7WT0', {
          "report": "awesome",
          "allureVersion": "3.18.0",
          "reportUuid": "0eaef207-4d60-4ee2-8c23-e9004ffa7042",
          "single_file": "true"
        });
    </script>
    <script async>window.allureReportDataReady = true;</script>
</body></html>"""


def test_offline_cuts_allures_analytics_and_keeps_the_rest():
    page = offline(ALLURE_PAGE)
    assert "googletagmanager" not in page and "gtag" not in page and "dataLayer" not in page
    assert page.count("<script") == 2 and "window.allureReportDataReady = true" in page
    assert '<a href="https://allurereport.org">' in page  # a link is followed only when clicked
    assert offline(page) == page  # a page without the tag (a later Allure honouring the opt-out) is left alone


@pytest.mark.parametrize("markup", ['<link rel="stylesheet" href="https://fonts.example/inter.css">',
                                    "<script src=//cdn.example/a.js></script>",
                                    "<img alt='' SRC='http://tracker.example/p.gif'>",
                                    '<iframe src="https://example.org/"></iframe>'])
def test_offline_refuses_a_page_that_would_still_load_from_a_host(markup):
    with pytest.raises(RuntimeError, match="would load"):
        offline(ALLURE_PAGE.replace("</body>", markup + "</body>"))


def test_the_page_opens_at_its_verdict_before_allures_scripts_run():
    page = verdict_first(offline(ALLURE_PAGE))
    assert page.count("data-tree-scroll-container") == 1
    assert page.index("data-tree-scroll-container") < page.index("</head>") < page.index('<script src="data:')


def test_latest_results_is_the_newest_run_of_the_tier(tmp_path):
    for name in ("daily-20261125-101500-a1b2c3-allure", "daily-20261125-111500-000000-allure",
                 "daily-or-weekly-20261126-000000-ffffff-allure", "emergency-20261127-000000-ffffff-allure"):
        (tmp_path / name).mkdir()
    assert latest_results(tmp_path, "daily").name == "daily-20261125-111500-000000-allure"
    with pytest.raises(Unavailable, match="no Allure results of tier 'weekly'"):
        latest_results(tmp_path, "weekly")
