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


def test_engines_off_the_bus_are_named_so_not_down():
    off_bus = [Failure(check, "messagebus", "critical", engine) for engine in ("risk", "ml", "factor", "features", "ws")
               for check in ("engine-bus-connection", "engine-bus-idle")]
    assert level_for(off_bus).why == "5 engines off the bus (factor, features, ml, risk, ws)"
    assert level_for(off_bus[:1]).why == "1 engine off the bus (risk)"


def test_missing_fields_name_the_failing_check_and_its_engines():
    fields = [Failure("engine-health-values", "engine_health", "normal", e) for e in ("risk", "ml", "factor")]
    fields.append(Failure("engine-uptime", "engine_health", "normal", "ml"))
    assert level_for(fields).why == "engine-health-values (factor, ml, risk), engine-uptime (ml)"


def test_down_engines_are_down_and_the_others_are_named_for_what_they_fail():
    mixed = [Failure("container-running", "containers", "critical", "risk"),
             Failure("port-open", "ports", "critical", "ml"),
             Failure("engine-bus-connection", "messagebus", "critical", "ml"),  # down, so not "off the bus" too
             Failure("engine-heartbeat-fresh", "messagebus", "critical", "factor")]
    found = level_for(mixed)
    assert (found.level, found.why) == (3, "2 engines down at once (ml, risk): the guide's critical trigger; "
                                           "also 1 engine off the bus (factor)")
    one = level_for(mixed[:1] + mixed[3:])
    assert (one.level, one.why) == (1, "engine risk down (container-running); also 1 engine off the bus (factor)")
    with_redis = level_for([Failure("redis-ping", "infrastructure", "critical", None),
                            Failure("engine-bus-connection", "messagebus", "critical", "ml")])
    assert (with_redis.level, with_redis.why) == (2, "infrastructure: redis-ping; also 1 engine off the bus (ml)")
