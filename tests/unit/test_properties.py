"""Property tests (hypothesis) for the parsers and the arithmetic of observation/, the pytest-free layer.

Each test states a property that holds for every input of its strategy; hypothesis looks for a counterexample.
The bugs these properties found are pinned by the plain examples at the end of the file.
"""
from __future__ import annotations

import json
import math
import re
import shlex
import string
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from unittest import mock
from urllib.parse import quote

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from observation.errors import Unobservable
from observation.inventory import (BusEvidence, DockerHost, Endpoint, Engine, HealthFields, Inventory, InventoryError,
                                   MetricsSpec, PostgresSpec, PrometheusSpec, RedisSpec, Service, Thresholds,
                                   Secrets, Timeouts, ValueRule, load_inventory)
from observation.jsonpath import MISSING, lookup
from observation.known_errors import known_errors, log_pattern
from observation.logs import HOURLY, scan_text
from observation.metrics import Metrics, MetricsUnreadable, read_metrics
from observation.plain_text import visible
from observation.postgres import connect_postgres
from observation.prometheus import instance_port, series_values
from observation.redact import MASK, Redactor, redact, redact_text
from observation.redis_bus import credentials_fix
from observation.stats import Usage, cpu_percent, growth_mb_per_min, memory_use

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET_ENV = "pw-for-properties-9Xk"
ENV = {"NAUTILUS_POSTGRES_PASSWORD": SECRET_ENV}
# What str.splitlines() splits on: a "line" holds none of these.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
LINE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS), max_size=40)


# -- inventory -------------------------------------------------------------------

@pytest.fixture(scope="module")
def inventory_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties") / "inventory.yaml"


def load_document(path: Path, document: dict) -> Inventory:
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_inventory(path, environ=ENV)


_MODELS = (Inventory, Thresholds, Engine, Service, DockerHost, RedisSpec, PostgresSpec, Timeouts, HealthFields,
           MetricsSpec, Endpoint, BusEvidence, ValueRule, PrometheusSpec)
# Real keys most of the time, so documents reach deep into the models; random ones too.
KNOWN_KEYS = sorted({name for model in _MODELS for name in model.model_fields}
                    | {"analytics", "risk", "factor", "ml", "backend", "frontend", "grafana", "redis", "postgres"})
YAML_KEY = st.one_of(st.sampled_from(KNOWN_KEYS), st.sampled_from(KNOWN_KEYS), st.text(max_size=12),
                     st.integers(-3, 70_000), st.booleans())
YAML_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.integers(-5, 70_000),
                        st.floats(), st.text(max_size=20),
                        st.sampled_from(["/", "/health", "unix:///var/run/docker.sock", "tcp://h:2376", "GET",
                                         "prometheus", "json", "local", "http://127.0.0.1:9090"]))
YAML_VALUE = st.recursive(YAML_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(YAML_KEY, inner, max_size=4)),
                          max_leaves=12)
SECTIONS = st.sampled_from(sorted(Inventory.model_fields))
YAML_DOCUMENT = st.dictionaries(st.one_of(SECTIONS, SECTIONS, YAML_KEY), YAML_VALUE, max_size=5)


def all_keys(node) -> set[str]:
    """Every mapping key in a document, as a one-line message shows it."""
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            keys.add(" ".join(str(key).split()) or repr(key))  # a blank key is shown quoted
            keys |= all_keys(value)
    elif isinstance(node, list):
        for value in node:
            keys |= all_keys(value)
    return keys


@SETTINGS
@given(document=YAML_DOCUMENT)
def test_any_document_is_an_inventory_or_one_line_naming_a_key(inventory_file, document):
    try:
        inventory = load_document(inventory_file, document)
    except InventoryError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1, message
        assert SECRET_ENV not in message
        prefix = f"{inventory_file}: "
        assert message.startswith(prefix), message
        named = message.removeprefix(prefix)
        # YAML reads some keys back otherwise than they were written (a NEL, U+0085, is a line break to it).
        as_read = all_keys(yaml.safe_load(inventory_file.read_text()) or {})
        candidates = {k for k in all_keys(document) | as_read | set(Inventory.model_fields) if k}
        candidates |= {repr(k) for k in candidates if not str(k).strip()}
        # Named where it is (`engines.risk.port: ...`), or shown as the value refused (a key that is no string).
        assert any(named.startswith(key) or f"(got {key})" in named for key in candidates), message
    else:
        assert isinstance(inventory, Inventory)


def _threshold_value(name: str):
    field = Thresholds.model_fields[name]
    low = 0 if any(getattr(m, "ge", None) == 0 for m in field.metadata) else 1
    ints = st.integers(low, 10**9)
    if field.annotation is int:
        return ints
    return st.one_of(ints, st.floats(0.0, 1e12, exclude_min=low == 1, allow_nan=False, allow_infinity=False))


