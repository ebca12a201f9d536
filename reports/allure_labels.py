"""What Allure shows of a check: labels, a guide link, short parameters, attachments, environment, categories.

Labels come from the check's `@check(...)` spec, so they exist before a test
starts; what the check saw (evidence, measured values, the fix) is added
when its report is made. The categories are data: `reports.allure_report`
writes them into Allure 3's config, and this plugin writes the Allure 2 form
(categories.json) beside the results.

>>> slug("Diagnostic Procedures > Risk Engine (8200) Diagnostics")
'risk-engine-8200-diagnostics'
>>> guide_link("troubleshooting-guide.md", "Common Issues & Solutions > Port Conflicts")
'troubleshooting-guide.md#port-conflicts'
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import allure
import pytest

from fixtures.plugin import TARGET_PARAMS, engine_of, target_id, target_of
from fixtures.spec import spec_of
from fixtures.state import CHECK_RUN, INVENTORY, REDACTOR, SELECTED_ENGINES
from observation.inventory import Engine, Inventory
from observation.redact import Redactor
from observation.targets import ContainerTarget, PortTarget, ServiceTarget

from .plugin import run_name
from .run import parse_stem

DEFAULT_GUIDE_URL = "troubleshooting-guide.md"
FAILING = ["failed", "broken"]  # a check that cannot observe raises, which Allure calls broken

# Allure 3 categories (allurerc `categories`): the first rule that matches a failure takes it. Consequences
# and blindness come first, so "engine down" holds only root causes. Check ids and areas are kept in step
# with the registry by tests/unit/test_allure_labels.py.


def one_of(*words: str) -> str:
    return "^(" + "|".join(words) + ")$"


DOWN = ("container-exists", "container-running", "container-healthy", "container-not-restart-looping",
        "container-not-oom-killed", "port-open")
CATEGORIES = [
    {"name": "Blocked by a root cause", "matchers": {"statuses": FAILING, "labels": {"blocked_by": "."}},
     "groupBy": [{"label": "blocked_by"}], "groupByMessage": False},
    {"name": "Cannot observe", "matchers": {"statuses": FAILING, "trace": r"\] cannot observe: "}},
    {"name": "Engine down", "matchers": {"statuses": FAILING, "labels": {
        "engine": ".", "check": one_of(*DOWN, "engine-health-answers", "engine-status-healthy")}},
     "groupBy": [{"label": "engine"}], "groupByMessage": False},
    {"name": "Engine slow", "matchers": {"statuses": FAILING, "labels": {
        "engine": ".", "check": one_of("engine-health-latency", "analytics-calculation-time", "risk-check-time",
                                       "log-slow-operations")}},
     "groupBy": [{"label": "engine"}]},
    {"name": "Infrastructure down",
     "matchers": [{"statuses": FAILING, "labels": {"area": one_of("infrastructure")}},
                  {"statuses": FAILING, "labels": {"check": one_of(*DOWN)}}]},
    {"name": "Maintenance due",
     "matchers": [{"statuses": FAILING, "labels": {"area": one_of("maintenance")}},
                  {"statuses": FAILING, "labels": {
                      "check": one_of("postgres-vacuum-recent", "postgres-dead-tuples", "docker-disk-reclaimable")}}]},
    {"name": "Known error in the logs", "matchers": {"statuses": FAILING, "labels": {"check": one_of("log-known-errors")}}},
]


def categories_allure2() -> list[dict]:
    """The rules Allure 2's categories.json can express: it matches messages and traces, never labels.

    >>> [c["name"] for c in categories_allure2()]
    ['Blocked by a root cause', 'Cannot observe']
    """
    return [{"name": "Blocked by a root cause", "matchedStatuses": FAILING, "traceRegex": r"(?s).*\] blocked by .*"},
            {"name": "Cannot observe", "matchedStatuses": FAILING, "traceRegex": r"(?s).*\] cannot observe: .*"}]


def slug(section: str) -> str:
    """GitHub's heading anchor of the section's last part: lower case, punctuation dropped, spaces to hyphens."""
    heading = section.rsplit(">", 1)[-1].strip().lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def guide_link(guide_url: str, section: str) -> str:
    return f"{guide_url}#{slug(section)}"


def short_name(target) -> str:
    """How a target reads as an Allure parameter (its repr is the whole inventory entry).

    >>> short_name(Engine(name="risk", port=8200)), short_name(PortTarget(8200, "local", "127.0.0.1", "risk-engine"))
    ('risk', '8200')
    """
    if isinstance(target, PortTarget):
        return str(target.port)
    if isinstance(target, (Engine, ContainerTarget, ServiceTarget)):
        return target.name
    return str(target)


class Shown:
    """A value Allure prints as given: allure-pytest shows repr(), which quotes strings."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def environment_lines(inventory: Inventory, *, tier: str, run_id: str | None, inventory_path: str | None,
                      selected: list[str] | None, redactor: Redactor) -> list[str]:
    """environment.properties of a run: what was checked, through the run's redactor."""
    engines = inventory.engine_list(selected)
    values = {
        "tier": tier,
        "run_id": run_id or "",
        "inventory": inventory_path or "(the guide's topology)",
        "docker_hosts": ", ".join(f"{h.name}={h.url}" for h in inventory.hosts if h.docker) or "none",
        "engine_hosts": ", ".join(sorted({e.host for e in engines})),
        "engines": str(len(engines)),
        "engines_selected": ", ".join(selected) if selected else "all",
    }
    return [f"{key}={_property(redactor.redact_text(value))}" for key, value in values.items()]


