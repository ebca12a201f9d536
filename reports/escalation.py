"""The run's outcome mapped to the guide's escalation levels ("Emergency Contacts & Escalation").

Read only from what the checks attached to their reports (check id, area,
severity, engine), so it works the same for every report.

>>> level_for([Failure("engine-health-answers", "engine_health", "critical", "risk"),
...            Failure("container-running", "containers", "critical", "ml")]).level
3
>>> level_for([Failure("redis-ping", "infrastructure", "critical", None)]).name
'DevOps Engineer'
>>> level_for([]) is None
True
"""
from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class Failure:
    check_id: str
    area: str
    severity: str
    engine: str | None


@dataclass(frozen=True)
class Escalation:
    level: int
    name: str
    response: str
    why: str

    def line(self) -> str:
        return f"escalation: Level {self.level} - {self.name} (respond within {self.response}): {self.why}"


# The root causes that say an engine does not run or does not answer. An engine that answers and fails
# something else (a /health field missing, off the bus, slow) is not down, however critical that check is.
DOWN_CHECKS = frozenset({"container-exists", "container-running", "container-not-restart-looping", "port-open",
                         "engine-health-answers"})

# The checks that say an engine is off the message bus: it answers, but Redis does not see it (or it says so itself).
BUS_CHECKS = frozenset({"engine-messagebus-flag", "engine-bus-connection", "engine-bus-idle", "engine-heartbeat-fresh"})

LEVELS = {1: ("System Administrator", "15 minutes"), 2: ("DevOps Engineer", "30 minutes"),
          3: ("Platform Architect", "1 hour")}
SHOWN = 6  # checks named in one line


def _at(level: int, why: str) -> Escalation:
    return Escalation(level, *LEVELS[level], why)


def _engines(count: int) -> str:
    return f"{count} engine{'s' if count != 1 else ''}"


def _shown(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (" ..." if len(items) > SHOWN else "")


def engine_findings(failures: list[Failure], down: list[str]) -> list[str]:
    """What failed on the engines, in words: engines off the bus, then each other failing check with its engines.

    Only DOWN_CHECKS make an engine "down" (the caller says so); what an engine that answers fails is named as it is.

    >>> engine_findings([Failure("engine-bus-connection", "messagebus", "critical", "ml"),
    ...                  Failure("engine-uptime", "engine_health", "normal", "ml"),
    ...                  Failure("engine-uptime", "engine_health", "normal", "risk")], [])
    ['1 engine off the bus (ml)', 'engine-uptime (ml, risk)']
    """
    answering = [f for f in failures if f.engine and f.engine not in down]
    off_bus = sorted({f.engine for f in answering if f.check_id in BUS_CHECKS})
    found = [f"{_engines(len(off_bus))} off the bus ({', '.join(off_bus)})"] if off_bus else []
    by_check: dict[str, set[str]] = {}
    for f in answering:
        if f.check_id not in BUS_CHECKS:
            by_check.setdefault(f.check_id, set()).add(f.engine)
    return found + [f"{check} ({', '.join(sorted(engines))})" for check, engines in sorted(by_check.items())]


def level_for(failures: list[Failure]) -> Escalation | None:
    """The guide's level for a run's failures; None when nothing failed.

    Several engines down at once (DOWN_CHECKS among the root causes) is the guide's critical trigger (Level 3);
    infrastructure problems go to Level 2; a single engine's failure or a
    performance problem to Level 1. The reason names what failed: engines that answer but are off the bus are
    "off the bus", never "down".
    """
    if not failures:
        return None
    down = sorted({f.engine for f in failures if f.engine and f.check_id in DOWN_CHECKS})
    others = engine_findings(failures, down)
    also = f"; also {_shown(others)}" if others else ""
    if len(down) >= 2:
        return _at(3, f"{_engines(len(down))} down at once ({', '.join(down)}): the guide's critical trigger{also}")
    # A failure that concerns no engine is the platform's infrastructure (Redis, PostgreSQL, host, Docker, ports).
    infrastructure = sorted({f.check_id for f in failures if not f.engine and f.severity != "minor"})
    if infrastructure:
        if down:
            others = [f"engine {down[0]} down", *others]
        return _at(2, "infrastructure: " + _shown(infrastructure) + (f"; also {_shown(others)}" if others else ""))
    if down:
        checks = sorted({f.check_id for f in failures if f.engine == down[0]})
        return _at(1, f"engine {down[0]} down ({_shown(checks)})" + also)
    if not others:  # only minor failures that concern no engine
        return _at(1, "performance and maintenance checks: " + _shown(sorted({f.check_id for f in failures})))
    return _at(1, _shown(others))
