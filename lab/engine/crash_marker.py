"""The crash-loop fault's marker: a file naming the container that must fail at every start."""
from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

from engine_config import CRASH_MARKER, NAME, log


def container_id() -> str:
    """This container's id: Docker bind-mounts /etc/hostname from .../containers/<id>/; else the hostname."""
    try:
        found = re.search(r"/containers/([0-9a-f]{64})/", Path("/proc/self/mountinfo").read_text())
    except OSError:
        found = None
    return found.group(1) if found else socket.gethostname()


def crash_if_marked() -> None:
    """The guide's factor-engine start-up failure, replayed while the marker names this container.

    Restarts of the same container (its restart policy) keep crashing; a rebuilt or
    recreated container (the guide's fix: `compose build --no-cache` + `up -d`) is a
    new one and starts cleanly, removing the stale marker.
    """
    if not CRASH_MARKER.exists():
        return
    try:
        marked = CRASH_MARKER.read_text().strip()
    except OSError:
        marked = ""
    me = container_id()
    if not marked or not (me.startswith(marked) or marked.startswith(me)):
        log.info("crash marker %s was written for container %s, not this one (%s): starting normally",
                 CRASH_MARKER, marked[:12] or "?", me[:12])
        try:
            CRASH_MARKER.unlink()
        except OSError:
            pass
        return
    sys.stderr.write(
        "Traceback (most recent call last):\n"
        f'  File "/app/{NAME}_engine.py", line 27, in <module>\n'
        "    from enhanced_messagebus_client import MessagePriority, MessageBusConfig\n"
        "ImportError: cannot import name 'MessagePriority' from 'enhanced_messagebus_client' "
        "(/app/enhanced_messagebus_client.py)\n")
    sys.stderr.flush()
    sys.exit(1)