THRESHOLD_OVERRIDES = st.lists(st.sampled_from(sorted(Thresholds.model_fields)), max_size=8, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({n: _threshold_value(n) for n in names}))
# The guide's ordered pairs: each lower limit must stay below its higher one.
ORDERED = (("cpu_warning_pct", "cpu_critical_pct"), ("memory_high_pct", "memory_warning_pct"),
           ("memory_warning_pct", "memory_critical_pct"), ("response_ok_ms", "response_slow_ms"),
           ("response_slow_ms", "response_critical_ms"),
           ("websocket_connections_warning", "websocket_connections_critical"),
           ("disk_warning_pct", "disk_critical_pct"), ("redis_memory_warning_pct", "redis_memory_critical_pct"),
           ("log_compress_after_days", "log_delete_after_days"))


def _ordered(values: dict) -> bool:
    return all(values[low] < values[high] for low, high in ORDERED)


@SETTINGS
@given(inventory_wide=THRESHOLD_OVERRIDES, risk=THRESHOLD_OVERRIDES)
def test_valid_thresholds_round_trip(inventory_file, inventory_wide, risk):
    defaults = Thresholds().model_dump()
    merged, merged_risk = {**defaults, **inventory_wide}, {**defaults, **inventory_wide, **risk}
    document = {"thresholds": inventory_wide, "engines": {"risk": {"thresholds": risk}}}
    if not (_ordered(merged) and _ordered(merged_risk)):
        with pytest.raises(InventoryError, match=r"thresholds: .* must be below "):
            load_document(inventory_file, document)
        return
    inventory = load_document(inventory_file, document)
    limits = inventory.engines["risk"].limits(inventory.thresholds)
    for name, field in Thresholds.model_fields.items():
        assert getattr(inventory.thresholds, name) == merged[name]
        assert getattr(limits, name) == merged_risk[name]
        assert type(getattr(limits, name)) is field.annotation
    assert inventory.engines["analytics"].limits(inventory.thresholds) == inventory.thresholds


# -- docker stats --------------------------------------------------------------------

U64 = st.integers(0, 2**64 - 1)


