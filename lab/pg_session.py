"""`python -m lab.pg_session KIND`: PostgreSQL sessions the lab holds open for a fault.

    held-lock   one session takes ACCESS EXCLUSIVE on lab_locktest and stays idle
                in transaction; a second one waits for that lock (blocked)
    long-query  one session runs SELECT pg_sleep(600)

Every session sets application_name `lab-fault-<KIND>`, so heal can terminate
exactly these and nothing else. The connection comes from libpq's PG*
environment variables, set by lab.faults (the password never goes on a command
line). The process ends on SIGTERM or when its sessions are gone.
"""
from __future__ import annotations

import signal
import sys
import threading
import time

import psycopg

KINDS = ("held-lock", "long-query")
LOCK_TABLE = "lab_locktest"


def app_name(kind: str) -> str:
    return f"lab-fault-{kind}"


def run_blocking(conn: psycopg.Connection, sql: str) -> threading.Thread:
    """Run one statement in a thread: it blocks until the server ends it."""
    def target() -> None:
        try:
            conn.execute(sql)
        except psycopg.Error:
            pass  # terminated by heal: the expected end

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def main(kind: str) -> int:
    if kind not in KINDS:
        sys.exit(f"kind must be one of {', '.join(KINDS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    name = app_name(kind)
    keep = []  # the connections stay referenced (and open) for the process's life
    if kind == "held-lock":
        with psycopg.connect(application_name=name, autocommit=True) as setup:
            setup.execute(f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (id int, note text)")
        holder = psycopg.connect(application_name=name)  # not autocommit: the transaction stays open
        holder.execute(f"LOCK TABLE {LOCK_TABLE} IN ACCESS EXCLUSIVE MODE")
        waiter = psycopg.connect(application_name=name, autocommit=True)
        keep += [holder, waiter]
        blocked = run_blocking(waiter, f"SELECT count(*) FROM {LOCK_TABLE}")
    else:
        sleeper = psycopg.connect(application_name=name, autocommit=True)
        keep.append(sleeper)
        blocked = run_blocking(sleeper, "SELECT pg_sleep(600)")
    while blocked.is_alive():
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
