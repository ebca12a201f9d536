"""The lab itself: every container healthy, every contract endpoint served, real bus and database use."""
from __future__ import annotations

import socket
import time

import psycopg
import pytest
import redis
import requests

from lab.topology import services

from conftest import LAB_OWNED, lab_docker

pytestmark = pytest.mark.usefixtures("lab")
GUIDE = {"analytics": 8100, "factor": 8300, "ml": 8400, "websocket": 8600, "strategy": 8700}
REAL = {"risk": 8200, "features": 8500, "marketdata": 8800, "portfolio": 8900}


def get(port: int, path: str, **kw) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5, **kw)


def test_every_container_is_healthy_with_policy_limit_and_loopback_ports():
    client = lab_docker()
    for svc in services():
        attrs = client.containers.get(svc.container).attrs
        assert attrs["State"]["Health"]["Status"] == "healthy", svc.container
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", svc.container
        assert attrs["HostConfig"]["Memory"] > 0, svc.container
        bindings = [b for port in (attrs["HostConfig"]["PortBindings"] or {}).values() for b in port]
        assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}, svc.container


@pytest.mark.parametrize("name,port", sorted(GUIDE.items()))
def test_guide_flavour_health_and_prometheus_metrics(name, port):
    health = get(port, "/health").json()
    assert health["status"] == "healthy"
    assert health["messagebus_connected"] is True
    assert health["uptime_seconds"] >= 0
    metrics = get(port, "/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert f"{name}_requests_total" in metrics.text


@pytest.mark.parametrize("name,port", sorted(REAL.items()))
def test_real_flavour_health_and_json_metrics(name, port):
    health = get(port, "/health").json()
    if name == "portfolio":
        assert health["metrics"]["uptime_seconds"] >= 0
        assert health["integrations"]["messagebus_connected"] is True
        assert get(port, "/metrics").status_code == 404
    else:
        assert health["messagebus_connected"] is True
        assert "total_requests" in get(port, "/metrics").json()
    if name == "risk":
        assert {"risk_checks_processed", "breaches_detected", "active_limits", "active_breaches"} <= set(health)


def test_engine_specific_endpoints():
    assert "factor_definitions_loaded" in get(8300, "/health").json()
    assert {"monitoring_active", "monitored_portfolios", "breach_alerts_sent"}.isdisjoint(get(8200, "/health").json())
    calc = requests.post("http://127.0.0.1:8100/analytics/calculate/test_portfolio", timeout=5,
                         json={"positions": [{"symbol": "AAPL", "quantity": 100, "price": 150}]})
    assert calc.status_code == 200
    check = requests.post("http://127.0.0.1:8200/risk/check/test_portfolio", json={}, timeout=5).json()
    assert check["status"] == "checked" and isinstance(check["breaches_found"], int)
    stats = get(8600, "/websocket/stats").json()
    assert "active_connections" in stats["data"]["connection_stats"]
    assert "messages_sent_per_second" in stats["data"]["message_stats"]
    assert get(8001, "/health").status_code == 200
    assert "data" in get(8001, "/api/v1/websocket/stats").json()


def test_engines_are_on_the_bus_and_write_to_the_database():
    r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, decode_responses=True)
    names = {c["name"] for c in r.client_list()}
    for svc in services():
        if svc.engine and svc.engine != "backend":
            assert f"nautilus-{svc.engine}-engine" in names
            assert time.time() - float(r.get(f"nautilus:heartbeat:{svc.engine}")) < 15
    assert r.xlen("nautilus:messagebus") > 0


def test_database_has_activity(lab_password):
    with psycopg.connect(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus",
                         password=lab_password, connect_timeout=5, autocommit=True) as conn:
        # Right after the lab was recreated (the guard tests before this one bring it up again) the engines may not
        # have created their tables yet, nor written their first heartbeats.
        deadline, rows = time.monotonic() + 30, 0
        while time.monotonic() < deadline:
            try:
                rows = conn.execute("SELECT count(*) FROM engine_heartbeats").fetchone()[0]
            except psycopg.errors.UndefinedTable:
                rows = 0
            if rows:
                break
            time.sleep(1)
        assert rows > 0
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname='nautilus'").fetchone()[0] >= 2


def test_frontend_and_prometheus_answer():
    assert "Nautilus" in get(3000, "/").text
    assert get(9090, "/-/healthy").status_code == 200


def test_websocket_engine_serves_a_real_websocket():
    from base64 import b64encode
    key = b64encode(b"nautilus-lab-tst").decode()
    with socket.create_connection(("127.0.0.1", 8600), timeout=5) as sock:
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 101")
        time.sleep(1.5)
        active = get(8600, "/websocket/stats").json()["data"]["connection_stats"]["active_connections"]
        assert active >= 1


def test_down_leaves_only_the_volumes_and_up_brings_the_data_back(lab_password):
    from conftest import lab_cli
    client = lab_docker()
    marker = f"down-up-{time.time():.0f}"
    dsn = dict(host="127.0.0.1", port=5432, dbname="nautilus", user="nautilus", password=lab_password, connect_timeout=5)
    with psycopg.connect(**dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO engine_heartbeats (engine) VALUES (%s)", (marker,))
    lab_cli("down")
    label = LAB_OWNED
    assert client.containers.list(all=True, filters=label) == []
    assert client.networks.list(filters=label) == []
    assert {v.name for v in client.volumes.list(filters=label)} >= {"nautilus-lab_postgres-data", "nautilus-lab_redis-data"}
    lab_cli("up")
    with psycopg.connect(**dsn) as conn:
        assert conn.execute("SELECT count(*) FROM engine_heartbeats WHERE engine = %s", (marker,)).fetchone()[0] == 1
