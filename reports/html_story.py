"""The pytest-html report tells the incident on its first screen, before its table.

From the top: the verdict; the root causes ordered by severity and blast
radius, each with its one fix (and its dry-run note), what else failed on the
same subject, and the checks it blocks; the command that reruns only the root
causes; the escalation level; what changed since the tier's previous complete
run; then deploys, maintenance and the deploy gate's wait; then the engines and
services by state, a chart, and what was checked (the environment). The tab
title carries the tier and the verdict. Each row of the table names its check
by title and target; a failure's detail shows the finding and the evidence
inline, escaped, so a hostile log line or health body stays text.
"""
from __future__ import annotations

import html
import json
import time

import pytest

from fixtures.record import CHECK_RUN, FAILING, GATE, RUN_FACTS, CheckRecord, RunFacts, record_of

from .allure_labels import guide_link
from .plugin import escalation_of, rerun_command, run_state
from .svg_chart import bar_chart
from .verdict import Cause, Change, causes_by_severity, counts, deploy_line, in_maintenance, verdict_line

# (check id, measured name) of the figures the state table and the chart show
RESPONSE = ("engine-health-latency", "response_ms")
MEMORY = ("container-memory-usage", "memory_percent")
CPU = ("container-cpu-usage", "cpu_percent")
DOWN = ("container-exists", "container-running", "port-open", "engine-health-answers", "service-health-answers")
GUIDE_URL = pytest.StashKey["str | None"]()


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def _checked(config: pytest.Config) -> bool:
    return config.stash.get(CHECK_RUN, False) and run_state(config) is not None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[GUIDE_URL] = config.getoption("guide_url", None)


@pytest.hookimpl(optionalhook=True)  # pytest-html's: absent with -p no:html
def pytest_metadata(metadata: dict, config: pytest.Config) -> None:
    """pytest-html's environment table would sit above the verdict: the story shows what was checked below it."""
    if _checked(config):
        metadata.clear()


def _guide(section: str, guide_url: str | None) -> str:
    link = guide_link(guide_url, section)
    return f"<a href='{esc(link)}'>{esc(section)}</a>" if link else esc(section)


@pytest.hookimpl(optionalhook=True)  # pytest-html's: absent with -p no:html
def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    config = session.config
    if not _checked(config):
        return
    state = run_state(config)
    causes, change = state.verdict()
    gate = config.stash.get(GATE, None)
    tier = state.files.tier
    _set_title(config, f"{tier}: {verdict_line(causes, state.records)}")
    prefix.append(story(state.records, causes, change, tier=tier, run_id=state.files.run_id, started=state.started,
                        duration_s=time.time() - state.started, guide_url=config.stash[GUIDE_URL],
                        rerun=rerun_command(config, causes), escalation=escalation_of(config, causes),
                        notes=[gate.line()] if gate else [], facts=config.stash[RUN_FACTS], partial=state.partial))


def _set_title(config: pytest.Config, title: str) -> None:
    """pytest-html asks for the title when the session starts, before any verdict; its report data is reachable
    only through its plugin object, so the title is set there once the verdict is known."""
    from pytest_html.basereport import BaseReport
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, BaseReport):
            plugin._report.title = title


def story(records: list[CheckRecord], causes: list[Cause], change: Change, *, tier: str, run_id: str,
          started: float, duration_s: float, guide_url: str | None = None, rerun: str | None = None,
          escalation: str | None = None, notes: list[str] = (), facts: RunFacts | None = None,
          partial: str | None = None) -> str:
    found = counts(records)
    bad = bool(causes)
    head = (f"<div class='nautilus-story'><p class='nautilus-headline {'bad' if bad else 'good'}'>"
            f"{esc(tier)}: {esc(verdict_line(causes, records))}</p>"
            + (f"<p class='nautilus-partial'>A partial run ({esc(partial)}): it does not speak for the whole "
               "tier.</p>" if partial else ""))
    parts = [head, _root_causes(causes, records, guide_url)]
    if rerun:
        parts.append(f"<p class='nautilus-rerun'>Rerun only the root causes: <code>{esc(rerun)}</code></p>")
    if escalation:
        parts.append(f"<p class='nautilus-escalation'>{esc(escalation)}</p>")
    if not partial:
        parts.append(f"<h3>Since the previous {esc(tier)} run</h3><ul class='nautilus-change'>"
                     + "".join(f"<li>{esc(line)}</li>" for line in change.lines()) + "</ul>")
    parts += [_information(records, list(notes)),
              f"<p>Run {esc(run_id)}, started {esc(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started)))}, "
              f"took {duration_s:.1f} s: " + ", ".join(f"{n} {esc(k.replace('_', ' '))}" for k, n in found.items() if n)
              + ".</p>",
              _severity_table(causes), _state_table(records), _chart(records), _environment(facts, tier, run_id),
              "</div>"]
    return "".join(parts)


