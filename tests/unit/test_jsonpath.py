"""Dotted paths into health answers: the guide's flat fields and the real engines' nested ones."""
import pytest

from observation.jsonpath import MISSING, lookup

PORTFOLIO = {"status": "healthy", "metrics": {"uptime_seconds": 12.5, "requests_processed": 0},
             "integrations": {"messagebus_connected": False, "database_connected": True},
             "items": [{"name": "a"}, {"name": "b", "tags": ["x", "y"]}]}


@pytest.mark.parametrize("path,expected", [
    ("status", "healthy"),
    ("metrics.uptime_seconds", 12.5),
    ("integrations.messagebus_connected", False),
    ("items.0.name", "a"),
    ("items.1.tags.1", "y"),
    ("items.-1.name", "b"),
    ("metrics", {"uptime_seconds": 12.5, "requests_processed": 0}),
])
def test_found(path, expected):
    assert lookup(PORTFOLIO, path) == expected


@pytest.mark.parametrize("path", [
    "uptime_seconds", "metrics.uptime", "metrics.uptime_seconds.more", "items.2.name", "items.-3.name",
    "items.name", "status.0", "integrations.messagebus_connected.x",
])
def test_missing(path):
    assert lookup(PORTFOLIO, path) is MISSING


def test_falsy_values_are_not_missing():
    document = {"zero": 0, "false": False, "none": None, "empty": ""}
    assert [lookup(document, k) for k in document] == [0, False, None, ""]
    assert all(lookup(document, k) is not MISSING for k in document)


def test_missing_is_a_falsy_singleton_with_a_plain_repr():
    assert repr(MISSING) == "MISSING"
    assert bool(MISSING) is False
    assert lookup(None, "a") is MISSING and lookup("text", "a") is MISSING
