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
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

OUTCOMES = ("passed", "failed", "blocked", "cannot_observe", "skipped")


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
        else:
            outcome = pytest_outcome
        finding = props.get("finding") or (longrepr.splitlines()[0] if longrepr else "")
        return cls(
            nodeid=nodeid, check_id=props.get("check_id", ""), title=props.get("title", ""),
            target=props.get("target", ""), engine=props.get("engine"), area=props.get("area", ""),
            tiers=props.get("tiers", ""), severity=props.get("severity", ""), guide=props.get("guide_section", ""),
            outcome=outcome, duration_s=round(duration_s, 4),
            cause=finding if outcome != "passed" else "",
            remediation=props.get("remediation", "") if outcome in ("failed", "cannot_observe") else "",
            blocked_by=props.get("blocked_by", ""),
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
    found = Counter(r.severity for r in results if r.outcome not in ("passed", "skipped"))
    return {severity: found.get(severity, 0) for severity in SEVERITIES}
