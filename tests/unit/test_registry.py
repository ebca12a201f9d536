"""The checks' metadata, the guide map and docs/coverage.md agree; every remedy is a real helper."""
from __future__ import annotations

from pathlib import Path

import pytest

from checks.coverage import GUIDE, guide_sections, load_checks, load_map, problems, render
from fixtures.spec import TARGET_KINDS
from remediation.registry import HELPERS

ROOT = Path(__file__).resolve().parents[2]
CHECKS = load_checks()


def test_checks_are_registered():
    assert len(CHECKS) >= 15


def test_map_and_checks_agree():
    sections = guide_sections(GUIDE.read_text()) if GUIDE.exists() else None
    assert problems(CHECKS, load_map(), sections) == []


def test_a_map_naming_an_unknown_check_is_caught():
    broken = {"diagnostics": [{"section": "A > B", "item": "x", "checks": ["no-such-check"]}], "without_lab_fault": {},
              "lowered_bound": {}}
    found = problems(CHECKS, broken, None)
    assert "diagnostics[0] (x): no check 'no-such-check'" in found
    assert any("covers no diagnostic" in p for p in found)


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_remedy_is_a_helper_that_takes_the_checks_target(check_id):
    spec = CHECKS[check_id]
    if spec.remedy is None:
        return
    assert spec.remedy in HELPERS, f"{check_id}: unknown helper {spec.remedy}"


def test_target_kinds_are_the_parametrized_ones():
    assert set(TARGET_KINDS) >= {"engine", "container", "port", "service"}


def test_coverage_document_is_current():
    assert (ROOT / "docs" / "coverage.md").read_text() == render(), \
        "docs/coverage.md is stale: python -m checks.coverage > docs/coverage.md"
