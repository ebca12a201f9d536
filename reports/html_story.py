"""The pytest-html report tells the run's story before its table.

At the top: what was checked (tier, inventory, hosts), when and for how long,
failures by severity, the root causes with their one fix, a table of engines
and services by state, and an inline SVG chart of engine response times and
memory. Each row then shows its severity (failures only), its measured
values and its remediation once; a failure's detail shows the finding and the
evidence inline, escaped, so a hostile log line or health body stays text.
"""
from __future__ import annotations

import html
import json
import time

import pytest

from fixtures.state import CHECK_RUN, GATE, INVENTORY, REDACTOR

from .allure_labels import DEFAULT_GUIDE_URL, guide_link
from .plugin import run_state
from .results import FAILING, CheckResult, counts, deploy_line, failing_by_severity, in_maintenance
from .svg_chart import bar_chart

# (check id, measured name) of the figures the state table and the chart show
RESPONSE = ("engine-health-latency", "response_ms")
MEMORY = ("container-memory-usage", "memory_percent")
CPU = ("container-cpu-usage", "cpu_percent")
SERVICES = ("redis", "postgres", "prometheus", "grafana", "backend", "frontend")


# pytest-html's row hooks receive only the report, so the run's guide URL is kept here at configure.
_guide_url = DEFAULT_GUIDE_URL


def pytest_configure(config: pytest.Config) -> None:
    global _guide_url
    _guide_url = config.getoption("guide_url", DEFAULT_GUIDE_URL) or DEFAULT_GUIDE_URL


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def _checked(config: pytest.Config) -> bool:
    return config.stash.get(CHECK_RUN, False) and run_state(config) is not None


def pytest_metadata(metadata: dict, config: pytest.Config) -> None:
    """The environment table names the target, not the runner's Python and plugins."""
    if not _checked(config):
        return
    inventory, state = config.stash[INVENTORY], run_state(config)
    redactor = config.stash[REDACTOR]
    metadata.clear()
    metadata.update({
        "Tier": state.files.tier, "Run id": state.files.run_id,
        "Inventory": config.getoption("inventory") or "built-in topology of the guide",
        "Target hosts": ", ".join(f"{h.name} ({h.address}, Docker at {h.url})" for h in inventory.hosts),
        "Engines": str(len(inventory.engines)),
        "Started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(state.started)),
    })
    for key, value in list(metadata.items()):
        metadata[key] = redactor.redact_text(value)


def pytest_html_report_title(report) -> None:
    report.title = "Nautilus health checks"


def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    config = session.config
    if not _checked(config):
        return
    state = run_state(config)
    gate = config.stash.get(GATE, None)
    prefix.append(story(state.results, tier=state.files.tier, run_id=state.files.run_id,
                        started=state.started, duration_s=time.time() - state.started,
                        guide_url=config.getoption("guide_url"), notes=[gate.line()] if gate else []))


def story(results: list[CheckResult], *, tier: str, run_id: str, started: float, duration_s: float,
          guide_url: str = DEFAULT_GUIDE_URL, notes: list[str] = ()) -> str:
    found = counts(results)
    roots = [r for r in results if r.is_root_cause]
    verdict = "all checks passed" if not roots and not found["blocked"] else \
        f"{len(roots)} root cause{'s' * (len(roots) != 1)}, {found['blocked']} blocked by them"
    head = (f"<div class='nautilus-story'><p class='nautilus-headline {'bad' if roots else 'good'}'>"
            f"{esc(tier)} run {esc(run_id)}: {esc(verdict)}</p>"
            f"<p>Started {esc(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started)))}, "
            f"took {duration_s:.1f} s. " + ", ".join(f"{n} {esc(k.replace('_', ' '))}" for k, n in found.items())
            + ".</p>")
    return (head + _severity_table(results) + _root_causes(roots, guide_url) + _information(results, notes)
            + _state_table(results) + _chart(results) + "</div>")


def _information(results: list[CheckResult], notes: list[str]) -> str:
    """The deploy gate's wait, maintenance windows and the deploy: said once each, apart from every failure."""
    lines = list(notes) + [f"{window} ({count} check{'s' * (count != 1)} not judged)"
             for window, count in in_maintenance(results).items()]
    deployed = deploy_line(results)
    if deployed:
        lines.append(deployed)
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f"<h3>Information: neither fails the run nor pages</h3><ul class='nautilus-information'>{items}</ul>"


def _severity_table(results: list[CheckResult]) -> str:
    cells = "".join(f"<td class='sev-{esc(k)}'>{esc(k)}: {n}</td>" for k, n in failing_by_severity(results).items())
    return f"<table class='nautilus-severity'><tr><th>failing by severity</th>{cells}</tr></table>"


def _guide(section: str, guide_url: str) -> str:
    return f"<a href='{esc(guide_link(guide_url, section))}'>{esc(section)}</a>"


def _root_causes(roots: list[CheckResult], guide_url: str) -> str:
    if not roots:
        return ""
    items = "".join(
        f"<li><span class='sev-{esc(r.severity)}'>{esc(r.severity)}</span> <b>{esc(r.label)}</b>: {esc(r.cause)}"
        f"<br>fix: <code>{esc(r.remediation or 'none named: see the guide section')}</code>"
        f" <span class='guide'>guide: {_guide(r.guide, guide_url)}</span></li>" for r in roots)
    return f"<h3>Root causes: fix these first</h3><ol class='nautilus-roots'>{items}</ol>"