@st.composite
def cpu_stats(draw, consistent: bool, limit: int = 2**64 - 1):
    """A `docker stats` sample's CPU part. Consistent: the container's time never exceeds the host's (both counters
    sum over all CPUs), so usage delta <= system delta, and usage <= system since boot."""
    counter = st.integers(0, limit)
    if consistent:
        pre_system = draw(st.integers(0, limit // 2))
        pre_total = draw(st.integers(0, pre_system))
        system = pre_system + draw(st.integers(0, limit // 2))
        total = pre_total + draw(st.integers(0, system - pre_system))
    else:
        pre_system, pre_total, system, total = (draw(counter) for _ in range(4))
    usage: dict = {"total_usage": total}
    cpu: dict = {"cpu_usage": usage, "system_cpu_usage": system}
    pre: dict = {"cpu_usage": {"total_usage": pre_total}, "system_cpu_usage": pre_system}
    if draw(st.booleans()):
        cpu["online_cpus"] = draw(st.integers(1, 256))
    if draw(st.booleans()):  # cgroup v1 and old daemons: one counter per CPU
        usage["percpu_usage"] = draw(st.lists(counter, min_size=1, max_size=64))
    stats = {"cpu_stats": cpu, "precpu_stats": pre}
    # What the daemon omits: the first sample's precpu_stats, a stopped container's figures.
    shape = draw(st.sampled_from(["full", "no-precpu", "empty-precpu", "empty", "no-system"]))
    if shape == "no-precpu":
        del stats["precpu_stats"]
    elif shape == "empty-precpu":
        stats["precpu_stats"] = {}
    elif shape == "empty":
        stats = {}
    elif shape == "no-system" or not consistent and draw(st.booleans()):
        del cpu["system_cpu_usage"]
    if not consistent and draw(st.booleans()):
        pre.pop(draw(st.sampled_from(["cpu_usage", "system_cpu_usage"])), None)
    return stats


def _cpus(stats: dict) -> int:
    cpu = stats.get("cpu_stats") or {}
    return cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1


@SETTINGS
@given(stats=cpu_stats(consistent=True))
def test_cpu_percent_is_within_one_core_per_cpu(stats):
    pct = cpu_percent(stats)
    assert math.isfinite(pct) and 0.0 <= pct <= 100.0 * _cpus(stats)
    usage = Usage.of({**stats, "memory_stats": {"usage": 1, "limit": 2}})
    assert usage.cpu_pct == pct
    assert pct <= 100.0 * usage.online_cpus, "the evidence's CPU count must be the one the percentage used"


@SETTINGS
@given(stats=cpu_stats(consistent=False))
def test_cpu_percent_never_fails_on_any_counters(stats):
    pct = cpu_percent(stats)  # decreasing counters (a restart) and missing fields: no ZeroDivisionError
    assert math.isfinite(pct) and pct >= 0.0


def _docker_cli_cpu(stats: dict) -> float:
    """calculateCPUPercentUnix of the docker CLI (cli/command/container/stats_helpers.go)."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = float((cpu.get("cpu_usage") or {}).get("total_usage", 0)) - float(
        (pre.get("cpu_usage") or {}).get("total_usage", 0))
    system_delta = float(cpu.get("system_cpu_usage", 0)) - float(pre.get("system_cpu_usage", 0))
    online = float(cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []))
    return cpu_delta / system_delta * online * 100.0 if system_delta > 0 and cpu_delta > 0 else 0.0


@SETTINGS
@given(stats=cpu_stats(consistent=False, limit=2**52))
def test_cpu_percent_is_the_docker_clis(stats):
    cpu = stats.get("cpu_stats") or {}
    assume(cpu.get("online_cpus") or (cpu.get("cpu_usage") or {}).get("percpu_usage"))  # else the CLI shows 0
    assert cpu_percent(stats) == pytest.approx(_docker_cli_cpu(stats), rel=1e-12, abs=0.05 + 1e-9)


@st.composite
def memory_stats(draw, consistent: bool):
    limit = draw(st.integers(1, 2**63))
    usage = draw(st.integers(0, limit)) if consistent else draw(U64)
    detail = {}
    for key in ("total_inactive_file", "inactive_file", "active_anon"):
        if draw(st.booleans()):
            detail[key] = draw(st.one_of(st.integers(0, usage + 1), U64))
    memory = {"usage": usage, "limit": limit, "stats": detail}
    for key in draw(st.sets(st.sampled_from(["usage", "limit", "stats"]))) if not consistent else ():
        del memory[key]
    return {"memory_stats": memory}


def _docker_cli_memory_used(memory: dict) -> int:
    """calculateMemUsageUnixNoCache of the docker CLI: cgroup v1's total_inactive_file, else v2's inactive_file."""
    detail, usage = memory.get("stats") or {}, memory["usage"]
    if "total_inactive_file" in detail and detail["total_inactive_file"] < usage:
        return usage - detail["total_inactive_file"]
    if detail.get("inactive_file", 0) < usage:
        return usage - detail.get("inactive_file", 0)
    return usage


@SETTINGS
@given(stats=memory_stats(consistent=True))
def test_memory_is_the_docker_clis_and_a_percentage(stats):
    memory = stats["memory_stats"]
    assert memory_use(stats) == (_docker_cli_memory_used(memory), memory["limit"])
    usage = Usage.of(stats)
    assert math.isfinite(usage.memory_pct) and 0.0 <= usage.memory_pct <= 100.0
    assert 0.0 <= usage.memory_used_mb


@SETTINGS
@given(stats=memory_stats(consistent=False))
def test_memory_never_fails_on_missing_figures(stats):
    usage = Usage.of(stats)
    memory = stats["memory_stats"]
    if "usage" in memory and memory.get("limit"):
        assert math.isfinite(usage.memory_pct) and usage.memory_pct >= 0.0
    else:
        assert usage.memory_pct is None and usage.memory_used is None


@SETTINGS
@given(first=memory_stats(consistent=True), second=memory_stats(consistent=True),
       t1=st.floats(0, 1e7), gap=st.one_of(st.floats(-1e3, 0), st.floats(1e-3, 1e6)))
def test_memory_growth_is_finite_or_none(first, second, t1, gap):
    growth = growth_mb_per_min(Usage.of(first, t1), Usage.of(second, t1 + gap))
    if t1 + gap <= t1:
        assert growth is None
    else:
        assert math.isfinite(growth)


# -- metrics: Prometheus text, JSON and the API's values ------------------------------

METRIC_NAME = st.from_regex(r"m_[a-z][a-z0-9]{0,8}", fullmatch=True)
LABEL_NAME = st.from_regex(r"l_[a-z0-9_]{0,6}", fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@st.composite
def exposition(draw):
    """Valid Prometheus text and, per family, the exposition name, its type and its samples' values."""
    names = draw(st.lists(METRIC_NAME, min_size=1, max_size=5, unique=True))
    lines, families = [], []
    for name in names:
        kind = draw(st.sampled_from(["counter", "gauge", "untyped"]))
        exposed = f"{name}_total" if kind == "counter" else name
        if draw(st.booleans()):
            help_text = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
            lines.append(f"# HELP {exposed} " + help_text.replace("\\", "\\\\").replace("\n", "\\n"))
        lines.append(f"# TYPE {exposed} {kind}")
        values = []
        for _ in range(draw(st.integers(1, 4))):
            labels = draw(st.dictionaries(LABEL_NAME, st.text(st.characters(blacklist_categories=("Cs",)),
                                                              max_size=10), max_size=3))
            value = draw(st.one_of(FINITE, st.integers(-2**53, 2**53).map(float)))
            shown = "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items()) + "}" if labels else ""
            stamp = f" {draw(st.integers(0, 2**41))}" if draw(st.booleans()) else ""
            lines.append(f"{exposed}{shown} {value!r}{stamp}")
            values.append(value)
        families.append((name, exposed, values))
    return "\n".join(lines) + "\n", families


@SETTINGS
@given(generated=exposition())
def test_valid_exposition_parses_back_to_its_values(generated):
    text, families = generated
    metrics = read_metrics(text, "prometheus")
    for name, exposed, values in families:
        total = 0.0
        for value in values:  # summed over label sets, in order, as the reader sums
            total += value
        assert metrics.has(exposed)
        assert metrics.value(exposed) == total
        assert metrics.value(name) == total  # a counter answers with or without _total


PROMETHEUS_TEXT = st.one_of(
    TEXT, st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    st.lists(st.one_of(st.sampled_from(["# TYPE m counter", "# HELP m x", "m 1", 'm{a="b"} 2', "m{", "m{a=}",
                                        '{a="b"} 1', "m NaN", "m +Inf", "m 1 2 3", "# EOF", "m_total 1e400",
                                        "m{le=\"1\"} 1", "m{quantile=\"0.5\"} 1", "# TYPE m summary", "\\", "\x00"]),
                       LINE_TEXT), max_size=6).map("\n".join))


@SETTINGS
@given(text=PROMETHEUS_TEXT, name=TEXT)
def test_any_text_is_metrics_or_metrics_unreadable(text, name):
    try:
        metrics = read_metrics(text, "prometheus")
    except MetricsUnreadable as exc:
        assert len(str(exc).splitlines()) == 1
        return
    assert isinstance(metrics, Metrics) and metrics.families
    found = metrics.value(name)
    assert found is None or isinstance(found, float)
    assert isinstance(metrics.has(name), bool) and isinstance(metrics.names(), list)


JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=15)
# Dotted paths with index-looking parts: signs, non-ASCII digits, digits beyond int()'s limit.
PATH_PART = st.one_of(st.text(max_size=6), st.integers(-6, 6).map(str), st.text("-0123456789²٣", max_size=5),
                      st.just("9" * 5000))
DOTTED_PATH = st.lists(PATH_PART, min_size=1, max_size=4).map(".".join)


@SETTINGS
@given(body=st.one_of(JSON_VALUE, TEXT), path=DOTTED_PATH)
def test_any_json_body_is_metrics_or_metrics_unreadable(body, path):
    try:
        metrics = read_metrics(body, "json")
    except MetricsUnreadable as exc:
        assert len(str(exc).splitlines()) == 1
        return
    found = metrics.value(path)
    assert found is None or (isinstance(found, float) and math.isfinite(found))
    assert isinstance(metrics.has(path), bool)


@SETTINGS
@given(document=JSON_VALUE, path=DOTTED_PATH)
def test_lookup_never_raises(document, path):
    lookup(document, path)  # a value of the document or MISSING, whatever the path: never an exception


@SETTINGS
@given(items=st.lists(JSON_VALUE, min_size=1, max_size=5), data=st.data())
def test_lookup_indexes_lists_like_python(items, data):
    index = data.draw(st.integers(-len(items), len(items) - 1))
    assert lookup({"items": items}, f"items.{index}") is items[index]
    outside = data.draw(st.one_of(st.integers(len(items), 10**30), st.integers(-10**30, -len(items) - 1)))
    assert lookup({"items": items}, f"items.{outside}") is MISSING


PROMETHEUS_VALUE = st.one_of(FINITE.map(repr), st.integers(-10**6, 10**6).map(str),
                             st.sampled_from(["NaN", "+Inf", "-Inf"]))


@SETTINGS
@given(points=st.lists(st.tuples(st.floats(0, 2e9), PROMETHEUS_VALUE), max_size=20))
def test_series_values_keep_exactly_the_finite_points(points):
    kept = series_values({"metric": {}, "values": [[t, v] for t, v in points]})
    assert kept == [(t, float(v)) for t, v in points if math.isfinite(float(v))]


@SETTINGS
@given(head=TEXT, port=st.one_of(st.integers(0, 65535).map(str), TEXT, st.text("0123456789²٣", max_size=6),
                                 st.just("9" * 5000)))
def test_instance_port_is_an_ascii_port_or_none(head, port):
    found = instance_port(f"{head}:{port}")
    if head and re.fullmatch(r"[0-9]{1,5}", port):
        assert found == int(port)
    else:
        assert found is None or (isinstance(found, int) and 0 <= found <= 99_999)


# -- logs: the Knowledge Base's signatures --------------------------------------------

WITH_LOGS = tuple(e for e in known_errors() if e.logs)
DECORATION = st.one_of(LINE_TEXT, st.sampled_from(["\x1b[31m", "\x1b[0m", "\x1b[1;33m", "<b>", "</span>", "&amp;",
                                                   "<script>", "é", "日本語", "\u200b", "\ufeff", "ERROR ", "\t",
                                                   '{"level": "error", "msg": "', "2024-01-01T00:00:00Z "]))
SURROUNDING = st.lists(DECORATION, max_size=4).map("".join)
# Every signature needs one of these words (case-insensitive): a line with none of them cannot match any.
SIGNATURE_WORDS = ("already", "daemon", "space", "enospc", "bus", "database", "expired", "server", "memory",
                   "health", "messagepriority")
NEAR_MISSES = st.sampled_from(["port", "in use", "docker", "connect", "connection", "timeout", "timed out", "error",
                               "failed", "import", "ImportError", "message", "limit", "exceeded", "device", "check",
                               "out of", "TypeError", "unexpected keyword", "client_id", "left on", "priority"])


def _random_case(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if c.isascii() and flip else c.lower() if c.isascii() else c
                   for c, flip in zip(text, flips + [False] * len(text)))


@SETTINGS
@given(entry=st.sampled_from(WITH_LOGS), before=SURROUNDING, after=SURROUNDING,
       flips=st.lists(st.booleans(), max_size=80), noise=st.lists(LINE_TEXT, max_size=3))
def test_a_known_error_text_is_found_whatever_surrounds_it(entry, before, after, flips, noise):
    line = before + _random_case(entry.error, flips) + after
    assert entry.in_line(line)
    assert log_pattern().search(line)
    scan = scan_text("\n".join([*noise, line, *noise]), HOURLY)
    assert entry.id in [hit.error.id for hit in scan.known]


@SETTINGS
@given(parts=st.lists(st.one_of(NEAR_MISSES, LINE_TEXT, DECORATION), max_size=8))
def test_a_line_without_any_signature_is_not_matched(parts):
    line = " ".join(parts)
    assume(not any(re.search(word, line, re.IGNORECASE) for word in SIGNATURE_WORDS))
    assert log_pattern().search(line) is None
    assert scan_text(line, HOURLY).known == ()


def test_a_one_megabyte_line_is_scanned_once_without_blowing_up():
    # Each signature's opening words repeated, never completed: the worst case for `.*` between two phrases.
    unit = "connection to server could not connect to server message bus connection health check time 1234 "
    line = (unit * (2**20 // len(unit) + 1))[:2**20]
    scan = scan_text(line, HOURLY)
    assert scan.lines == 1 and scan.known == ()


# -- redaction ---------------------------------------------------------------------------

# A secret holding the mask's own character could be spelled by the mask itself ("***"), whatever is masked.
SECRET = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="*"), min_size=4, max_size=20) \
    .filter(lambda s: s.strip())
SECRET_WORD = st.sampled_from(["PASSWORD", "password", "Passwd", "SECRET", "client_secret", "TOKEN", "access_token",
                               "API_KEY", "api-key", "apikey", "CREDENTIALS", "DSN", "PRIVATE_KEY", "private-key"])
SECRET_KEY = st.builds(lambda a, w, b: a + w + b, st.from_regex(r"[A-Za-z0-9_.-]{0,6}", fullmatch=True),
                       SECRET_WORD, st.from_regex(r"[A-Za-z0-9_.-]{0,6}", fullmatch=True))


def strings_in(node) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(node, (list, tuple)):
        return [s for v in node for s in strings_in(v)]
    return [node] if isinstance(node, str) else []


@SETTINGS
@given(secret=SECRET, others=st.lists(SECRET, max_size=2), pieces=st.lists(TEXT, min_size=1, max_size=4))
def test_a_known_secret_never_survives_anywhere_in_text(secret, others, pieces):
    text = secret.join(pieces) if len(pieces) > 1 else pieces[0] + secret
    redactor = Redactor([secret, *others])
    out = redactor.redact_text(text)
    assert secret not in out
    redacted = redactor.redact({"note": text, "list": [text, (text,)]})
    # The keys are the test's own words (a secret may be spelt like one): only the values it redacted are searched.
    assert not any(secret in s for s in strings_in(list(redacted.values())))


@SETTINGS
@given(key=SECRET_KEY, secret=SECRET, neighbours=st.lists(
    st.tuples(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), LINE_TEXT), max_size=3))
def test_a_secret_in_an_env_line_never_survives(key, secret, neighbours):
    neighbours = [(k, v) for k, v in neighbours if not re.search(r"passw|secret|token|api|credential|dsn|private", k,
                                                                  re.IGNORECASE)]
    assume(not any(secret in v or secret in k for k, v in neighbours))
    assume(secret not in key)  # a value spelled inside its own key's name (PASSWORD0000=0000) stays in the name
    env = [f"{k}={v}" for k, v in neighbours] + [f"{key}={secret}"]
    assert secret not in redact_text("\n".join(env))
    # The keys Config and Env are the test's own words (a secret may be spelt inside them): the values are searched.
    assert not any(secret in s for s in strings_in(redact({"Config": {"Env": env}})["Config"]["Env"]))


SCHEME = st.from_regex(r"[a-z][a-z0-9+.-]{0,10}", fullmatch=True)
USER = st.from_regex(r"[A-Za-z0-9._~-]{0,8}", fullmatch=True)
HOST = st.from_regex(r"[a-z0-9.-]{1,12}(:[0-9]{1,5})?", fullmatch=True)
# RFC 3986 userinfo characters that may stand unencoded (no "*": see SECRET), and "@" that people write anyway.
RAW_SECRET = st.text(string.ascii_letters + string.digits + "-._~!$&'()+,;=:@", min_size=4, max_size=16)


@SETTINGS
@given(scheme=SCHEME, user=USER, secret=st.one_of(SECRET, RAW_SECRET), host=HOST, before=TEXT, after=TEXT,
       encoded=st.booleans())
def test_a_password_in_a_url_never_survives(scheme, user, secret, host, before, after, encoded):
    shown = quote(secret, safe="") if encoded or not re.fullmatch(r"[A-Za-z0-9._~!$&'()+,;=:@-]+", secret) else secret
    rest = f"{before} {scheme}://{user}: @{host}/nautilus?sslmode=disable {after}"
    assume(secret not in rest and shown not in rest)  # nothing else spells the secret
    out = redact_text(f"{before} {scheme}://{user}:{shown}@{host}/nautilus?sslmode=disable {after}")
    assert secret not in out and shown not in out


class _Around:
    """Where the secret goes inside a text: before + secret + after."""

    def __init__(self, before: str, after: str):
        self.before, self.after = before, after


@st.composite
def nested_with_secrets(draw):
    """(structure, secret): the secret held, in any shape, under secret-looking keys somewhere in nested data."""
    secret = draw(SECRET)
    slot = object()
    holder = st.one_of(st.just(slot), st.builds(_Around, TEXT, TEXT),
                       st.lists(st.just(slot), min_size=1, max_size=2), st.dictionaries(TEXT, st.just(slot),
                                                                                       min_size=1, max_size=2))
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), TEXT, st.builds(lambda k, v: {k: v}, SECRET_KEY, holder))
    tree = draw(st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.lists(inner, max_size=3).map(tuple),
                                                           st.dictionaries(TEXT, inner, max_size=3)),
                             max_leaves=10))
    tree = {"outer": [tree, {draw(SECRET_KEY): draw(holder)}]}
    assume(not any(secret in s for s in strings_in(tree)))  # only the filled-in places hold it

    def fill(node):
        if node is slot:
            return secret
        if isinstance(node, _Around):
            return node.before + secret + node.after
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return type(node)(fill(v) for v in node)
        return node
    return fill(tree), secret


