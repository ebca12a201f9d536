"""docs/coverage.md, generated from the checks' own metadata, the guide map and what the lab tests recorded.

    python -m checks.coverage > docs/coverage.md
    python -m checks.coverage --proofs reports/out/lab-proofs.json   # after a lab run: records, then the doc

The guide map (checks/guide_map.yaml) lists every diagnostic of the
troubleshooting guide and the checks that cover it, or why it is not a check.
A check counts as failed on the lab only when a recorded lab run saw it fail (docs/lab-proofs.json, merged in
from the records the lab tests write: tests/lab_records.py), never because a test names it.
`problems()` is what a unit test asserts empty: the map, the records and the checks must agree.
"""
from __future__ import annotations

import importlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fixtures.spec import REGISTRY, CheckSpec
from remediation.invocation import documented
from remediation.registry import HELPERS

HERE = Path(__file__).resolve().parent
MAP_FILE = HERE / "guide_map.yaml"
# What the lab tests saw the checks do (tests/lab_records.py), merged in with `python -m checks.coverage --proofs`.
PROOFS_FILE = HERE.parent / "docs" / "lab-proofs.json"
# A "not a check" reason that says the suite shows or does something is a claim about the code: it names the
# test that holds the code to it.
CLAIMS_OF_CODE = re.compile(r"\b(shown|named|printed|reported)\b", re.I)
# The guide's section titles, as guide_sections() reads them: the map and the checks cite these, and a unit test
# holds them to it on every machine. Refreshed from a new edition of the guide with
#   python -m checks.coverage --sections PATH/troubleshooting-guide.md > checks/guide_sections.txt
SECTIONS_FILE = HERE / "guide_sections.txt"


def load_checks() -> dict[str, CheckSpec]:
    """Every check, by importing every check module (the decorators register them)."""
    for path in sorted(HERE.glob("test_*.py")):
        importlib.import_module(f"checks.{path.stem}")
    return dict(sorted(REGISTRY.items()))


def load_map() -> dict:
    document = yaml.safe_load(MAP_FILE.read_text())
    return {"diagnostics": document.get("diagnostics", []), "without_lab_fault": document.get("without_lab_fault") or {},
            "lowered_bound": document.get("lowered_bound") or {}}


def guide_sections(text: str) -> set[str]:
    """"H2 > H4" (and "H2 > H3" for H3 blocks without H4s) of the guide's headings, emoji and bold removed.

    >>> sorted(guide_sections("## 🚨 Emergency Procedures\\n### **Critical**\\n#### **Complete Restart**\\n"))
    ['Emergency Procedures > Complete Restart', 'Emergency Procedures > Critical']
    """
    found, h2 = set(), ""
    for line in text.splitlines():
        match = re.match(r"^(#{2,4}) (.*)$", line)
        if not match:
            continue
        title = re.sub(r"[^\w\s&()'/.,:-]", "", match.group(2).replace("**", "")).strip()
        if len(match.group(1)) == 2:
            h2 = title
        else:
            found.add(f"{h2} > {title}")
    return found


def known_sections() -> set[str]:
    return {line for line in SECTIONS_FILE.read_text().splitlines() if line.strip()}


@dataclass
class Proof:
    """What the recorded lab runs saw one check do (tests/lab_records.py writes the records)."""

    failed_in: dict[str, list[str]] = field(default_factory=dict)  # lab test -> targets, with the lab's thresholds
    failed_lowered_in: dict[str, list[str]] = field(default_factory=dict)  # lab test -> the thresholds it changed
    passed_in: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failed_in or self.failed_lowered_in)


def load_proofs(path: Path = PROOFS_FILE) -> dict:
    """The recorded lab runs; a missing or unreadable file is an error, never "nothing proven"."""
    try:
        return json.loads(path.read_text())["tests"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{path}: no lab records ({exc}); run the lab tests, then "
                         "python -m checks.coverage --proofs reports/out/lab-proofs.json") from None


def test_exists(test: str) -> bool:
    """Whether "tests/lab/x.py::test_y[param]" still names a test function in that file."""
    file, _, name = test.partition("::")
    path = HERE.parent / file
    return path.is_file() and re.search(rf"^def {re.escape(name.split('[')[0])}\(", path.read_text(), re.M) is not None


def proofs_by_check(checks: dict[str, CheckSpec], records: dict) -> dict[str, Proof]:
    """Check id -> what the records saw it do; records are by test function, as JUnit names them."""
    by_function = {spec.function: check_id for check_id, spec in checks.items()}
    found = {check_id: Proof() for check_id in checks}
    for test, seen in sorted(records.items()):
        for function, targets in (seen.get("failed") or {}).items():
            if function in by_function:
                found[by_function[function]].failed_in[test] = targets
        for function, lowered in (seen.get("failed_with_changed_thresholds") or {}).items():
            if function in by_function:
                found[by_function[function]].failed_lowered_in[test] = lowered["thresholds"]
        for function in seen.get("passed") or []:
            if function in by_function:
                found[by_function[function]].passed_in.append(test)
    return found


