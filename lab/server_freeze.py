"""The `freeze` fault: Redis's or PostgreSQL's server process stopped with SIGSTOP.

Docker still shows the container running and its published port still takes
connections (the kernel completes the handshake), but nothing answers: the
case where only the service's own question (PING, SELECT 1) can tell. For
PostgreSQL only the postmaster stops, so the sessions the engines already hold
keep working while no new one can start, as when a postmaster hangs.

The signal is sent from this host, which sees the container's processes (the
lab's images carry no `kill` to exec). Each record keeps the process's start
time: `thaw` never signals a process that merely reused the number.
"""
from __future__ import annotations

import signal

import psutil

from . import LabError

SERVER_NAMES = {"redis": "redis-server", "postgres": "postgres"}


def server_process(container, service: str) -> psutil.Process:
    """The container's server: the first process of that name below the container's init whose parent is not
    one too (PostgreSQL's backends are children of the postmaster)."""
    name = SERVER_NAMES.get(service)
    if name is None:
        raise LabError(f"freeze stops a Redis or PostgreSQL server; {service} is neither")
    try:
        init = psutil.Process(container.attrs["State"]["Pid"])
        for process in init.children(recursive=True):
            if process.name() == name and process.parent().name() != name:
                return process
    except psutil.Error as exc:
        raise LabError(f"cannot read {container.name}'s processes: {exc}") from None
    raise LabError(f"no {name} process in {container.name}")


def freeze(container, service: str) -> dict:
    """SIGSTOP the server; returns what `thaw` needs."""
    process = server_process(container, service)
    process.suspend()
    return {"pid": process.pid, "started": process.create_time()}


def thaw(record: dict) -> list[str]:
    """SIGCONT the process the record names, if it is still that process."""
    try:
        process = psutil.Process(record["pid"])
        if process.create_time() != record["started"]:
            return []
        process.send_signal(signal.SIGCONT)
    except psutil.Error:
        return []  # gone with its container (recreated or removed): nothing left stopped
    return [f"resumed {SERVER_NAMES.get(record['target'], 'server')} (pid {record['pid']}) in {record['target']}"]
