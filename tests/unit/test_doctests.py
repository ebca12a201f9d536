"""The doctest examples in public helpers are documentation; keep them true."""
import doctest
import importlib

import pytest

MODULES = ["fixtures.inventory", "fixtures.jsonpath", "fixtures.redact", "fixtures.backends",
           "remediation.registry", "remediation.actions", "reports.plugin"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
