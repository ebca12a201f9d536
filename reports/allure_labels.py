"""What Allure shows of a check, from its record: title, status, labels, guide link, parameters, attachments,
environment and categories.

Every label is set when the check's report is made (`allure.dynamic`), from the
`CheckRecord`; nothing is parsed from text. A blocked check and one in
maintenance are skips for Allure as for pytest (fixtures/judgement.py makes
them so before the report), with a `blocked_by` or `information` label. The
categories are data: `reports.allure_report` writes them into Allure 3's
config, and this plugin writes the Allure 2 form (categories.json) beside the
results.

>>> slug("Diagnostic Procedures > Risk Engine (8200) Diagnostics")
'risk-engine-8200-diagnostics'
>>> guide_link("troubleshooting-guide.md", "Common Issues & Solutions > Port Conflicts")
'troubleshooting-guide.md#port-conflicts'
>>> guide_link(None, "Common Issues & Solutions > Port Conflicts") is None
True
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import allure
import pytest

from fixtures.record import CHECK_RUN, RUN_FACTS, CheckRecord, RunFacts, record_of

from .plugin import run_name
from .run import parse_stem

FAILING = ["failed", "broken"]  # a check that cannot observe raises, which Allure calls broken

# Allure 3 categories (allurerc `categories`): the first rule that matches a result takes it. Check ids and areas
# are kept in step with the registry by tests/unit/test_allure_labels.py.


def one_of(*words: str) -> str:
    return "^(" + "|".join(words) + ")$"


DOWN = ("container-exists", "container-running", "container-healthy", "container-not-restart-looping",
        "container-not-oom-killed", "port-open")
CATEGORIES = [
    {"name": "Blocked by a root cause", "matchers": {"statuses": ["skipped"], "labels": {"blocked_by": "."}},
     "groupBy": [{"label": "blocked_by"}], "groupByMessage": False},
    {"name": "In maintenance", "matchers": {"statuses": ["skipped"], "labels": {"information": "^maintenance$"}}},
    {"name": "Engine down", "matchers": {"statuses": FAILING, "labels": {
        "engine": ".", "check": one_of(*DOWN, "engine-health-answers", "engine-status-healthy")}},
     "groupBy": [{"label": "engine"}], "groupByMessage": False},
    {"name": "Infrastructure down",
     "matchers": [{"statuses": FAILING, "labels": {"area": one_of("infrastructure")}},
                  {"statuses": FAILING, "labels": {"check": one_of(*DOWN)}}]},
    {"name": "Cannot observe", "matchers": {"statuses": ["broken"]}},
    {"name": "Engine slow", "matchers": {"statuses": FAILING, "labels": {
        "engine": ".", "check": one_of("engine-health-latency", "analytics-calculation-time", "risk-check-time",
                                       "log-slow-operations")}},
     "groupBy": [{"label": "engine"}]},
    {"name": "Known error in the logs", "matchers": {"statuses": FAILING, "labels": {"check": one_of("log-known-errors")}}},
    {"name": "Maintenance due",
     "matchers": [{"statuses": FAILING, "labels": {"area": one_of("maintenance")}},
                  {"statuses": FAILING, "labels": {
                      "check": one_of("postgres-vacuum-recent", "postgres-dead-tuples", "docker-disk-reclaimable")}}]},
    {"name": "Host resources", "matchers": {"statuses": FAILING, "labels": {"area": one_of("host", "resources")}}},
    {"name": "Database", "matchers": {"statuses": FAILING, "labels": {"area": one_of("postgres")}}},
    {"name": "Redis and the message bus", "matchers": {"statuses": FAILING, "labels": {
        "area": one_of("redis", "messagebus")}}},
    {"name": "Container set-up and restarts", "matchers": {"statuses": FAILING, "labels": {"area": one_of("containers")}}},
    # Last: every other failure is a root cause too, and never lands in Allure's "Product errors".
    {"name": "Other failing checks", "matchers": {"statuses": FAILING}},
]


def categories_allure2() -> list[dict]:
    """The rules Allure 2's categories.json can express: it matches messages and traces, never labels.

    >>> [c["name"] for c in categories_allure2()]
    ['Blocked by a root cause', 'Cannot observe', 'Other failing checks']
    """
    return [{"name": "Blocked by a root cause", "matchedStatuses": ["skipped"], "messageRegex": r"(?s).*\] blocked by .*"},
            {"name": "Cannot observe", "matchedStatuses": ["broken"]},
            {"name": "Other failing checks", "matchedStatuses": ["failed"]}]


def slug(section: str) -> str:
    """GitHub's heading anchor of the section's last part: lower case, punctuation dropped, spaces to hyphens."""
    heading = section.rsplit(">", 1)[-1].strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def guide_link(guide_url: str | None, section: str) -> str | None:
    """The section's anchor in the guide; None without a guide URL (no link that leads nowhere)."""
    return f"{guide_url}#{slug(section)}" if guide_url else None