def _root_causes(causes: list[Cause], records: list[CheckRecord], guide_url: str | None) -> str:
    if not causes:
        return ""
    blocked: dict[str, list[CheckRecord]] = {}
    for r in records:
        if r.outcome == "blocked":
            blocked.setdefault(r.blocked_by, []).append(r)
    items = []
    for cause in causes:
        main = cause.main
        where = f" on {len(cause.targets)} targets: {', '.join(cause.targets)}" if cause.others else ""
        also = "".join(f"<li>also failing on it: <b>{esc(r.label)}</b>: {esc(_unprefixed(r))}</li>" for r in cause.also)
        mine = [b for label in cause.labels for b in blocked.get(label, [])]
        blocks = (f"<details class='nautilus-blocked'><summary>blocks {len(mine)} check{'s' * (len(mine) != 1)}"
                  "</summary><ul>" + "".join(f"<li>{esc(b.title)} [{esc(b.target_id or b.check_id)}]</li>"
                                             for b in mine) + "</ul></details>") if mine else ""
        items.append(
            f"<li><span class='sev-{esc(main.severity)}'>{esc(main.severity)}</span> <b>{esc(main.title)}</b> "
            f"[{esc(main.target_id or main.check_id)}]{esc(where)}: {esc(_unprefixed(main))}"
            + (f"<ul>{also}</ul>" if also else "")
            + f"<br>fix: <code class='nautilus-fix'>{esc(cause.fix_line())}</code>"
            + f" <span class='guide'>guide: {_guide(main.guide, guide_url)}</span>{blocks}</li>")
    return f"<h3>Root causes: fix these first</h3><ol class='nautilus-roots'>{''.join(items)}</ol>"


def _unprefixed(record: CheckRecord) -> str:
    """The finding without its leading `[target]`, which the line already names.

    >>> _unprefixed(CheckRecord("n", "c", "t", "port:8200", "port-8200", "failed", "critical", finding="[port-8200] refused"))
    'refused'
    """
    return record.headline.removeprefix(f"[{record.target_id or record.check_id}] ")


def _information(records: list[CheckRecord], notes: list[str]) -> str:
    """The deploy gate's wait, maintenance windows and the deploy: said once each, apart from every failure."""
    lines = notes + [f"{window} ({count} check{'s' * (count != 1)} not judged)"
                     for window, count in in_maintenance(records).items()]
    deployed = deploy_line(records)
    if deployed:
        lines.append(deployed)
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f"<h3>Information: neither fails the run nor pages</h3><ul class='nautilus-information'>{items}</ul>"


def _severity_table(causes: list[Cause]) -> str:
    cells = "".join(f"<td class='sev-{esc(k)}'>{esc(k)}: {n}</td>" for k, n in causes_by_severity(causes).items())
    return f"<table class='nautilus-severity'><tr><th>root causes by severity</th>{cells}</tr></table>"


def subject_name(r: CheckRecord) -> str | None:
    """The engine or service a record concerns; None for host-wide checks.

    >>> subject_name(CheckRecord("n", "container-running", "", "container:nautilus-postgres", "nautilus-postgres",
    ...                          "passed", "critical", subject="service:postgres"))
    'postgres'
    """
    return r.subject.split(":", 1)[1] if r.subject and r.subject.split(":", 1)[0] in ("engine", "service") else None


def state_of(mine: list[CheckRecord]) -> str:
    """A subject's state from its records: what was seen, and "unknown" for what could not be.

    >>> passed = CheckRecord("n", "port-open", "", "port:8200", "p", "passed", "critical")
    >>> state_of([passed]), state_of([passed, CheckRecord("n", "container-running", "", "", "c", "blocked", "critical")])
    ('ok', 'up; Docker state unknown')
    """
    found = counts(mine)
    if found["maintenance"]:
        return "maintenance"
    if any(r.check_id in DOWN and r.outcome == "failed" for r in mine):
        return "down"
    if found["failed"]:
        return "failing"
    if found["blocked"] or found["cannot_observe"]:
        judged = [r for r in mine if r.outcome in ("passed", "deploy")]
        if any(r.check_id in DOWN for r in judged):
            return "up; Docker state unknown" if any(r.check_id.startswith("container-") for r in mine
                                                       if r.outcome in ("blocked", "cannot_observe")) else "unknown"
        return "unknown"
    return "deployed" if found["deploy"] else "ok"


