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

LEVELS = {1: ("System Administrator", "15 minutes"), 2: ("DevOps Engineer", "30 minutes"),
          3: ("Platform Architect", "1 hour")}


def _at(level: int, why: str) -> Escalation:
    return Escalation(level, *LEVELS[level], why)


def level_for(failures: list[Failure]) -> Escalation | None:
    """The guide's level for a run's failures; None when nothing failed.

    Several engines down at once (DOWN_CHECKS among the root causes) is the guide's critical trigger (Level 3);
    infrastructure problems go to Level 2; a single engine's failure or a
    performance problem to Level 1.
    """
    if not failures:
        return None
    down = sorted({f.engine for f in failures if f.engine and f.check_id in DOWN_CHECKS})
    if len(down) >= 2:
        return _at(3, f"{len(down)} engines down at once ({', '.join(down)}): the guide's critical trigger")
    # A failure that concerns no engine is the platform's infrastructure (Redis, PostgreSQL, host, Docker, ports).
    infrastructure = sorted({f.check_id for f in failures if not f.engine and f.severity != "minor"})
    if infrastructure:
        return _at(2, "infrastructure: " + ", ".join(infrastructure[:6]) + (" ..." if len(infrastructure) > 6 else ""))
    engines = sorted({f.engine for f in failures if f.engine})
    what = f"engine {engines[0]}" if len(engines) == 1 else "engine and performance checks"
    return _at(1, f"{what}: " + ", ".join(sorted({f.check_id for f in failures})[:6]))
