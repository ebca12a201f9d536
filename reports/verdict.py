"""The run's verdict from its records: root causes ordered, merged and collapsed; counts; what changed since the last run.

Every output tells the same story from this module: the terminal summary,
the HTML's first screen and the JSON summary.

- Root causes on one subject (an engine with its container and port, a
  service) are one cause with one fix: a killed engine's `container-running`
  and `container-exit-code` are one cause, fixed by starting it.
- Causes with the same check and the same finding on several subjects are one
  line listing the subjects.
- Causes are ordered by severity, then by how many checks each blocks.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from fixtures.record import FAILING, OUTCOMES, SEVERITIES, CheckRecord, Fix

RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass
class Cause:
    """One root cause as people read it: its main record, what else failed on the same subject, where it holds."""

    main: CheckRecord
    also: list[CheckRecord] = field(default_factory=list)  # other root-cause findings on the same subject
    others: list[CheckRecord] = field(default_factory=list)  # the same finding on other subjects (collapsed)
    blocks: int = 0  # checks blocked by any of its records

    @property
    def records(self) -> list[CheckRecord]:
        return [self.main, *self.also, *self.others]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.records]

    @property
    def targets(self) -> list[str]:
        return [self.main.target_id or self.main.check_id] + [r.target_id for r in self.others]

    @property
    def fix(self) -> Fix | None:
        return self.main.fix

    def fix_line(self) -> str:
        if self.fix is None:
            return "none named: see the guide section"
        if not self.others:
            return self.fix.line()
        return f"{self.fix.line()}; the same for {', '.join(r.target_id for r in self.others)}"

    def headline(self) -> str:
        where = f" on {len(self.targets)} targets ({', '.join(self.targets)})" if self.others else ""
        return f"{self.main.label}{where} ({self.main.severity}): {self.main.headline}"

    def summary(self) -> dict:
        return {"label": self.main.label, "check": self.main.check_id, "target": self.main.target,
                "targets": self.targets, "engine": self.main.engine, "host": self.main.host,
                "severity": self.main.severity, "finding": self.main.headline,
                "fix": self.fix.line() if self.fix else None, "guide": self.main.guide,
                "also_failing": [{"label": r.label, "finding": r.headline} for r in self.also],
                "blocks": self.blocks, "nodeids": [r.nodeid for r in self.records]}


def _shape(record: CheckRecord) -> str:
    """The finding with its own target taken out, so the same fault on two targets reads the same.

    >>> _shape(CheckRecord("n", "c", "t", "container:a", "a", "failed", "normal", finding="[a] a restarted"))
    '[*] * restarted'
    """
    text = record.headline
    for name in sorted({record.target_id, record.target.partition(":")[2].partition("@")[0]} - {""}, key=len,
                       reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", "*", text)
    return text


def root_causes(records: list[CheckRecord]) -> list[Cause]:
    """The run's root causes: one per subject, identical ones collapsed, ordered by severity then blast radius."""
    blocked_by = Counter(r.blocked_by for r in records if r.outcome == "blocked")
    by_subject: dict[object, Cause] = {}
    for record in records:
        if not record.is_root_cause:
            continue
        key = record.subject or record.label  # a run-wide check is its own subject
        cause = by_subject.get(key)
        if cause is None:
            by_subject[key] = Cause(record)
        elif (RANK[record.severity], record.outcome != "failed") < (RANK[cause.main.severity],
                                                                     cause.main.outcome != "failed"):
            cause.also.insert(0, cause.main)
            cause.main = record
        else:
            cause.also.append(record)
    collapsed: dict[tuple, Cause] = {}
    for cause in by_subject.values():
        cause.blocks = sum(blocked_by[r.label] for r in cause.records)
        key = (cause.main.check_id, _shape(cause.main), tuple(sorted((r.check_id, _shape(r)) for r in cause.also)))
        if key in collapsed and cause.main.subject:
            first = collapsed[key]
            first.others.append(cause.main)
            first.blocks += cause.blocks
        else:
            collapsed[key] = cause
    return sorted(collapsed.values(), key=lambda c: (RANK[c.main.severity], -c.blocks, c.main.label))


def counts(records: list[CheckRecord]) -> dict[str, int]:
    found = Counter(r.outcome for r in records)
    return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}


def causes_by_severity(causes: list[Cause]) -> dict[str, int]:
    """Root causes by severity: what is wrong, not how many checks it touched."""
    found = Counter(c.main.severity for c in causes)
    return {severity: found.get(severity, 0) for severity in SEVERITIES}


