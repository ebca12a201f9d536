"""Advice fits the deployment: a Redis or PostgreSQL that runs without Docker is never told to a Docker command.

The helpers run against inventories without Docker (a host with `docker: false`, or a service naming no
container) with a Docker factory that fails the test if it is ever called, as in test_process_engines.
"""
from __future__ import annotations

import re

import pytest

from checks import test_infrastructure  # noqa: F401  (registers redis-ping and postgres-ready)
from fixtures.judgement import fix_for
from fixtures.spec import REGISTRY
from observation.http import HttpSample
from observation.inventory import load_inventory
from remediation.context import Context
from remediation.errors import RemediationError
from remediation.registry import HELPERS

ENV = {"NAUTILUS_POSTGRES_PASSWORD": "unit-test-password"}  # long: masking it hides no word
# What only a Docker deployment can act on: a Docker command, or a helper that restarts or starts a container.
DOCKER_WORDS = re.compile(r"docker (logs|restart|start|compose|exec)|docker-compose|systemctl start docker|"
                          r"restart-redis|restart-postgres|start-container|create-container|Redis container")
NO_DOCKER_HOST = "hosts: [{name: box, docker: false}]\nengines: {ml: {port: 8400}}\n"
# Docker runs on the host, but Redis and PostgreSQL are the machine's own services, and the engine a process.
NO_REDIS_CONTAINER = ("services: {redis: {container: null}, postgres: {container: null}}\n"
                      "engines: {ml: {port: 8400, docker: false}}\n")


def no_docker(host):
    raise AssertionError(f"a helper asked Docker on host {host.name}, where Redis runs without it")


def inventory_of(tmp_path, text: str):
    (tmp_path / "inv.yaml").write_text(text)
    return load_inventory(tmp_path / "inv.yaml", environ=ENV)


def check_messagebus_with_redis_down(tmp_path, monkeypatch, inventory) -> list[str]:
    monkeypatch.setattr("remediation.messagebus.redis_view", lambda ctx, engine: {"error": "no answer (refused)"})
    monkeypatch.setattr("remediation.messagebus.request", lambda *a, **k: HttpSample("u", error="connection refused"))
    monkeypatch.setattr("observation.processes.look", lambda engine, inventory: "ml: no process listens on 8400")
    said: list[str] = []
    ctx = Context(inventory, docker_factory=no_docker, out=said.append, audit_path=tmp_path / "audit.log")
    assert HELPERS["check-messagebus"].run(ctx, "ml", False) == 0
    return said


@pytest.mark.parametrize("text, why", [(NO_DOCKER_HOST, "host 'box' has docker: false"),
                                       (NO_REDIS_CONTAINER, "services.redis names no container")])
def test_check_messagebus_with_redis_down_and_no_docker_names_its_service_manager(tmp_path, monkeypatch, text, why):
    said = check_messagebus_with_redis_down(tmp_path, monkeypatch, inventory_of(tmp_path, text))
    assert said[0].startswith(f"check-messagebus ml: Redis 127.0.0.1:6379 (no container: {why}), engine ml "
                              "(a plain process)")
    assert "verdict: Redis does not answer, so no engine is on the bus" in said
    advice = [line for line in said if line.startswith("advice: Redis at 127.0.0.1:6379 runs without a container")]
    assert len(advice) == 1 and "sudo systemctl start redis-server" in advice[0] and "journalctl -u" in advice[0]
    assert not [line for line in said if DOCKER_WORDS.search(line)], said


def test_restart_redis_and_restart_postgres_without_a_container_refuse_naming_the_service_manager(tmp_path):
    for text in (NO_DOCKER_HOST, NO_REDIS_CONTAINER):
        ctx = Context(inventory_of(tmp_path, text), docker_factory=no_docker, out=print,
                      audit_path=tmp_path / "audit.log")
        with pytest.raises(RemediationError, match=r"restart-redis: Redis at 127.0.0.1:6379 runs without a container "
                                                   r".*sudo systemctl start redis-server"):
            HELPERS["restart-redis"].run(ctx, None, False)
        with pytest.raises(RemediationError, match=r"restart-postgres: PostgreSQL at 127.0.0.1:5432 runs without a "
                                                   r"container .*sudo systemctl start postgresql"):
            HELPERS["restart-postgres"].run(ctx, None, False)


@pytest.mark.parametrize("check, helper, words", [("redis-ping", "restart-redis", "redis-server"),
                                                  ("postgres-ready", "restart-postgres", "postgresql")])
def test_a_failed_ping_names_the_service_manager_without_docker_and_the_helper_with_it(tmp_path, check, helper,
                                                                                       words):
    fix = fix_for(REGISTRY[check], {}, None, {"inventory": None}, inventory_of(tmp_path, NO_DOCKER_HOST))
    assert fix.argv == () and f"sudo systemctl start {words}" in fix.text and not DOCKER_WORDS.search(fix.text)
    fix = fix_for(REGISTRY[check], {}, None, {"inventory": None}, inventory_of(tmp_path, NO_REDIS_CONTAINER))
    assert fix.argv == () and "names no container" in fix.text
    fix = fix_for(REGISTRY[check], {}, None, {"inventory": None}, load_inventory(None, environ=ENV))
    assert fix.argv == (helper,)  # in a container, the helper still restarts it