def record_problems(checks: dict[str, CheckSpec], records: dict) -> list[str]:
    """Records that no longer mean anything: a lab test that is gone, a test function that is no check."""
    functions = {spec.function for spec in checks.values()}
    found = []
    for test, seen in sorted(records.items()):
        if not test_exists(test):
            found.append(f"lab records: {test} is no lab test any more (rerun the lab tests and "
                         "python -m checks.coverage --proofs ...)")
        named = set(seen.get("failed") or {}) | set(seen.get("failed_with_changed_thresholds") or {}) | \
            set(seen.get("passed") or [])
        for function in sorted(named - functions):
            found.append(f"lab records: {test} ran {function}, which is no check")
    return found


def problems(checks: dict[str, CheckSpec], guide_map: dict, sections: set[str] | None,
             records: dict | None = None) -> list[str]:
    """Every way the map and the checks disagree; empty when they agree."""
    found, listed = [], Counter()
    for n, entry in enumerate(guide_map["diagnostics"]):
        where = f"diagnostics[{n}] ({entry.get('item', '?')})"
        if not entry.get("section") or not entry.get("item"):
            found.append(f"{where}: needs section and item")
        if ("checks" in entry) == ("not_a_check" in entry):
            found.append(f"{where}: needs exactly one of checks / not_a_check")
        if sections is not None and entry.get("section") not in sections:
            found.append(f"{where}: section {entry.get('section')!r} is not a heading of the guide")
        if entry.get("helper") and entry["helper"] not in HELPERS:
            found.append(f"{where}: no helper {entry['helper']!r}")
        for test in entry.get("backed_by") or []:
            if not test_exists(test):
                found.append(f"{where}: backed_by {test!r} is no test")
        if "not_a_check" in entry and CLAIMS_OF_CODE.search(entry["not_a_check"]) and not entry.get("backed_by"):
            found.append(f"{where}: says the suite shows or does something; name the test that proves it (backed_by)")
        for check_id in entry.get("checks") or []:
            listed[check_id] += 1
            if check_id not in checks:
                found.append(f"{where}: no check {check_id!r}")
    for check_id, spec in checks.items():
        if not listed[check_id]:
            found.append(f"check {check_id!r} covers no diagnostic of the map")
        sections_listing = {e["section"] for e in guide_map["diagnostics"] if check_id in (e.get("checks") or [])}
        if listed[check_id] and spec.guide not in sections_listing:
            found.append(f"check {check_id!r} cites {spec.guide!r}, where the map lists it under none of its items")
    records = load_proofs() if records is None else records
    found += record_problems(checks, records)
    proofs = proofs_by_check(checks, records)
    for check_id, reason in guide_map["without_lab_fault"].items():
        if check_id not in checks:
            found.append(f"without_lab_fault: no check {check_id!r}")
        elif proofs[check_id].failed:
            found.append(f"without_lab_fault: {check_id!r} failed on the lab after all "
                         f"({sorted({**proofs[check_id].failed_in, **proofs[check_id].failed_lowered_in})})")
    for check_id, reason in guide_map["lowered_bound"].items():
        if check_id not in checks or not proofs[check_id].failed_lowered_in:
            found.append(f"lowered_bound: {check_id!r} has no recorded lab failure against a lowered bound")
    for check_id, proof in proofs.items():
        if check_id in guide_map["without_lab_fault"]:
            continue
        if not proof.failed:
            found.append(f"check {check_id!r}: no recorded lab run saw it fail, and the map gives no reason why not")
        elif not proof.failed_in and check_id not in guide_map["lowered_bound"]:
            found.append(f"check {check_id!r} failed on the lab only with thresholds changed "
                         f"({sorted({t for v in proof.failed_lowered_in.values() for t in v})}): "
                         "say why under lowered_bound")
        if proof.failed and not proof.passed_in:
            found.append(f"check {check_id!r}: no recorded lab run saw it pass")
    return found


def failed_on_lab(check_id: str, proof: Proof, guide_map: dict) -> bool:
    """Failed with the lab's thresholds, or against a lowered bound the map gives a reason for."""
    return bool(proof.failed_in) or (bool(proof.failed_lowered_in) and check_id in guide_map["lowered_bound"])


def _tests(tests) -> str:
    return ", ".join(f"`{t.removeprefix('tests/lab/')}`" for t in tests)


