"""A Redis or PostgreSQL that takes connections and never answers fails redis-ping / postgres-ready.

A real loopback listener accepts every connection and never says a word, as a blocked Redis
(CLIENT PAUSE) or a stopped postmaster does; the suite's own client libraries meet it.
"""
from __future__ import annotations

import socket
import threading

import pytest

from checks import test_infrastructure as infra
from fixtures.verdict import Verdict
from observation.errors import NoAnswer, Unobservable
from observation.inventory import load_inventory
from observation.lazy import Lazy
from observation.postgres import connect_postgres
from observation.redis_bus import connect_redis

FAILED = pytest.fail.Exception


@pytest.fixture
def silent_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # kept open, never read or answered
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    for conn in held:
        conn.close()
    listener.close()


def inventory(tmp_path, port):
    path = tmp_path / "inv.yaml"
    path.write_text(f"redis: {{port: {port}}}\npostgres: {{port: {port}}}\ntimeouts: {{connect_s: 1, read_s: 1}}\n")
    return load_inventory(str(path), environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})


def test_a_redis_that_never_answers_fails_redis_ping(tmp_path, silent_port):
    backend = Lazy("redis", lambda: connect_redis(inventory(tmp_path, silent_port)))
    with pytest.raises(FAILED, match=r"expected PONG; saw redis: Redis at 127.0.0.1:\d+ unreachable \(.*time"):
        infra.test_redis_ping(backend, Verdict("redis"))
    with pytest.raises(NoAnswer):  # the checks that need Redis's figures: cannot observe, as before
        backend.get()


def test_a_postgres_that_never_answers_fails_postgres_ready(tmp_path, silent_port):
    backend = Lazy("postgresql", lambda: connect_postgres(inventory(tmp_path, silent_port)))
    with pytest.raises(FAILED, match=r"expected a connection that answers SELECT 1; saw postgresql: PostgreSQL at "
                                     r"127.0.0.1:\d+ unreachable"):
        infra.test_postgres_ready(backend, Verdict("postgres"))


def test_the_suites_own_refused_secret_stays_unjudged():
    def refused():
        raise Unobservable("Redis at 127.0.0.1:6379 refused the suite's credentials", fix="check the secret")
    with pytest.raises(Unobservable) as raised:
        infra.test_redis_ping(Lazy("redis", refused), Verdict("redis"))
    assert not isinstance(raised.value, NoAnswer) and raised.value.fix == "check the secret"


def test_a_silent_redis_is_asked_once_not_with_redis_pys_ten_retries(tmp_path, silent_port, monkeypatch):
    import redis

    made, real = {}, redis.Redis.__init__

    def spy(self, *args, **kwargs):
        made.update(kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", spy)
    with pytest.raises(NoAnswer):
        connect_redis(inventory(tmp_path, silent_port))
    assert made["retry"]._retries == 0  # one try, bounded by the inventory's read timeout


@pytest.fixture
def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


@pytest.mark.parametrize("docker, redis_hint, postgres_hint", [
    (True, "is nautilus-redis running?", "is nautilus-postgres running?"),
    (False, "is the Redis server running?", "is the PostgreSQL server running?"),
])
def test_a_refused_connection_asks_after_the_server_in_the_deployments_own_terms(tmp_path, closed_port, docker,
                                                                                 redis_hint, postgres_hint):
    path = tmp_path / "inv.yaml"
    path.write_text(f"hosts: [{{name: local, docker: {str(docker).lower()}}}]\n"
                    f"redis: {{port: {closed_port}}}\npostgres: {{port: {closed_port}}}\n"
                    "timeouts: {connect_s: 1, read_s: 1}\n")
    inv = load_inventory(str(path), environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    with pytest.raises(NoAnswer) as redis_down:
        connect_redis(inv)
    with pytest.raises(NoAnswer) as postgres_down:
        connect_postgres(inv)
    assert str(redis_down.value).endswith(redis_hint) and str(postgres_down.value).endswith(postgres_hint)
    if not docker:
        assert "nautilus-" not in str(redis_down.value) + str(postgres_down.value)