@SETTINGS
@given(generated=nested_with_secrets())
def test_secrets_under_secret_keys_never_survive_nesting(generated):
    structure, secret = generated
    assert not any(secret in s for s in strings_in(redact(structure)))


FRAGMENT = st.one_of(
    TEXT, SECRET, st.builds("{}={}".format, SECRET_KEY, SECRET), st.builds('"{}": "{}"'.format, SECRET_KEY, TEXT),
    st.builds("{}://{}:{}@{}".format, SCHEME, USER, RAW_SECRET, HOST), st.builds("Authorization: Bearer {}".format, TEXT),
    st.sampled_from([MASK, "password=***", "=", ":", "@", "://", '"', "'", ",", ";", "&", "}", " ", "\n"]))


@SETTINGS
@given(parts=st.lists(FRAGMENT, max_size=8), secrets=st.lists(SECRET, max_size=2))
def test_redaction_is_idempotent(parts, secrets):
    redactor = Redactor(secrets)
    text = "".join(parts)
    once = redactor.redact_text(text)
    assert redactor.redact_text(once) == once
    document = {"text": text, "password": text or "x", "list": parts}
    assert redactor.redact(redactor.redact(document)) == redactor.redact(document)


# Every pattern needs one of these (case-insensitive): text with none of them has nothing to redact.
REDACTION_TRIGGERS = ("passw", "secret", "token", "api", "credential", "dsn", "private", "authorization", "://")