def _state_table(records: list[CheckRecord]) -> str:
    grouped: dict[str, list[CheckRecord]] = {}
    for r in records:
        name = subject_name(r)
        if name:
            grouped.setdefault(r.subject, []).append(r)
    rows = []
    for subject, mine in sorted(grouped.items(), key=lambda kv: (not kv[0].startswith("engine:"), kv[0])):
        found = counts(mine)
        state = state_of(mine)
        figures = {(r.check_id, k): v for r in mine if r.outcome in ("passed", "deploy", "failed")
                   for k, v in r.measured.items()}
        # "unknown" only where something could not be looked at; a figure the subject never has is "-".
        missing = "unknown" if found["blocked"] or found["cannot_observe"] else "-"
        rows.append(f"<tr class='state-{esc(state.split(';')[0])}'><td>{esc(subject.split(':', 1)[1])}</td>"
                    f"<td>{esc(state)}</td><td>{found['passed'] + found['deploy']}</td>"
                    f"<td>{found['failed'] + found['cannot_observe']}</td><td>{found['blocked']}</td>"
                    f"<td>{esc(figures.get(RESPONSE, missing))}</td><td>{esc(figures.get(MEMORY, missing))}</td>"
                    f"<td>{esc(figures.get(CPU, missing))}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Engines and services</h3><table class='nautilus-state'><tr><th>engine / service</th><th>state</th>"
            "<th>passed</th><th>failed</th><th>blocked</th><th>response ms</th><th>memory %</th><th>CPU %</th></tr>"
            + "".join(rows) + "</table>")


def _chart(records: list[CheckRecord]) -> str:
    def series(figure: tuple[str, str]) -> list[tuple[str, float]]:
        check_id, name = figure
        out = []
        for r in records:
            # a blocked check's figure measures the outage (a refused connection), not the engine
            if r.check_id == check_id and name in r.measured and subject_name(r) and \
                    r.outcome not in ("blocked", "cannot_observe"):
                try:
                    out.append((subject_name(r), float(r.measured[name])))
                except ValueError:
                    continue
        return sorted(out)
    response, memory = series(RESPONSE), series(MEMORY)
    parts = [bar_chart("Engine /health response (ms)", response, unit="ms") if response else "",
             bar_chart("Container memory (% of limit)", memory, unit="%", limit=100) if memory else ""]
    return "<div class='nautilus-charts'>" + "".join(parts) + "</div>" if any(parts) else ""


def _environment(facts: RunFacts | None, tier: str, run_id: str) -> str:
    if facts is None:
        return ""
    rows = {"Tier": tier, "Run id": run_id,
            "Inventory": facts.inventory_path or "built-in topology of the guide",
            "Target hosts": "; ".join(f"{name} ({address}, Docker: {docker})" for name, address, docker in facts.hosts),
            "Engines": f"{len(facts.engines)}: {', '.join(facts.engines)}",
            **dict(facts.system())}
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(facts.redactor.redact_text(v))}</td></tr>" for k, v in rows.items())
    return f"<h3>What was checked</h3><table class='nautilus-environment'>{cells}</table>"


@pytest.hookimpl(optionalhook=True)  # pytest-html's: absent with -p no:html
def pytest_html_results_table_header(cells: list) -> None:
    cells.insert(2, "<th>Severity</th>")
    cells.insert(3, "<th>Measured</th>")
    cells.insert(4, "<th>Fix or cause</th>")


@pytest.hookimpl(optionalhook=True)  # pytest-html's: absent with -p no:html
def pytest_html_results_table_row(report, cells: list) -> None:
    record = record_of(report)
    if record is None:
        for position in (2, 3, 4):
            cells.insert(position, "<td></td>")
        return
    # The row names its check and target; the node id stays, smaller, for -k and copying.
    cells[1] = (f'<td class="col-testId">{esc(record.title)} [{esc(record.target_id or record.check_id)}]'
                f'<br><span class="nodeid">{esc(report.nodeid)}</span></td>')
    failing = record.outcome in FAILING
    fix = (f"blocked by {record.blocked_by}: fix that first" if record.blocked_by
           else record.fix.line() if record.fix else record.note)
    measured = ", ".join(f"{k} {v}" for k, v in record.measured.items())
    cells.insert(2, f"<td class='sev-{esc(record.severity)}'>{esc(record.severity) if failing else ''}</td>")
    cells.insert(3, f"<td class='measured'>{esc(measured)}</td>")
    cells.insert(4, f"<td><code>{esc(fix)}</code></td>")


@pytest.hookimpl(optionalhook=True)  # pytest-html's: absent with -p no:html
def pytest_html_results_table_html(report, data: list) -> None:
    """A failure's detail: the finding, the guide section and the evidence, inline and escaped."""
    record = record_of(report)
    if record is None:
        return
    data.clear()
    if record.outcome in ("passed", "deploy", "maintenance", "skipped"):
        text = record.note or record.finding
        if text:
            data.append(f"<div class='nautilus-detail'>{esc(record.outcome)}: {esc(text)}</div>")
        return
    parts = [f"<p class='finding'>{esc(record.finding)}</p>",
             f"<p>{esc(record.title)}. Guide: {esc(record.guide)}. Tiers: {esc(', '.join(record.tiers))}.</p>"]
    for name, text in record.evidence.items():
        parts.append(f"<details open><summary>evidence: {esc(name)}</summary><pre class='evidence'>{esc(_pretty(text))}"
                     "</pre></details>")
    data.append("<div class='nautilus-detail'>" + "".join(parts) + "</div>")


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=True)
    except ValueError:
        return text
