"""Redis, PostgreSQL and the other platform services answer."""
from __future__ import annotations

from fixtures.spec import EMERGENCY, check
from fixtures.targets import leave_out_without_docker
from observation.docker_api import daemon_process
from observation.errors import NoAnswer, Unobservable, short_reason
from observation.postgres import slots_taken

from .guide import CONTAINER_ERRORS, DATABASE, EMERGENCY_RESTART, MESSAGEBUS

# Docker's checks of a host without Docker are no checks at all (deselected), as a check with no target is.
pytest_generate_tests = leave_out_without_docker


@check("redis-ping", "Redis answers PING", tiers=EMERGENCY, severity="critical", guide=MESSAGEBUS,
       remedy="restart-redis",
       needs=("container-running@redis", "port-open@redis"))
def test_redis_ping(redis_client, verdict):
    # Redis not answering is this check's finding; only a refusal of the suite's own secret leaves it unjudged.
    try:
        client = redis_client.get()
    except NoAnswer as exc:
        verdict.fail(expected="PONG", seen=str(exc))
    try:
        reply = client.ping()
    except Exception as exc:
        verdict.fail(expected="PONG", seen=short_reason(exc))
    verdict.expect(reply is True, expected="PONG", seen=repr(reply))


@check("postgres-ready", "PostgreSQL accepts a connection and answers SELECT 1", tiers=EMERGENCY,
       severity="critical", guide=DATABASE, remedy="restart-postgres",
       needs=("container-running@postgres", "port-open@postgres"))
def test_postgres_ready(postgres_backend, verdict):
    try:
        conn = postgres_backend.get()
    except NoAnswer as exc:  # its finding; a refused secret or no free slot (another check's finding) is not
        verdict.fail(expected="a connection that answers SELECT 1", seen=str(exc))
    except Unobservable as exc:
        if slots_taken(str(exc)):  # it runs and is full: who holds the slots, not a restart that cuts them all
            verdict.remedy("postgres-sessions")
        raise
    try:
        row = conn.execute("SELECT 1").fetchone()
    except Exception as exc:
        verdict.fail(expected="SELECT 1 to answer", seen=short_reason(exc))
    verdict.expect(row == (1,), expected="(1,)", seen=repr(row))


@check("service-health-answers", "Platform service (backend, frontend, Prometheus, Grafana) answers", tiers=EMERGENCY,
       severity="critical", guide=EMERGENCY_RESTART, remedy="restart-container",
       needs=("container-running", "port-open"))
def test_service_health_answers(service, service_samples, verdict):
    sample = service_samples[service.name]
    verdict.evidence("health", sample.evidence())
    verdict.measured("response_ms", sample.elapsed_ms)
    verdict.expect(sample.status == 200, expected=f"GET {service.url} -> HTTP 200",
                   seen=sample.error or f"HTTP {sample.status}")


@check("docker-daemon-answers", "The Docker daemon of every host answers", tiers=EMERGENCY, severity="critical",
       guide=CONTAINER_ERRORS)
def test_docker_daemon_answers(docker_hosts, inventory, verdict):
    """The root of every container check: when the daemon is down, they are blocked by this one fact."""
    down = {}
    for host in inventory.hosts:
        if not host.docker:
            continue
        try:
            docker_hosts.get(host.name)
        except Unobservable as exc:  # its reason is what was seen; its fix fits it (start, or restart a frozen one)
            down[host.name] = exc
            process = daemon_process(host)
            if process:
                verdict.evidence(f"dockerd on {host.name}", {"pid": process.pid, "state": process.state})
    fixes = [f"Docker daemon on {name}: {exc.fix}" for name, exc in sorted(down.items()) if exc.fix]
    if fixes:
        verdict.advise("; ".join(fixes))
    verdict.expect(not down, expected="every Docker daemon to answer", seen="; ".join(map(str, down.values())))
