"""Redis, PostgreSQL and the other platform services answer."""
from checks.catalog import check
from fixtures.backends import describe
from fixtures.samplers import sample_http


@check("redis-ping")
def test_redis_ping(redis_backend, verdict):
    client = redis_backend.get()
    try:
        reply = client.ping()
    except Exception as exc:
        verdict.fail(expected="PONG", seen=describe(exc))
    verdict.expect(reply is True, expected="PONG", seen=repr(reply))


@check("postgres-ready")
def test_postgres_ready(postgres_backend, verdict):
    conn = postgres_backend.get()
    try:
        row = conn.execute("SELECT 1").fetchone()
    except Exception as exc:
        verdict.fail(expected="SELECT 1 to answer", seen=describe(exc))
    verdict.expect(row == (1,), expected="(1,)", seen=repr(row))


@check("service-health-answers")
def test_service_health_answers(service, http, inventory, verdict):
    sample = sample_http(http, service.url, inventory.thresholds.response_critical_ms / 1000)
    verdict.evidence("health", sample.evidence())
    verdict.expect(sample.status == 200, expected=f"GET {service.url} -> HTTP 200",
                   seen=sample.error or f"HTTP {sample.status}")
