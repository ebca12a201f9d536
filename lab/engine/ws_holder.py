#!/usr/bin/env python3
"""Hold WebSocket connections open: the lab's ws-connections fault.

    python3 ws_holder.py URL COUNT    # open COUNT connections to URL and keep them
    python3 ws_holder.py --stop       # stop the running holder (it closes its connections)

Runs inside a lab container (the backend), started by `python -m lab fault
ws-connections websocket --count N`, with Debian's python3-aiohttp. Each
connection reads what the engine sends (so pings are answered) and nothing
else. The holder exits on SIGTERM, or by itself once every connection is gone.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

PID_FILE = Path("/tmp/lab-ws-holder.pid")
STATUS_FILE = Path("/tmp/lab-ws-holder.status")  # "open/wanted"
MARK = "ws_holder.py"
CONNECTING_AT_ONCE = 50  # below the server's listen backlog


async def hold(url: str, count: int) -> int:
    import aiohttp

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    sockets: list = []

    async def one(session) -> None:
        async with gate:
            ws = await session.ws_connect(url, autoping=True, heartbeat=None, timeout=10)
        sockets.append(ws)
        try:
            async for _message in ws:
                pass
        finally:
            sockets.remove(ws)

    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # limit=0: no cap on open connections
    async with aiohttp.ClientSession(connector=connector) as session:
        readers = [asyncio.ensure_future(one(session)) for _ in range(count)]
        all_done = asyncio.ensure_future(asyncio.wait(readers))
        stopped = asyncio.ensure_future(stop.wait())
        while not stop.is_set() and not all_done.done():
            STATUS_FILE.write_text(f"{len(sockets)}/{count}\n")
            await asyncio.wait([all_done, stopped], timeout=0.5)
        failed = sum(1 for r in readers if r.done() and not r.cancelled() and r.exception() is not None)
        await asyncio.gather(*(ws.close() for ws in list(sockets)), return_exceptions=True)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        all_done.cancel()
        stopped.cancel()
    STATUS_FILE.write_text(f"0/{count}\n")
    return 1 if failed == count else 0


def running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if MARK in cmdline else None  # only the holder this file names, never another process


def stop_holder(timeout_s: float = 10) -> int:
    pid = running_pid()
    if pid is None:
        print("no ws holder running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while running_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid() == pid:
        os.kill(pid, signal.SIGKILL)
    print(f"stopped ws holder {pid}")
    return 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["--stop"]:
        return stop_holder()
    if len(argv) != 3:
        sys.exit(__doc__)
    if running_pid() is not None:
        sys.exit("a ws holder is already running; stop it first")
    PID_FILE.write_text(f"{os.getpid()}\n")
    try:
        return asyncio.run(hold(argv[1], int(argv[2])))
    finally:
        PID_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