def failing(records: list[CheckRecord]) -> list[CheckRecord]:
    return [r for r in records if r.outcome in FAILING]


def deploys(records: list[CheckRecord]) -> list[dict[str, str]]:
    """Each container recreated since the previous run, once however many checks saw it, by name."""
    seen: dict[str, dict[str, str]] = {}
    for r in records:
        if r.outcome == "deploy" and r.deploy.get("container"):
            seen.setdefault(r.deploy["container"], r.deploy)
    return [seen[name] for name in sorted(seen)]


def deploy_line(records: list[CheckRecord]) -> str | None:
    """The run's one deploy line, containers grouped by image; None when nothing was recreated.

    >>> def saw(name, image, at):
    ...     return CheckRecord("n", "a", "", f"container:{name}", name, "deploy", "normal",
    ...                        deploy={"container": name, "image": image, "started": at})
    >>> deploy_line([saw("b", "image 1", "2025-08-01 12:00:03"), saw("a", "image 1", "2025-08-01 12:00:01"),
    ...              saw("a", "image 1", "2025-08-01 12:00:01"), saw("c", "image 0 -> 2", "2025-08-01 12:00:02")])
    'deploy since the previous run: 3 containers recreated, started 2025-08-01 12:00:01 to 12:00:03: image 1: a, b; image 0 -> 2: c'
    """
    found = deploys(records)
    if not found:
        return None
    by_image: dict[str, list[str]] = {}
    for d in found:
        by_image.setdefault(d.get("image", "image ?"), []).append(d["container"])
    times = sorted(d.get("started", "") for d in found)
    last = times[-1][11:] if times[-1][:10] == times[0][:10] else times[-1]
    when = times[0] if times[0] == times[-1] else f"{times[0]} to {last}"
    return (f"deploy since the previous run: {len(found)} container{'s' * (len(found) != 1)} recreated, "
            f"started {when}: " + "; ".join(f"{image}: {', '.join(names)}" for image, names in by_image.items()))


def in_maintenance(records: list[CheckRecord]) -> dict[str, int]:
    """Each maintenance window the run met (its line), with how many checks it kept from being judged."""
    return dict(sorted(Counter(r.note for r in records if r.outcome == "maintenance").items()))


def verdict_line(causes: list[Cause], records: list[CheckRecord]) -> str:
    """
    >>> verdict_line([], [])
    'all checks passed'
    """
    blocked = sum(1 for r in records if r.outcome == "blocked")
    if not causes:
        return "all checks passed"
    worst = causes[0].main.severity
    return (f"{len(causes)} root cause{'s' * (len(causes) != 1)} ({worst} first)"
            + (f", {blocked} check{'s' * (blocked != 1)} blocked by them" if blocked else ""))


@dataclass(frozen=True)
class Change:
    """How the root causes moved since the tier's previous complete run."""

    new: list[str]
    still: dict[str, str]  # label -> failing since (the previous run's start, or its own since)
    recovered: list[str]
    previous_run: str | None

    def lines(self) -> list[str]:
        if self.previous_run is None:
            return ["no earlier complete run of this tier to compare with"]
        out = [f"new since run {self.previous_run}: {', '.join(self.new)}" if self.new else
               f"nothing new since run {self.previous_run}"]
        out += [f"still failing: {label} (since {since})" for label, since in self.still.items()]
        if self.recovered:
            out.append(f"recovered: {', '.join(self.recovered)}")
        return out

    def summary(self) -> dict:
        return {"previous_run": self.previous_run, "new": self.new, "still_failing": self.still,
                "recovered": self.recovered}


def change_since(causes: list[Cause], previous: dict | None, started: str) -> Change:
    """Compare with the previous complete run's JSON summary (None when there is none).

    >>> prev = {"run_id": "r1", "started_at": "10:00", "root_causes": [{"label": "a", "since": "09:00"}, {"label": "b"}]}
    >>> c = change_since([Cause(CheckRecord("n", "a", "", "", "", "failed", "critical")),
    ...                   Cause(CheckRecord("n", "c", "", "", "", "failed", "critical"))], prev, "11:00")
    >>> c.new, c.still, c.recovered
    (['c'], {'a': '09:00'}, ['b'])
    """
    if not previous:
        return Change([c.main.label for c in causes], {}, [], None)
    before = {r["label"]: r.get("since") or previous.get("started_at") or "?" for r in previous.get("root_causes", [])
              if isinstance(r, dict)}
    now = [c.main.label for c in causes]
    return Change([label for label in now if label not in before],
                  {label: before[label] for label in now if label in before},
                  [label for label in before if label not in now], previous.get("run_id"))
