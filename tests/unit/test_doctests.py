"""The doctest examples in the suite's modules are documentation; keep them true."""
import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("observation", "fixtures", "remediation", "reports", "checks")


def modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            if ">>>" in path.read_text() and not path.name.startswith("test_"):
                found.append(f"{package}.{path.stem}")
    return found


def test_every_package_documents_by_example():
    assert {m.split(".")[0] for m in modules_with_examples()} >= {"observation", "fixtures", "remediation"}


@pytest.mark.parametrize("name", modules_with_examples())
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