@SETTINGS
@given(parts=st.lists(st.one_of(TEXT, st.sampled_from(["pass", "passage", "user=nautilus", "host=db", "port=5432",
                                                       "key: value", "Bearer x", "auth", "@", "http:/", "a:b@c",
                                                       '{"status": "healthy"}', "=", ":"])), max_size=8),
       secret=SECRET)
def test_text_without_secrets_is_unchanged(parts, secret):
    text = " ".join(parts)
    assume(not any(re.search(re.escape(t), text, re.IGNORECASE) for t in REDACTION_TRIGGERS))
    assert redact_text(text) == text
    assume(secret not in text)
    assert Redactor([secret]).redact_text(text) == text



# A value each form below must hide whole. Spaces, quotes and the delimiters come often; every value holds one
# character the kept text of no form has (a backslash, a non-ASCII letter), so a value seen in the output is a
# leak, never a coincidence with the text around it.
VALUE_CHAR = st.one_of(st.sampled_from(" \"'\\=:,;&{}[]#?@%"),
                       st.characters(blacklist_categories=("Cs",), blacklist_characters="*\r\n"))
ODD = "\\é€😀"


def values(chars=VALUE_CHAR):
    return st.builds(lambda text, odd, at: text[:at] + odd + text[at:],
                     st.text(chars, min_size=3, max_size=20), st.sampled_from(ODD), st.integers(0, 20))