class Shown:
    """A value Allure prints as given: allure-pytest shows repr(), which quotes strings."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def fenced(text: str) -> str:
    """A Markdown code block that no backtick in the text can close early.

    >>> fenced("run `x`")
    '```\\nrun `x`\\n```'
    """
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}\n{text}\n{fence}"


def environment_lines(facts: RunFacts, *, tier: str, run_id: str | None, verdict: str) -> list[str]:
    """environment.properties of a run: the verdict first, then what was checked, through the run's redactor."""
    values = {
        "verdict": verdict,
        "tier": tier,
        "run_id": run_id or "",
        "inventory": facts.inventory_path or "(the guide's topology)",
        "docker_hosts": ", ".join(f"{name}={docker}" for name, _, docker in facts.hosts) or "none",
        "engines": str(len(facts.engines)),
        "engines_checked": ", ".join(facts.engines),
        **{label.lower().replace(" ", "_"): value for label, value in facts.system()},
    }
    return [f"{key}={_property(facts.redactor.redact_text(value))}" for key, value in values.items()]


def _property(value: str) -> str:
    """A .properties value: a backslash starts an escape there, and a line break would start a new key."""
    return value.replace("\\", "\\\\").replace("\n", " ")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("nautilus").addoption(
        "--guide-url", metavar="URL", default=None,
        help="where the troubleshooting guide is published: the HTML and Allure reports link each check's section "
             "there (default: no links, the section is named)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Short target parameters. Set before allure-pytest adds the long ones (an inventory entry's repr), which it
    then leaves alone; Allure 3 keys a test's history on these values, so they name the target."""
    for name, value in getattr(getattr(item, "callspec", None), "params", {}).items():
        short = getattr(value, "port", None) or getattr(value, "name", None) or value
        host = getattr(value, "host", "")
        allure.dynamic.parameter(name, Shown(str(short)))
        if host and item.config.stash.get(RUN_FACTS, None) and len(item.config.stash[RUN_FACTS].hosts) > 1:
            allure.dynamic.parameter("host", Shown(host))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    record = record_of(report)
    if record is not None:
        describe(record, item.config.getoption("guide_url"))
    return report


def describe(record: CheckRecord, guide_url: str | None) -> None:
    """Title, labels, link, description and attachments of one check's Allure result."""
    allure.dynamic.title(f"{record.title} [{record.target_id or record.check_id}]")
    allure.dynamic.severity(allure.severity_level(record.severity))  # the suite uses Allure's words
    for name, value in (("check", record.check_id), ("area", record.area), ("guide_section", record.guide),
                        ("engine", record.engine), ("host", record.host), ("target", record.target)):
        if value:
            allure.dynamic.label(name, value)
    for tier in record.tiers:
        allure.dynamic.label("tier", tier)
    link = guide_link(guide_url, record.guide)
    if link:
        allure.dynamic.link(link, name=f"guide: {record.guide}")
    lines = [record.title]
    if record.outcome == "blocked":
        allure.dynamic.label("blocked_by", record.blocked_by)
        lines.append(f"Blocked by {record.blocked_by}: fix that first.")
    elif record.outcome in ("maintenance", "deploy"):
        allure.dynamic.label("information", record.outcome)
        lines.append(f"{record.outcome.capitalize()}: {record.note} (information, not a failure)")
    elif record.is_root_cause:
        lines.append(f"Root cause: {record.headline}")
        if record.fix:
            lines.append("Fix:\n\n" + fenced(record.fix.line()))
            allure.attach(record.fix.line(), name="fix", attachment_type=allure.attachment_type.TEXT)
    allure.dynamic.description("\n\n".join(lines))
    for name, value in record.measured.items():
        # Excluded from the history key: a latency that changes is the same test.
        allure.dynamic.parameter(name, Shown(value), excluded=True)
    for name, value in record.evidence.items():
        allure.attach(value, name=f"evidence: {name}", attachment_type=allure.attachment_type.JSON)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    """No phantom teardowns. From pytest 9.1 every fixture carries pytest's own finalizer (it calls
    pytest_fixture_post_finalizer); allure-pytest wraps it like a teardown, but that finalizer closes the
    fixture's Allure container before the wrapper can close the teardown, which is written out with no
    status ("unknown"), once per fixture on every test (allure-python issue #918). Outermost (tryfirst), this
    runs after allure-pytest wrapped the finalizers and unwraps pytest's own again; the fixtures' real
    teardowns stay reported."""
    result = yield
    finalizers = getattr(fixturedef, "_finalizers", [])
    for index, finalizer in enumerate(finalizers):
        inner = getattr(finalizer, "_fixture_function", None)  # allure_commons.fixture keeps what it wraps
        if inner is not None and getattr(inner, "__module__", "").startswith("_pytest."):
            finalizers[index] = inner
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    """environment.properties and categories.json, written once, by the xdist controller (or the only process)."""
    config = session.config
    results = getattr(config.option, "allure_report_dir", None)
    if not results or hasattr(config, "workerinput") or not config.stash.get(CHECK_RUN, False):
        return
    from .plugin import run_state
    from .verdict import root_causes, verdict_line
    state = run_state(config)
    out = Path(results)
    out.mkdir(parents=True, exist_ok=True)
    tier, run_id = parse_stem(out.name) or (None, None)
    records = state.records if state else []
    causes = root_causes(records)
    verdict = verdict_line(causes, records) + "".join(f"; {c.headline()}" for c in causes[:3])
    lines = environment_lines(config.stash[RUN_FACTS], tier=tier or run_name(config.option.markexpr), run_id=run_id,
                              verdict=verdict)
    (out / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "categories.json").write_text(json.dumps(categories_allure2(), indent=2) + "\n", encoding="utf-8")
