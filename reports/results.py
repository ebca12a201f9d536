"""One record per check and target, built from what the check attached to its report.

Every output (terminal summary, HTML story, JSON summary, Prometheus textfile)
reads these records, so they all tell the same story. Built from
`pytest_runtest_logreport`, which under xdist runs on the controller too.

>>> r = CheckResult.from_properties("checks/x.py::test_a[risk]", "failed", 0.25,
...     [("check_id", "a"), ("target", "risk"), ("severity", "critical"), ("finding", "[risk] expected x; saw y"),
...      ("remediation", "python -m remediation restart-engine risk"), ("measured:response_ms", "12.5")])
>>> r.outcome, r.cause, r.measured
('failed', '[risk] expected x; saw y', {'response_ms': '12.5'})
>>> CheckResult.from_properties("n", "failed", 0, [("check_id", "a"), ("blocked_by", "b[risk]")]).outcome
'blocked'
>>> [CheckResult.from_properties("n", o, 0, [("check_id", "a"), (k, "v")]).outcome
...  for o, k in (("skipped", "maintenance"), ("passed", "deploy"))]
['maintenance', 'deploy']
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

# maintenance: the target is under planned work, so it was not judged; deploy: passed, and saw a container recreated
# since the previous run. Neither fails the run, pages or counts as a failure.
OUTCOMES = ("passed", "failed", "blocked", "cannot_observe", "maintenance", "deploy", "skipped")
FAILING = ("failed", "blocked", "cannot_observe")


@dataclass
class CheckResult:
    nodeid: str
    check_id: str
    title: str
    target: str
    engine: str | None
    area: str
    tiers: str
    severity: str
    guide: str
    outcome: str  # one of OUTCOMES
    duration_s: float
    cause: str = ""  # the finding's first line; empty when passed
    remediation: str = ""
    blocked_by: str = ""
    note: str = ""  # maintenance: the window; deploy: what was recreated
    deploy: dict[str, str] = field(default_factory=dict)  # container, image, started
    measured: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.check_id}[{self.target}]" if self.target and self.target != self.check_id else self.check_id

    @property
    def is_root_cause(self) -> bool:
        return self.outcome in ("failed", "cannot_observe")

    @classmethod
    def from_properties(cls, nodeid: str, pytest_outcome: str, duration_s: float,
                        properties: list[tuple[str, str]], longrepr: str = "") -> "CheckResult":
        props = dict(properties)
        if props.get("blocked_by"):
            outcome = "blocked"
        elif pytest_outcome == "failed" and props.get("cannot_observe"):
            outcome = "cannot_observe"
        elif pytest_outcome == "skipped" and props.get("maintenance"):
            outcome = "maintenance"
        elif pytest_outcome == "passed" and props.get("deploy"):
            outcome = "deploy"
        else:
            outcome = pytest_outcome
        finding = props.get("finding") or (longrepr.splitlines()[0] if longrepr else "")
        return cls(
            nodeid=nodeid, check_id=props.get("check_id", ""), title=props.get("title", ""),
            target=props.get("target", ""), engine=props.get("engine"), area=props.get("area", ""),
            tiers=props.get("tiers", ""), severity=props.get("severity", ""), guide=props.get("guide_section", ""),
            outcome=outcome, duration_s=round(duration_s, 4),
            cause=finding if outcome in FAILING else "",
            remediation=props.get("remediation", "") if outcome in ("failed", "cannot_observe") else "",
            blocked_by=props.get("blocked_by", ""),
            note=props.get(outcome, "") if outcome in ("maintenance", "deploy") else "",
            deploy={k.split("_", 1)[1]: v for k, v in properties if k.startswith("deploy_")} if outcome == "deploy" else {},
            measured={k.split(":", 1)[1]: v for k, v in properties if k.startswith("measured:")},
            evidence={k.split(":", 1)[1]: v for k, v in properties if k.startswith("evidence:")},
        )

    def summary(self) -> dict:
        """What the JSON summary carries per check (evidence stays in the HTML and Allure reports)."""
        data = asdict(self)
        data.pop("evidence")
        return data


def counts(results: list[CheckResult]) -> dict[str, int]:
    found = Counter(r.outcome for r in results)
    return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}


def failing_by_severity(results: list[CheckResult]) -> dict[str, int]:
    from fixtures.spec import SEVERITIES
    found = Counter(r.severity for r in results if r.outcome in FAILING)
    return {severity: found.get(severity, 0) for severity in SEVERITIES}


def deploys(results: list[CheckResult]) -> list[dict[str, str]]:
    """Each container recreated since the previous run, once however many checks saw it, by name."""
    seen: dict[str, dict[str, str]] = {}
    for r in results:
        if r.outcome == "deploy" and r.deploy.get("container"):
            seen.setdefault(r.deploy["container"], r.deploy)
    return [seen[name] for name in sorted(seen)]


def deploy_line(results: list[CheckResult]) -> str | None:
    """The run's one deploy line, containers grouped by image; None when nothing was recreated.

    >>> def saw(name, image, at):
    ...     return CheckResult("n", "a", "", name, None, "", "", "", "", "deploy", 0,
    ...                        deploy={"container": name, "image": image, "started": at})
    >>> deploy_line([saw("b", "image 1", "2025-08-01 12:00:03"), saw("a", "image 1", "2025-08-01 12:00:01"),
    ...              saw("a", "image 1", "2025-08-01 12:00:01"), saw("c", "image 0 -> 2", "2025-08-01 12:00:02")])
    'deploy since the previous run: 3 containers recreated, started 2025-08-01 12:00:01 to 12:00:03: image 1: a, b; image 0 -> 2: c'
    """
    found = deploys(results)
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


def in_maintenance(results: list[CheckResult]) -> dict[str, int]:
    """Each maintenance window the run met (its line), with how many checks it kept from being judged."""
    return dict(sorted(Counter(r.note for r in results if r.outcome == "maintenance").items()))
