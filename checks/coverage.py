"""docs/coverage.md, generated entirely from the checks' own metadata and the guide map.

    python -m checks.coverage > docs/coverage.md

The guide map (checks/guide_map.yaml) lists every diagnostic of the
troubleshooting guide and the checks that cover it, or why it is not a check.
`problems()` is what a unit test asserts empty: the map and the checks must agree.
"""
from __future__ import annotations

import importlib
import re
from collections import Counter
from pathlib import Path

import yaml

from fixtures.spec import REGISTRY, CheckSpec
from remediation.invocation import documented

HERE = Path(__file__).resolve().parent
MAP_FILE = HERE / "guide_map.yaml"
LAB_TESTS = HERE.parent / "tests" / "lab"
# The guide's section titles, as guide_sections() reads them: the map and the checks cite these, and a unit test
# holds them to it on every machine. Refreshed from a new edition of the guide with
#   python -m checks.coverage --sections PATH/troubleshooting-guide.md > checks/guide_sections.txt
SECTIONS_FILE = HERE / "guide_sections.txt"
NOT_A_FAILURE = re.compile(r"""==\s*["'](passed|skipped)["']|skipped\s*<=|\bnot in\b""")


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


def proven_on_lab() -> dict[str, list[str]]:
    """Check function name -> the lab tests that name it failing (`test_<check>[` or `"test_<check>"` in tests/lab)."""
    found: dict[str, list[str]] = {}
    for path in sorted(LAB_TESTS.glob("test_*.py")):
        current = None
        for line in path.read_text().splitlines():
            header = re.match(r"^def (test_\w+)\(", line)
            if header:
                current = header.group(1)
            if NOT_A_FAILURE.search(line):
                continue  # the line names the check passing or skipped, which proves nothing
            for name in re.findall(r"(test_[a-z0-9_]+)\[", line) + re.findall(r"[\"'](test_[a-z0-9_]+)[\"']", line):
                if current:
                    found.setdefault(name, [])
                    if current not in found[name]:
                        found[name].append(current)
    return found


def problems(checks: dict[str, CheckSpec], guide_map: dict, sections: set[str] | None) -> list[str]:
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
    proven = proven_on_lab()
    for check_id, reason in guide_map["without_lab_fault"].items():
        if check_id not in checks:
            found.append(f"without_lab_fault: no check {check_id!r}")
        elif checks[check_id].function in proven:
            found.append(f"without_lab_fault: {check_id!r} has a lab test after all ({proven[checks[check_id].function]})")
    for check_id, reason in guide_map["lowered_bound"].items():
        if check_id not in checks or checks[check_id].function not in proven:
            found.append(f"lowered_bound: {check_id!r} names no check with a lab test")
    for check_id, spec in checks.items():
        if spec.function not in proven and check_id not in guide_map["without_lab_fault"]:
            found.append(f"check {check_id!r} has no lab test that makes it fail, and no reason why not")
    return found


def render() -> str:
    checks, guide_map = load_checks(), load_map()
    proven = proven_on_lab()
    diagnostics = guide_map["diagnostics"]
    covered = [e for e in diagnostics if e.get("checks")]
    tiers = Counter(t for spec in checks.values() for t in spec.tiers)
    lines = ["# Coverage of the troubleshooting guide", "",
             "Generated by `python -m checks.coverage > docs/coverage.md` from the checks' own metadata "
             "(`@check(...)`) and the guide map (`checks/guide_map.yaml`); do not edit by hand. A unit test "
             "fails when this file, the map and the checks disagree.", "",
             f"- {len(diagnostics)} diagnostics, maintenance steps and known errors of the guide: "
             f"{len(covered)} judged by checks, {len(diagnostics) - len(covered)} not checks (reason given).",
             f"- {len(checks)} checks: " + ", ".join(f"{tiers[t]} {t}" for t in ("emergency", "daily", "weekly"))
             + " (a check may carry several tiers).",
             f"- {sum(1 for i, s in checks.items() if s.function in proven and i not in guide_map['lowered_bound'])} "
             "checks are made to fail for real by a lab test that creates the fault; "
             f"{len(guide_map['lowered_bound'])} fail in a lab test on real figures against a lowered bound (the fault "
             f"itself cannot be made here); {len(guide_map['without_lab_fault'])} have no lab test, each with the reason.",
             "",
             "## The guide, item by item", "", "| guide section | item | checks, or why not a check |", "|---|---|---|"]
    for entry in diagnostics:
        if entry.get("checks"):
            what = ", ".join(f"`{c}`" for c in entry["checks"])
            what += (f"; {entry['note']}" if entry.get("note") else "") + (f" (helper `{entry['helper']}`)"
                                                                          if entry.get("helper") else "")
        else:
            what = "not a check: " + entry["not_a_check"] + (f" (helper `{entry['helper']}`)" if entry.get("helper") else "")
        lines.append(f"| {entry['section']} | {entry['item']} | {what} |")
    lines += ["", "## The checks", "",
              "| check id | what it asserts | tiers | severity | guide section | remediation | made to fail on the lab by |",
              "|---|---|---|---|---|---|---|"]
    for check_id, spec in checks.items():
        remedy = f"`{documented([spec.remedy])}`" if spec.remedy else "none"
        proof = (", ".join(f"`{t}`" for t in proven[spec.function]) if spec.function in proven
                 else "no lab test: " + guide_map["without_lab_fault"].get(check_id, "MISSING REASON"))
        if check_id in guide_map["lowered_bound"]:
            proof += " (real figures against a lowered bound: " + guide_map["lowered_bound"][check_id] + ")"
        lines.append(f"| `{check_id}` | {spec.title} | {', '.join(spec.tiers)} | {spec.severity} | {spec.guide} | "
                     f"{remedy} | {proof} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--sections"] and len(sys.argv) == 3:
        print("\n".join(sorted(guide_sections(Path(sys.argv[2]).read_text()))))
    else:
        print(render(), end="")
