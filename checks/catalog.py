"""The one registry of checks: id, tiers, severity, guide section, remediation.

Tests declare which entry they implement with `@check("id")`; the tier
markers come from here, so a check's tiers are defined in exactly one place
and docs/coverage.md is generated from this table.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

TIERS = ("emergency", "daily", "weekly")
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    tiers: tuple[str, ...]
    severity: str
    guide_section: str
    remediation: str | None

    def __post_init__(self):
        assert set(self.tiers) <= set(TIERS), self.id
        assert "emergency" not in self.tiers or "daily" in self.tiers, f"{self.id}: emergency checks run daily too"
        assert self.severity in SEVERITIES, self.id


FULL_HEALTH = "Diagnostic Procedures > Full System Health Check"
STARTUP = "Common Issues & Solutions > Container Won't Start"
EMERGENCY_RESTART = "Emergency Procedures > Complete System Restart (Emergency)"
MESSAGEBUS = "Common Issues & Solutions > MessageBus Connectivity Problems"
DATABASE = "Common Issues & Solutions > Database Connection Issues"
SLOW = "Common Issues & Solutions > Slow Response Times"
PORTS = "Common Issues & Solutions > Port Conflicts"
DAILY = "Maintenance Procedures > Daily Maintenance Script"

_E, _D = ("emergency", "daily"), ("daily",)

CATALOG: dict[str, CheckSpec] = {spec.id: spec for spec in (
    CheckSpec("container-exists", "Platform container exists", _E, "critical", STARTUP, "start-container"),
    CheckSpec("container-running", "Platform container is running", _E, "critical", STARTUP, "start-container"),
    CheckSpec("container-healthy", "Docker reports the container healthy", _E, "critical", FULL_HEALTH, "restart-container"),
    CheckSpec("container-not-restart-looping", "Container is not in a restart loop", _E, "critical", STARTUP, "diagnose-startup"),
    CheckSpec("engine-health-answers", "Engine /health answers 200", _E, "critical", FULL_HEALTH, "restart-engine"),
    CheckSpec("engine-health-latency", "Engine /health answers within the slow threshold", _D, "warning", SLOW, "diagnose-engine"),
    CheckSpec("engine-status-healthy", "Engine reports status healthy", _E, "critical", FULL_HEALTH, "restart-engine"),
    CheckSpec("engine-uptime-reported", "Engine reports its uptime", _D, "warning", FULL_HEALTH, "diagnose-engine"),
    CheckSpec("engine-fields-present", "Engine health carries its engine-specific fields", _D, "warning", FULL_HEALTH, "diagnose-engine"),
    CheckSpec("engine-messagebus-flag", "Engine reports its MessageBus connected", _E, "critical", MESSAGEBUS, "check-messagebus"),
    CheckSpec("engine-messagebus-seen-by-redis", "Redis sees the engine on the bus (client and fresh heartbeat)", _E, "critical", MESSAGEBUS, "check-messagebus"),
    CheckSpec("service-health-answers", "Platform service health endpoint answers 200", _E, "critical", EMERGENCY_RESTART, "restart-container"),
    CheckSpec("port-open", "Platform port accepts TCP connections", _E, "critical", PORTS, "free-port"),
    CheckSpec("redis-ping", "Redis answers PING", _E, "critical", MESSAGEBUS, "restart-redis"),
    CheckSpec("postgres-ready", "PostgreSQL accepts a connection and answers SELECT 1", _E, "critical", DATABASE, "restart-postgres"),
)}


def check(check_id: str):
    """Mark a test as the implementation of catalog entry `check_id`, with its tiers."""
    spec = CATALOG[check_id]

    def decorate(fn):
        for tier in spec.tiers:
            fn = getattr(pytest.mark, tier)(fn)
        return pytest.mark.check(check_id)(fn)

    return decorate