def render(records: dict | None = None) -> str:
    checks, guide_map = load_checks(), load_map()
    proofs = proofs_by_check(checks, load_proofs() if records is None else records)
    proven = {c for c, proof in proofs.items() if failed_on_lab(c, proof, guide_map)}
    lowered_only = {c for c in proven if not proofs[c].failed_in}
    diagnostics = guide_map["diagnostics"]
    covered = [e for e in diagnostics if e.get("checks")]
    all_failed = [e for e in covered if set(e["checks"]) <= proven]
    some_failed = [e for e in covered if set(e["checks"]) & proven and not set(e["checks"]) <= proven]
    tiers = Counter(t for spec in checks.values() for t in spec.tiers)
    lines = ["# Coverage of the troubleshooting guide", "",
             "Generated by `python -m checks.coverage > docs/coverage.md` from the checks' own metadata "
             "(`@check(...)`), the guide map (`checks/guide_map.yaml`) and what the lab tests recorded seeing each "
             "check do (`docs/lab-proofs.json`, written by the lab tests and merged in with "
             "`python -m checks.coverage --proofs reports/out/lab-proofs.json`); do not edit by hand. A unit test "
             "fails when this file, the map, the records and the checks disagree.", "",
             f"- {len(diagnostics)} diagnostics, maintenance steps and known errors of the guide: "
             f"{len(covered)} judged by checks, {len(diagnostics) - len(covered)} not checks (reason given).",
             f"- Of the {len(covered)} judged: {len(all_failed)} by checks that each failed on the lab in a recorded "
             f"run (on the lab's thresholds or, with the reason stated, a lowered bound); {len(some_failed)} where "
             f"some of their checks did; {len(covered) - len(all_failed) - len(some_failed)} where none did.",
             f"- {len(checks)} checks: " + ", ".join(f"{tiers[t]} {t}" for t in ("emergency", "daily", "weekly"))
             + " (a check may carry several tiers).",
             f"- {len(proven - lowered_only)} checks failed in a recorded lab run on the lab's own thresholds, with "
             f"the fault made for real; {len(lowered_only)} failed only on real figures against a lowered bound (the "
             f"fault itself cannot be made here; reason given); {len(checks) - len(proven)} never failed on the lab, "
             "each with the reason.",
             "",
             "## The guide, item by item", "",
             "| guide section | item | checks, or why not a check | its checks that failed on the lab |",
             "|---|---|---|---|"]
    for entry in diagnostics:
        if entry.get("checks"):
            what = ", ".join(f"`{c}`" for c in entry["checks"])
            what += (f"; {entry['note']}" if entry.get("note") else "") + (f" (helper `{entry['helper']}`)"
                                                                          if entry.get("helper") else "")
            failed = sum(1 for c in entry["checks"] if c in proven)
            tally = "all" if failed == len(entry["checks"]) else f"{failed} of {len(entry['checks'])}"
        else:
            what = "not a check: " + entry["not_a_check"] + (f" (helper `{entry['helper']}`)" if entry.get("helper") else "")
            tally = ""
        lines.append(f"| {entry['section']} | {entry['item']} | {what} | {tally} |")
    lines += ["", "## The checks", "",
              "| check id | what it asserts | tiers | severity | guide section | remediation | failed on the lab in "
              "| passed in |", "|---|---|---|---|---|---|---|---|"]
    for check_id, spec in checks.items():
        remedy = f"`{documented([spec.remedy])}`" if spec.remedy else "none"
        proof = proofs[check_id]
        if proof.failed_in:
            failed = _tests(proof.failed_in)
        elif proof.failed_lowered_in and check_id in guide_map["lowered_bound"]:
            lowered = sorted({t for v in proof.failed_lowered_in.values() for t in v})
            failed = (_tests(proof.failed_lowered_in) + " against a lowered bound (" + ", ".join(lowered) + "): "
                      + guide_map["lowered_bound"][check_id])
        else:
            failed = "never: " + guide_map["without_lab_fault"].get(check_id, "NO REASON GIVEN")
        lines.append(f"| `{check_id}` | {spec.title} | {', '.join(spec.tiers)} | {spec.severity} | {spec.guide} | "
                     f"{remedy} | {failed} | {len(proof.passed_in)} lab tests |")
    return "\n".join(lines) + "\n"


def merge_proofs(path: Path) -> int:
    """Merge a lab run's records into docs/lab-proofs.json test by test, dropping tests that are gone."""
    try:
        fresh = json.loads(path.read_text())["tests"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{path}: not a lab records file ({exc})") from None
    try:
        kept = json.loads(PROOFS_FILE.read_text())["tests"]
    except (OSError, ValueError, KeyError):
        kept = {}
    merged = {t: seen for t, seen in sorted({**kept, **fresh}.items()) if test_exists(t)}
    PROOFS_FILE.write_text(json.dumps({"tests": merged}, indent=1) + "\n")
    (HERE.parent / "docs" / "coverage.md").write_text(render(merged))
    return len(merged)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--sections"] and len(sys.argv) == 3:
        print("\n".join(sorted(guide_sections(Path(sys.argv[2]).read_text()))))
    elif sys.argv[1:2] == ["--proofs"] and len(sys.argv) == 3:
        count = merge_proofs(Path(sys.argv[2]))
        print(f"{PROOFS_FILE}: records of {count} lab tests; docs/coverage.md written from them")
    else:
        print(render(), end="")
