"""Every engine's /health: answers, fast enough, healthy, up for a while, and its fields hold good values.

The health of all engines is sampled once, concurrently; each check here
judges one fact of one engine from that sample. Field paths come from the
inventory, so the guide's flat fields and the real engines' nested ones are
read the same way.
"""
from __future__ import annotations

from fixtures.spec import DAILY, EMERGENCY, check
from observation.jsonpath import MISSING, lookup
from observation.slow_answers import timing

from .guide import FULL_HEALTH, SLOW


def answered(engine, health_samples, verdict):
    __tracebackhide__ = True
    sample = health_samples[engine.name]
    verdict.evidence("health", sample.evidence())
    if sample.elapsed_ms is not None:
        verdict.measured("response_ms", sample.elapsed_ms)
    verdict.expect(sample.error is None, expected=f"GET {sample.url} to answer", seen=sample.error or "")
    return sample


def health_json(engine, health_samples, verdict) -> dict:
    __tracebackhide__ = True
    sample = answered(engine, health_samples, verdict)
    cut = " (cut at 1 MiB: the answer is larger; no health body is that big)" if sample.truncated else ""
    verdict.expect(sample.json is not None, expected="a JSON object from /health",
                   seen=f"HTTP {sample.status}{cut}: {sample.text[:200]!r}")
    return sample.json


def shown(value) -> str:
    return "no such field" if value is MISSING else repr(value)


def rule_breaches(body, rules) -> dict[str, str]:
    """Each dotted path whose value breaks its rule, with what it holds and what it must be (for /health and for
    a probe's answer alike).

    >>> from observation.inventory import ValueRule
    >>> rule_breaches({"a": {"b": 0}}, {"a.b": ValueRule(min=1), "c": ValueRule(equals=True)})
    {'a.b': '0 (must be at least 1)', 'c': 'no such field (must be True)'}
    """
    return {path: f"{shown(lookup(body, path))} ({problem})" for path, rule in rules.items()
            if (problem := rule.judge(lookup(body, path)))}


def rules_wanted(rules) -> str:
    return "; ".join(f"{path} {rule.model_dump(exclude_none=True)}" for path, rule in rules.items())


@check("engine-health-answers", "Engine /health answers 200", tiers=EMERGENCY, severity="critical",
       guide=FULL_HEALTH, remedy="restart-engine",
       needs=("container-running", "port-open"))
def test_engine_health_answers(engine, health_samples, verdict):
    sample = answered(engine, health_samples, verdict)
    verdict.expect(sample.status == 200, expected="HTTP 200", seen=f"HTTP {sample.status} in {sample.elapsed_ms} ms")


@check("engine-health-latency", "Engine /health answers within the slow threshold", tiers=DAILY,
       severity="normal", guide=SLOW, remedy="diagnose-engine",
       needs=("engine-health-answers",))
def test_engine_health_latency(engine, health_samples, inventory, verdict):
    sample = answered(engine, health_samples, verdict)
    limits = engine.limits(inventory.thresholds)
    level = ("CRITICAL" if sample.elapsed_ms > limits.response_critical_ms else
             "SLOW" if sample.elapsed_ms > limits.response_slow_ms else
             "MODERATE" if sample.elapsed_ms > limits.response_ok_ms else "FAST")
    verdict.expect(sample.elapsed_ms <= limits.response_slow_ms,
                   expected=f"an answer within {limits.response_slow_ms:g} ms",
                   seen=f"{timing(sample)}, {level}; critical above {limits.response_critical_ms:g} ms")


@check("engine-status-healthy", "Engine reports status healthy", tiers=EMERGENCY, severity="critical",
       guide=FULL_HEALTH, remedy="restart-engine",
       needs=("engine-health-answers",))
def test_engine_status_healthy(engine, health_samples, verdict):
    body = health_json(engine, health_samples, verdict)
    status = lookup(body, engine.health.status)
    verdict.expect(status in engine.health.healthy_values,
                   expected=f"{engine.health.status} in {engine.health.healthy_values}", seen=shown(status))


@check("engine-uptime", "Engine reports an uptime past the fresh-restart minimum", tiers=DAILY, severity="normal",
       guide=FULL_HEALTH, remedy="diagnose-startup", applies=lambda engine: engine.health.reports("uptime"),
       needs=("engine-health-answers",))
def test_engine_uptime(engine, health_samples, inventory, deploys, verdict):
    body = health_json(engine, health_samples, verdict)
    uptime = lookup(body, engine.health.uptime)
    verdict.expect(isinstance(uptime, (int, float)) and not isinstance(uptime, bool) and uptime >= 0,
                   expected=f"{engine.health.uptime} as a number of seconds", seen=shown(uptime))
    verdict.measured("uptime_s", uptime)
    minimum = engine.limits(inventory.thresholds).min_uptime_s
    deploy = deploys.get((engine.host, engine.container))
    if uptime < minimum and deploy:
        verdict.deploy(deploy)  # young because its container was recreated since the previous run: no silent restart
        return
    verdict.expect(uptime >= minimum, expected=f"an uptime of at least {minimum:g} s",
                   seen=f"{uptime:g} s: restarted recently (a silent restart or a crash?)")


@check("engine-health-values", "Engine health carries its engine-specific fields with good values", tiers=DAILY,
       severity="normal", guide=FULL_HEALTH, remedy="diagnose-engine",
       applies=lambda engine: bool(engine.health.expected or engine.health.rules),
       needs=("engine-health-answers",))
def test_engine_health_values(engine, health_samples, verdict):
    body = health_json(engine, health_samples, verdict)
    missing = [path for path in engine.health.expected if lookup(body, path) is MISSING]
    verdict.expect(not missing, expected=f"fields {engine.health.expected}", seen=f"missing {missing}")
    wrong = rule_breaches(body, engine.health.rules)
    verdict.expect(not wrong, expected=rules_wanted(engine.health.rules),
                   seen="; ".join(f"{p} = {v}" for p, v in wrong.items()))