def _double_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _libpq_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# (text holding the value, what must come out): the value gone and the text around it as it was.
SECRET_FORMS = {
    "quoted env": lambda key, v: (f"{key}={_double_quoted(v)} DEBUG=1", f"{key}={MASK} DEBUG=1"),
    "shell-quoted env": lambda key, v: (f"export {key}={shlex.quote(v)}", f"export {key}={MASK}"),
    "JSON": lambda key, v: (json.dumps({key: v, "user": "u"}, ensure_ascii=False), f'{{"{key}": {MASK}, "user": "u"}}'),
    "JSON escaped": lambda key, v: (json.dumps({key: v, "user": "u"}), f'{{"{key}": {MASK}, "user": "u"}}'),
    "Env in JSON": lambda key, v: (json.dumps({"Env": [f"{key}={v}", "DEBUG=1"]}, ensure_ascii=False),
                                   json.dumps({"Env": [f"{key}={MASK}", "DEBUG=1"]})),
    "URL userinfo": lambda key, v: (f"postgresql://nautilus:{quote(v, safe='')}@db:5432/n",
                                    f"postgresql://nautilus:{MASK}@db:5432/n"),
    "URL query": lambda key, v: (f"https://db/login?{key}={quote(v, safe='')}&next=1",
                                 f"https://db/login?{key}={MASK}&next=1"),
    "conninfo": lambda key, v: (f"host=db {key}={_libpq_quoted(v)} dbname=n", f"host=db {key}={MASK} dbname=n"),
}


