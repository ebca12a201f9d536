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


def test_engines_that_answer_but_fail_other_checks_are_not_down():
    # Seen on a deployment: five healthy engines off the bus read "5 engines down at once".
    off_bus = [Failure(check, "messagebus", "critical", engine) for engine in ("risk", "ml", "factor", "features", "ws")
               for check in ("engine-bus-connection", "engine-heartbeat-fresh", "engine-messagebus-flag")]
    found = level_for(off_bus)
    assert found.level == 1 and "down" not in found.why
    # ... and a /health field missing on three healthy engines gave Level 3.
    fields = [Failure("engine-health-values", "engine_health", "critical", e) for e in ("risk", "ml", "factor")]
    assert level_for(fields).level == 1


def test_each_way_an_engine_is_down_counts():
    down = [Failure("container-exists", "containers", "critical", "risk"),
            Failure("container-running", "containers", "critical", "ml"),
            Failure("container-not-restart-looping", "containers", "critical", "factor"),
            Failure("port-open", "ports", "critical", "features"),
            Failure("engine-health-answers", "engine_health", "critical", "ws"),
            Failure("engine-bus-connection", "messagebus", "critical", "strategy")]
    assert "5 engines down at once (factor, features, ml, risk, ws)" in level_for(down).why
