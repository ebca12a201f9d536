"""Every inventory setting is read by some code and documented in the README: no dead settings."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from observation.inventory import Inventory, Thresholds

ROOT = Path(__file__).resolve().parents[2]
CODE = "\n".join(p.read_text() for package in ("checks", "fixtures", "observation", "remediation", "reports")
                 for p in (ROOT / package).glob("*.py") if p.name != "inventory.py")
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Thresholds.model_fields))
def test_every_threshold_is_read_by_a_check_or_helper(name):
    assert re.search(rf"\.{name}\b", CODE), f"thresholds.{name} is validated but no code reads it"


@pytest.mark.parametrize("name", sorted(set(Thresholds.model_fields) | set(Inventory.model_fields)))
def test_every_setting_is_in_the_readme(name):
    assert f"`{name}`" in README, f"{name} is not documented in the README's inventory table"


def test_every_remediation_helper_is_in_the_readme():
    from remediation.registry import HELPERS
    missing = [name for name in HELPERS if f"{name}" not in README]
    assert missing == [], f"helpers missing from the README's remediation table: {missing}"


def readme_table_counts(header: str) -> dict[str, int]:
    """{first cell: second cell} of the README table under `header`."""
    section = README.split(header, 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1:3] for line in section.splitlines()[2:] if line.startswith("|")]
    return {name.strip().strip("`").split(" ")[0]: int(count) for name, count in rows}


def test_the_readme_counts_checks_as_the_code_does():
    from collections import Counter

    from checks.coverage import load_checks
    checks = load_checks()
    assert readme_table_counts("### Tiers") == dict(Counter(t for s in checks.values() for t in s.tiers))
    assert readme_table_counts("### Checks per area") == dict(Counter(s.area for s in checks.values()))


def test_every_ini_setting_is_registered_and_settles_an_option(pytestconfig):
    """Each `nautilus_*` ini key stands for one command-line option (fixtures/state.py SETTINGS), which is what
    the code reads: an ini key with no option behind it would be a dead setting."""
    from fixtures.plugin import INI_HELP
    from fixtures.state import SETTINGS
    assert {ini for ini, _ in SETTINGS.values()} == set(INI_HELP)
    for dest, (ini, _) in SETTINGS.items():
        assert hasattr(pytestconfig.option, dest), f"{ini} settles --{dest.replace('_', '-')}, which is not an option"
        pytestconfig.getini(ini)  # raises ValueError when the key is not registered with pytest