@SETTINGS
@pytest.mark.parametrize("form", sorted(SECRET_FORMS))
@given(key=SECRET_KEY, value=values())
def test_a_secret_value_is_masked_whole_in_every_form(form, key, value):
    text, expected = SECRET_FORMS[form](key, value)
    out = redact_text(text)
    assert value not in out and quote(value, safe="") not in out
    assert out == expected


# Unquoted, a value ends where another `word=`/`word:` key starts (`KEY=value DEBUG=1`), so it holds neither sign;
# blanks before it are the separator's.
@SETTINGS
@given(key=SECRET_KEY, value=values(VALUE_CHAR.filter(lambda c: c not in "=:")).filter(lambda v: not v[0].isspace()))
def test_a_secret_value_at_the_end_of_an_env_line_is_masked_whole(key, value):
    out = redact_text(f"HOME=/root\n{key}={value}\nPATH=/usr/bin")
    assert value not in out
    assert out == f"HOME=/root\n{key}={MASK}\nPATH=/usr/bin"


# Prose that names secrets without holding one: the suite's own advice is made of these.
PROSE_WORD = st.sampled_from(["the", "no", "set", "a", "to", "it", "is", "check", "sent", "suite", "inventory", "names",
                              "variable", "holding", "requires", "nothing", "restart", "(or", "its", "_FILE)", "user",
                              "password", "passwords", "password,", "secret", "secrets;", "token", "token.", "key",
                              "api", "private", "credentials", "dsn", "Redis", "PostgreSQL", "requirepass", "-", ";"])
SECRET_NAME_WORD = st.one_of(
    st.from_regex(r"(NAUTILUS_)?(POSTGRES_|REDIS_)?(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|DSN)(_FILE)?", fullmatch=True),
    st.from_regex(r"(redis|postgres|engines\.risk)\.(password|secret|token|api_key)(_env|_file)?", fullmatch=True))
COLON_WORD = st.sampled_from(["password:", "passwords:", "secret:", "token:", "key:", "Password:", "note:"])
# A line never starts with a key (`password: ...`, YAML) nor a list item (`- password: ...`).
PROSE_LINE = st.builds(lambda first, rest: " ".join([first, *rest]),
                       st.one_of(PROSE_WORD.filter(lambda w: w != "-"), SECRET_NAME_WORD),
                       st.lists(st.one_of(PROSE_WORD, SECRET_NAME_WORD, COLON_WORD), max_size=12))


