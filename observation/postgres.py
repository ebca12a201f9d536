"""PostgreSQL: a connection with timeouts, and libpq's long errors cut to one line."""
from __future__ import annotations

import psycopg

from .errors import NoAnswer, Unobservable, unreachable_hint
from .inventory import Inventory
from .targets import server_in_own_terms

APPLICATION_NAME = "nautilus-health"  # so the suite's own session is recognisable (and left out) in pg_stat_activity


def connect_postgres(inventory: Inventory) -> psycopg.Connection:
    spec, timeouts = inventory.postgres, inventory.timeouts
    password = inventory.secrets.needed("postgres")
    try:
        return psycopg.connect(host=spec.host, port=spec.port, dbname=spec.dbname, user=spec.user,
                               password=password,
                               connect_timeout=max(1, round(timeouts.connect_s)), autocommit=True,
                               application_name=APPLICATION_NAME,
                               options=f"-c statement_timeout={int(timeouts.read_s * 1000)}")
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())
        if "password authentication failed" in detail:
            raise Unobservable(f"PostgreSQL at {spec.host}:{spec.port} refused user {spec.user!r}: password "
                               f"authentication failed; check {spec.password_env}",
                               fix=f"check the secret {spec.password_env} (or its _FILE) against user {spec.user!r}'s "
                                   "password in PostgreSQL; nothing to restart") from None
        if slots_taken(detail):  # it runs: a restart would cut every session; who holds them is the question
            raise Unobservable(f"PostgreSQL at {spec.host}:{spec.port} refuses new connections: "
                               f"{pg_reason(detail)} (every max_connections slot is taken)") from None
        raise NoAnswer(f"PostgreSQL at {spec.host}:{spec.port} unreachable ({pg_reason(detail)}); "
                       f"{unreachable_hint(pg_reason(detail), server_in_own_terms(inventory, 'postgres'))}") from None


SLOTS_TAKEN = ("too many clients already", "remaining connection slots are reserved")


def slots_taken(reason: str) -> bool:
    """Whether PostgreSQL refused for want of a connection slot (max_connections reached).

    >>> slots_taken("PostgreSQL at 127.0.0.1:5432 unreachable (too many clients already)")
    True
    """
    return any(text in reason for text in SLOTS_TAKEN)


def pg_reason(detail: str) -> str:
    """libpq's long message cut to its cause.

    >>> pg_reason('connection to server at "127.0.0.1", port 5432 failed: Connection refused Is the server running')
    'connection refused'
    """
    for known in ("Connection refused", "timeout expired", "could not translate host name",
                  "No route to host", "does not exist", "the database system is starting up",
                  "too many clients already", "remaining connection slots are reserved"):
        if known in detail:
            return known.lower()
    return detail[:200]
