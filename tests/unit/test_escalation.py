"""The guide's escalation levels, from a run's failures."""
from reports.escalation import Failure, level_for


def test_several_engines_down_is_level_3():
    found = level_for([Failure("engine-health-answers", "engine_health", "critical", "risk"),
                       Failure("port-open", "ports", "critical", "ml"),
                       Failure("engine-health-latency", "engine_health", "normal", "factor")])
    assert (found.level, found.name) == (3, "Platform Architect")
    assert "2 engines down at once (ml, risk)" in found.line()


def test_infrastructure_is_level_2_and_one_engine_is_level_1():
    assert level_for([Failure("container-running", "containers", "critical", None)]).level == 2
    one = level_for([Failure("engine-health-answers", "engine_health", "critical", "risk"),
                     Failure("container-running", "containers", "critical", "risk")])
    assert (one.level, one.response) == (1, "15 minutes") and "engine risk" in one.why


def test_a_slow_engine_is_level_1_and_a_clean_run_escalates_nothing():
    assert level_for([Failure("engine-health-latency", "engine_health", "normal", "ml")]).level == 1
    assert level_for([]) is None