@SETTINGS
@given(lines=st.lists(PROSE_LINE, min_size=1, max_size=3), secret=values())
def test_prose_naming_secrets_is_unchanged(lines, secret):
    text = "\n".join(lines)
    assert redact_text(text) == text
    assert Redactor([secret]).redact_known(text) == text


def _postgres_fix(password_env: str, user: str) -> str:
    """The fix connect_postgres gives for a refused password."""
    inventory = SimpleNamespace(
        postgres=SimpleNamespace(host="db", port=5432, dbname="n", user=user, password_env=password_env,
                                 container="nautilus-postgres"),
        timeouts=SimpleNamespace(connect_s=1.0, read_s=1.0), secrets=Secrets("pw"))
    refused = psycopg.OperationalError(f'FATAL:  password authentication failed for user "{user}"')
    with mock.patch("observation.postgres.psycopg.connect", side_effect=refused):
        with pytest.raises(Unobservable) as caught:
            connect_postgres(inventory)
    return caught.value.fix


@SETTINGS
@given(password_env=st.one_of(st.none(), st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True)),
       user=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), secrets=st.lists(values(), max_size=2))
def test_the_suites_advice_is_shown_as_written(password_env, user, secrets):
    redactor = Redactor(secrets)
    for fix in (credentials_fix(password_env), _postgres_fix(password_env or "NAUTILUS_POSTGRES_PASSWORD", user)):
        assert redactor.redact_known(fix) == fix  # the path advice takes to a report (fixtures/plugin.py)
        assert redactor.redact_text(fix) == fix


# -- plain text --------------------------------------------------------------------------

ANY_TEXT = st.text(st.one_of(st.characters(max_codepoint=0xA0), st.characters(blacklist_categories=("Cs",))),
                   max_size=60)


@SETTINGS
@given(text=ANY_TEXT)
def test_visible_shows_every_control_character_but_tab_and_newline(text):
    shown = visible(text)
    assert not [c for c in shown if unicodedata.category(c) == "Cc" and c not in "\n\t"]
    controls = [c for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"]
    assert len(shown) == len(text) + 3 * len(controls)  # each becomes \xNN
    assert visible(shown) == shown  # idempotent: what it writes holds no control character
    if not controls:
        assert shown == text


# -- the bugs these properties found -------------------------------------------------------

def test_a_blank_key_is_named_quoted(inventory_file):
    with pytest.raises(InventoryError, match=r"inventory.yaml: '': unknown key$"):
        load_document(inventory_file, {"": []})


def test_usage_counts_the_cpus_its_percentage_used():
    stats = {"cpu_stats": {"cpu_usage": {"total_usage": 75, "percpu_usage": [0, 0, 0, 0]}, "system_cpu_usage": 100},
             "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0},
             "memory_stats": {"usage": 1, "limit": 2}}
    usage = Usage.of(stats)
    assert (usage.cpu_pct, usage.online_cpus) == (300.0, 4)  # was 1 CPU online beside 300 % of one core


def test_cgroup_v1_inactive_file_over_usage_falls_back_to_v2_like_the_cli():
    stats = {"memory_stats": {"usage": 300, "limit": 1000, "stats": {"total_inactive_file": 400, "inactive_file": 100}}}
    assert memory_use(stats) == (200, 1000)  # was (300, 1000)


@pytest.mark.parametrize("part", ["--1", "-", "²", "٣", "9" * 5000, "+1", " 1"])
def test_only_an_ascii_integer_indexes_a_list(part):
    assert lookup({"items": [1, 2, 3, 4]}, f"items.{part}") is MISSING  # "--1", "²", 5000 digits raised ValueError


@pytest.mark.parametrize("instance", ["engine:²", "engine:" + "9" * 5000, "engine:123456"])
def test_an_instance_without_an_ascii_port_has_none(instance):
    assert instance_port(instance) is None


def test_the_database_timeout_signature_still_spans_a_psql_message():
    entry = next(e for e in known_errors() if e.id == "database-connection-timeout")
    assert entry.in_line('psql: error: connection to server at "postgres" (172.18.0.3), port 5432 failed: '
                         "timeout expired")
    assert entry.in_line("could not connect to server: Connection timed out")


@pytest.mark.parametrize("text,expected", [
    ("POSTGRES_PASSWORD=;abcd", "POSTGRES_PASSWORD=***"),  # a value starting with a delimiter was left whole
    ("TOKEN=&x-y", "TOKEN=***"),
    ('PASSWD:""0', "PASSWD:***"),  # a quoted part then more: the rest was shown, and masked only by a second pass
    ('{"password": "a\\"b", "user": "u"}', '{"password": ***, "user": "u"}'),  # an escaped quote ended it
])
def test_secret_values_starting_or_going_on_oddly_are_masked_whole(text, expected):
    assert redact_text(text) == expected
    assert redact_text(expected) == expected