def _property(value: str) -> str:
    """A .properties value: a backslash starts an escape there, and a line break would start a new key."""
    return value.replace("\\", "\\\\").replace("\n", " ")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("nautilus").addoption(
        "--guide-url", metavar="URL", default=DEFAULT_GUIDE_URL,
        help=f"the troubleshooting guide that Allure links each check's section to (default: {DEFAULT_GUIDE_URL})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Labels and the guide link from the check's spec, so they are there before a test starts."""
    guide_url = config.getoption("guide_url")
    for item in items:
        spec = spec_of(item)
        if spec is None:
            continue
        item.add_marker(allure.severity(allure.severity_level(spec.severity)))  # the suite uses Allure's words
        item.add_marker(allure.label("check", spec.id))
        item.add_marker(allure.label("area", spec.area))
        for tier in spec.tiers:
            item.add_marker(allure.label("tier", tier))
        item.add_marker(allure.label("guide_section", spec.guide))
        item.add_marker(allure.link(guide_link(guide_url, spec.guide), name=f"guide: {spec.guide}"))
        engine = engine_of(target_of(item))
        if engine:
            item.add_marker(allure.label("engine", engine))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Short target parameters. Set before allure-pytest adds the long ones, which it then leaves alone; Allure 3
    keys a test's history on these values, so they name the target (with its host when there are several)."""
    if spec_of(item) is None or not hasattr(item, "callspec"):
        return
    host = target_id(item).partition("@")[2]
    for name in TARGET_PARAMS:
        if name in item.callspec.params:
            value = short_name(item.callspec.params[name])
            allure.dynamic.parameter(name, Shown(f"{value}@{host}" if host else value))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _describe(report)
    return report


def _describe(report) -> None:
    props = dict(report.user_properties)
    if "check_id" not in props:
        return
    # The fix goes in the description too: it shows on the test page without opening an attachment.
    lines = [props.get("title", "")]
    if props.get("blocked_by"):
        lines.append(f"Blocked by `{props['blocked_by']}`: fix that first.")
    elif props.get("maintenance"):
        lines.append(f"Not judged: {props['maintenance']}")
    elif props.get("deploy"):
        lines.append(f"Deploy: {props['deploy']} (information, not a failure)")
    elif report.failed and props.get("remediation"):
        lines.append(f"Remediation: `{props['remediation']}`")
    allure.dynamic.description("\n\n".join(line for line in lines if line))
    for key, value in report.user_properties:
        if key.startswith("measured:"):
            # Excluded from the history key: a latency that changes is the same test.
            allure.dynamic.parameter(key.split(":", 1)[1], Shown(value), excluded=True)
        elif key.startswith("evidence:"):
            allure.attach(value, name=f"evidence: {key.split(':', 1)[1]}", attachment_type=allure.attachment_type.JSON)
    if props.get("blocked_by"):
        allure.dynamic.label("blocked_by", props["blocked_by"])
    elif props.get("maintenance") or props.get("deploy"):
        allure.dynamic.label("information", "maintenance" if props.get("maintenance") else "deploy")
    elif report.failed and props.get("remediation"):
        allure.attach(props["remediation"], name="remediation", attachment_type=allure.attachment_type.TEXT)


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
    results = config.option.allure_report_dir
    if not results or hasattr(config, "workerinput") or not config.stash.get(CHECK_RUN, False):
        return
    out = Path(results)
    out.mkdir(parents=True, exist_ok=True)
    tier, run_id = parse_stem(out.name) or (None, None)
    lines = environment_lines(config.stash[INVENTORY], tier=tier or run_name(config.option.markexpr), run_id=run_id,
                              inventory_path=config.getoption("inventory") or os.environ.get("NAUTILUS_INVENTORY"),
                              selected=config.stash.get(SELECTED_ENGINES, None),
                              redactor=config.stash.get(REDACTOR, None) or Redactor())
    (out / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "categories.json").write_text(json.dumps(categories_allure2(), indent=2) + "\n", encoding="utf-8")