def _state_table(results: list[CheckResult]) -> str:
    rows = []
    for name, mine in _by_subject(results).items():
        found = counts(mine)
        bad = found["failed"] + found["cannot_observe"]
        state = "maintenance" if found["maintenance"] else \
            "down" if any(r.check_id == "container-running" and r.outcome in FAILING for r in mine) else \
            "failing" if bad else "blocked" if found["blocked"] else "deployed" if found["deploy"] else "ok"
        figures = {(r.check_id, k): v for r in mine if r.outcome != "blocked" for k, v in r.measured.items()}
        rows.append(f"<tr class='state-{state}'><td>{esc(name)}</td><td>{state}</td><td>{found['passed']}</td>"
                    f"<td>{bad}</td><td>{found['blocked']}</td><td>{esc(figures.get(RESPONSE, ''))}</td>"
                    f"<td>{esc(figures.get(MEMORY, ''))}</td><td>{esc(figures.get(CPU, ''))}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Engines and services</h3><table class='nautilus-state'><tr><th>engine / service</th><th>state</th>"
            "<th>passed</th><th>failed</th><th>blocked</th><th>response ms</th><th>memory %</th><th>CPU %</th></tr>"
            + "".join(rows) + "</table>")


def subject_of(r: CheckResult) -> str | None:
    """The engine or service a result concerns; None for host-wide checks.

    >>> subject_of(CheckResult("n", "redis-ping", "", "redis-ping", None, "infrastructure", "", "", "", "passed", 0))
    'redis'
    >>> subject_of(CheckResult("n", "container-running", "", "nautilus-postgres", None, "containers", "", "", "", "passed", 0))
    'postgres'
    """
    if r.engine:
        return r.engine
    if r.target and r.target != r.check_id:
        name = r.target.removeprefix("nautilus-")
        return name if name in SERVICES else None
    head = r.check_id.split("-", 1)[0]
    return head if head in SERVICES else None


def _by_subject(results: list[CheckResult]) -> dict[str, list[CheckResult]]:
    """Results per engine, then per service, in a stable order."""
    grouped: dict[str, list[CheckResult]] = {}
    for r in results:
        subject = subject_of(r)
        if subject:
            grouped.setdefault(subject, []).append(r)
    return dict(sorted(grouped.items(), key=lambda kv: (kv[0] in SERVICES, kv[0])))


def _chart(results: list[CheckResult]) -> str:
    def series(figure: tuple[str, str]) -> list[tuple[str, float]]:
        check_id, name = figure
        out = []
        for r in results:
            # a blocked check's figure measures the outage (a refused connection), not the engine
            if r.check_id == check_id and name in r.measured and subject_of(r) and r.outcome != "blocked":
                try:
                    out.append((subject_of(r), float(r.measured[name])))
                except ValueError:
                    continue
        return sorted(out)
    response, memory = series(RESPONSE), series(MEMORY)
    parts = [bar_chart("Engine /health response (ms)", response, unit="ms") if response else "",
             bar_chart("Container memory (% of limit)", memory, unit="%", limit=100) if memory else ""]
    return "<div class='nautilus-charts'>" + "".join(parts) + "</div>" if any(parts) else ""


def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(2, "<th>Severity</th>")
    cells.insert(3, "<th>Measured</th>")
    cells.insert(4, "<th>Remediation</th>")


def pytest_html_results_table_row(report, cells: list) -> None:
    props = dict(getattr(report, "user_properties", []))
    if "check_id" not in props:
        for position in (2, 3, 4):
            cells.insert(position, "<td></td>")
        return
    result = CheckResult.from_properties(report.nodeid, report.outcome, report.duration, report.user_properties)
    failing = result.outcome in FAILING
    fix = f"blocked by {result.blocked_by}: fix that first" if result.blocked_by else result.remediation or result.note
    measured = ", ".join(f"{k} {v}" for k, v in result.measured.items())
    cells.insert(2, f"<td class='sev-{esc(result.severity)}'>{esc(result.severity) if failing else ''}</td>")
    cells.insert(3, f"<td class='measured'>{esc(measured)}</td>")
    cells.insert(4, f"<td><code>{esc(fix)}</code></td>")


def pytest_html_results_table_html(report, data: list) -> None:
    """A failure's detail: the finding, the guide section and the evidence, inline and escaped."""
    props = dict(getattr(report, "user_properties", []))
    if "check_id" not in props or report.when != "call" and report.passed:
        return
    result = CheckResult.from_properties(report.nodeid, report.outcome, report.duration, report.user_properties,
                                         str(report.longrepr) if report.longrepr else "")
    data.clear()
    if result.outcome in ("maintenance", "deploy"):
        data.append(f"<div class='nautilus-detail'>{esc(result.outcome)}: {esc(result.note)}</div>")
        return
    if result.outcome in ("passed", "skipped"):
        if result.outcome == "skipped":
            data.append(f"<div class='nautilus-detail'>skipped: {esc(str(report.longrepr or ''))}</div>")
        return
    parts = [f"<p class='finding'>{esc(result.cause)}</p>",
             f"<p>{esc(result.title)}. Guide: {_guide(result.guide, _guide_url)}. "
             f"Tiers: {esc(result.tiers)}.</p>"]
    for name, text in result.evidence.items():
        parts.append(f"<details open><summary>evidence: {esc(name)}</summary><pre class='evidence'>{esc(_pretty(text))}"
                     "</pre></details>")
    data.append("<div class='nautilus-detail'>" + "".join(parts) + "</div>")


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=True)
    except ValueError:
        return text
