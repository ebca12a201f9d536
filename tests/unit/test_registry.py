"""The checks' metadata, the guide map and docs/coverage.md agree; every remedy is a real helper."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from checks import guide
from checks.coverage import known_sections, load_checks, load_map, problems, render
from fixtures.spec import TARGET_KINDS
from fixtures.targets import remediation_arg
from observation import targets as inventory_targets
from observation.inventory import load_inventory
from remediation.registry import HELPERS, argv_for
from remediation.targets import resolve

ROOT = Path(__file__).resolve().parents[2]
CHECKS = load_checks()


def test_checks_are_registered():
    assert len(CHECKS) >= 15


def test_map_and_checks_agree():
    assert problems(CHECKS, load_map(), known_sections()) == []


def test_the_guide_sections_are_recorded_and_every_cited_one_is_among_them():
    sections = known_sections()
    assert len(sections) > 30  # the guide's headings, not an empty file that would let any citation through
    cited = {spec.guide for spec in CHECKS.values()} | {vars(guide)[name] for name in vars(guide) if name.isupper()}
    assert sorted(cited - sections) == []


def test_a_map_citing_a_section_the_guide_lacks_is_caught():
    entry = {"section": "Diagnostic Procedures > No Such Section", "item": "x", "checks": ["container-running"]}
    broken = {**load_map(), "diagnostics": [*load_map()["diagnostics"], entry]}
    assert any("No Such Section" in p for p in problems(CHECKS, broken, known_sections()))


def test_a_map_naming_an_unknown_check_is_caught():
    broken = {"diagnostics": [{"section": "A > B", "item": "x", "checks": ["no-such-check"]}], "without_lab_fault": {},
              "lowered_bound": {}}
    found = problems(CHECKS, broken, None)
    assert "diagnostics[0] (x): no check 'no-such-check'" in found
    assert any("covers no diagnostic" in p for p in found)


LAB = load_inventory(ROOT / "lab" / "inventory.yaml", environ={})
TARGETS_OF_KIND = {  # a check's first parameter names the kind of target it is parametrized over
    "container": lambda inventory: inventory_targets.containers(inventory, None)[0],
    "engine": lambda inventory: inventory.engine_list(None),
    "port": lambda inventory: inventory_targets.ports(inventory, None)[0],
    "service": lambda inventory: inventory_targets.http_services(inventory)[0],
}


def target_kind(spec) -> str | None:
    function = getattr(importlib.import_module(spec.module), spec.function)
    first = next(iter(inspect.signature(function).parameters), None)
    return first if first in TARGETS_OF_KIND else None


@pytest.mark.parametrize("check_id", sorted(c for c, spec in CHECKS.items() if spec.remedy))
def test_remedy_is_a_helper_that_takes_the_checks_target(check_id):
    """The command a failure prints names a target its helper accepts, for every target of the lab inventory."""
    spec = CHECKS[check_id]
    assert spec.remedy in HELPERS, f"{check_id}: unknown helper {spec.remedy}"
    kind = target_kind(spec)
    targets = [t for t in TARGETS_OF_KIND[kind](LAB) if spec.applies is None or spec.applies(t)] if kind else [None]
    assert targets, f"{check_id}: no {kind} of the lab inventory to try its fix on"
    for target in targets:
        argv = argv_for(spec.remedy, remediation_arg(target))
        argument = argv[1] if len(argv) > 1 and not argv[1].startswith("--") else None
        if HELPERS[spec.remedy].target in ("engine", "container", "port", None):
            resolve(LAB, spec.remedy, argument)  # refuses an argument the helper would refuse
        else:  # an optional table or maintenance target: a check names none, or an engine or service
            assert argument is None or argument in LAB.engines or argument in LAB.services, (check_id, argument)


def test_target_kinds_are_the_parametrized_ones():
    assert set(TARGET_KINDS) >= {"engine", "container", "port", "service"}


def test_coverage_document_is_current():
    assert (ROOT / "docs" / "coverage.md").read_text() == render(), \
        "docs/coverage.md is stale: make coverage (after the lab tests), or python -m checks.coverage > docs/coverage.md"
