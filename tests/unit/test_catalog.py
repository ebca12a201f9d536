"""The check catalog is complete, consistent with the checks, and documented."""
from __future__ import annotations

import ast
from pathlib import Path

from checks.catalog import CATALOG, TIERS
from checks.coverage import render
from remediation.registry import HELPERS

ROOT = Path(__file__).resolve().parents[2]


def implemented_ids() -> list[str]:
    found = []
    for module in (ROOT / "checks").glob("test_*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "check":
                        found.append(deco.args[0].value)
    return found


def test_every_catalog_entry_is_implemented_exactly_once():
    ids = implemented_ids()
    assert sorted(ids) == sorted(CATALOG), "catalog and checks/ disagree"
    assert len(ids) == len(set(ids))


def test_every_remediation_names_a_registered_helper():
    unknown = {spec.remediation for spec in CATALOG.values()} - set(HELPERS) - {None}
    assert unknown == set()


def test_emergency_is_a_subset_of_daily_and_tiers_are_known():
    for spec in CATALOG.values():
        assert set(spec.tiers) <= set(TIERS)
        if "emergency" in spec.tiers:
            assert "daily" in spec.tiers, spec.id


def test_coverage_document_is_current():
    assert (ROOT / "docs" / "coverage.md").read_text() == render(), \
        "docs/coverage.md is stale: python -m checks.coverage > docs/coverage.md"
