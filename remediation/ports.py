"""free-port: who holds a TCP port on this machine. It never kills anything.

The guide's answer to "port already in use" is `lsof -ti:PORT | xargs kill -9`,
which kills whatever holds the port, known or not. This helper only says who
it is: a container publishing the port (Docker API) and the listening process
(from /proc/net/tcp{,6} and /proc/*/fd, or `ss -ltnp` when /proc does not tell).
"""
from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .context import Context
from .errors import FAILURES
from .targets import resolve

LISTEN = "0A"
SS_TIMEOUT_S = 5


@dataclass(frozen=True)
class Holder:
    pid: int
    user: str
    command: str
    address: str = ""


def parse_address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6} (little-endian hex) as ip:port.

    >>> parse_address("0100007F:2008"), parse_address("00000000000000000000000000000000:1F90")
    ('127.0.0.1:8200', '[::]:8080')
    >>> parse_address("0000000000000000FFFF00000100007F:2008")
    '[::ffff:127.0.0.1]:8200'
    """
    ip_hex, port_hex = hex_address.rsplit(":", 1)
    raw = bytes.fromhex(ip_hex)
    # The kernel prints each 32-bit word in host (little-endian) order.
    packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip, port = ipaddress.ip_address(packed), int(port_hex, 16)
    if ip.version == 4:
        return f"{ip}:{port}"
    return f"[::ffff:{ip.ipv4_mapped}]:{port}" if ip.ipv4_mapped else f"[{ip}]:{port}"


def listening_sockets(table: str, port: int) -> dict[str, str]:
    """Socket inode -> local address of the sockets in LISTEN state on `port`, from a /proc/net/tcp table.

    >>> listening_sockets("  sl  local_address rem_address st tx_queue rx_queue tr tm->when retrnsmt uid timeout inode\\n"
    ...                   "   0: 0100007F:2008 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4242 1", 8200)
    {'4242': '127.0.0.1:8200'}
    """
    found = {}
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
            found[fields[9]] = parse_address(fields[1])
    return found


def process_of(pid: int, proc: Path = Path("/proc")) -> tuple[str, str]:
    """(user, command line) of a process; the command in brackets when it has no command line."""
    base = proc / str(pid)
    try:
        uid = base.stat().st_uid
        command = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        command = command or f"[{(base / 'comm').read_text().strip()}]"
    except OSError:
        return "?", "(gone)"
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return user, command


def socket_holders(sockets: dict[str, str], proc: Path = Path("/proc")) -> list[Holder]:
    """The processes with one of `sockets` (inode -> address) among their open files."""
    wanted = {f"socket:[{inode}]": address for inode, address in sockets.items()}
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd.path) for fd in os.scandir(entry / "fd")}
        except OSError:  # gone, or another user's process
            continue
        for link in links & set(wanted):
            found.append(Holder(int(entry.name), *process_of(int(entry.name), proc), wanted[link]))
    return sorted(set(found), key=lambda h: h.pid)


def parse_ss(output: str, proc: Path = Path("/proc")) -> list[Holder]:
    """Holders from `ss -ltnpH` output.

    >>> [(h.pid, h.address) for h in parse_ss('LISTEN 0 5 127.0.0.1:8800 0.0.0.0:* users:(("python3",pid=77,fd=3))',
    ...                                       Path("/nonexistent"))]
    [(77, '127.0.0.1:8800')]
    """
    found = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        for pid in sorted({int(p) for p in re.findall(r"pid=(\d+)", line)}):
            found.append(Holder(pid, *process_of(pid, proc), fields[3]))
    return found


def ss_holders(port: int) -> list[Holder]:
    if not shutil.which("ss"):
        return []
    try:
        done = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True,
                              timeout=SS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_ss(done.stdout)


def holders(port: int, proc: Path = Path("/proc")) -> tuple[dict[str, str], list[Holder]]:
    """(listening sockets, the processes holding them) for `port` on this machine."""
    sockets: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        if path.exists():
            sockets.update(listening_sockets(path.read_text(), port))
    if not sockets:
        return {}, []
    return sockets, socket_holders(sockets, proc) or ss_holders(port)


def in_the_way(listening: str, address: str) -> bool:
    """Whether a socket listening on `listening` (ip:port) takes the connections meant for `address`: its own
    address or a wildcard does; another address of the machine does not. A name, not an address: it may.

    >>> [in_the_way(a, "127.0.0.2") for a in ("127.0.0.1:8800", "0.0.0.0:8800", "[::]:8800", "[::ffff:127.0.0.2]:88")]
    [False, True, True, True]
    >>> in_the_way("127.0.0.1:8800", "db.internal"), in_the_way(":8800", "127.0.0.1")
    (True, True)
    """
    host = listening.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
    try:
        wanted, bound = ipaddress.ip_address(address), ipaddress.ip_address(host)
    except ValueError:
        return True
    return bound.is_unspecified or bound == wanted


def publishers(ctx: Context, host: str, port: int) -> list[tuple[str, str]]:
    """Containers publishing `port` on the host: (the ip:port they publish on, `name (state; ip:port->port/tcp)`)."""
    found = []
    for summary in ctx.docker(host).containers():
        for p in summary.get("Ports") or []:
            if p.get("PublicPort") == port:
                at = f"{p.get('IP', '')}:{port}"
                found.append((at, f"{summary['name']} ({summary.get('State')}; {at}->"
                                  f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')})"))
    return sorted(set(found))


def free_port(ctx: Context, argument: str | None, apply: bool = False) -> int:
    target = resolve(ctx.inventory, "free-port", argument)
    port = target.port
    ctx.say(f"free-port {port} on this machine (read-only: it never stops or kills anything)")
    inventory = ctx.inventory
    owners = {**{f"{e.name}-engine": e.container for e in inventory.engines.values() if e.port == port},
              **{s.name: s.container for s in inventory.services.values() if s.port == port}}
    if owners:
        ctx.say(f"the inventory gives port {port} to {', '.join(owners)}")
    published = []
    if inventory.host(target.host).docker:  # docker: false on the host: no Docker to ask
        try:
            published = publishers(ctx, target.host, port)
        except FAILURES as exc:
            ctx.say(f"containers: not checked ({exc})")
    # An engine that is a plain process is diagnosed as one, never through Docker.
    process_owners = {f"{e.name}-engine": e.name for e in inventory.engines.values() if e.port == port and not e.docker}
    # The machine may answer on several addresses (a real host's, loopback's): only what listens on the target's
    # address, or on all of them, stands in its way.
    address = inventory.host(target.host).address
    published, elsewhere = ([line for at, line in published if in_the_way(at, address) == wanted]
                            for wanted in (True, False))
    for line in published:
        ctx.say(f"port {port} is published by container {line}")
    all_sockets, all_found = holders(port)
    sockets = {inode: at for inode, at in all_sockets.items() if in_the_way(at, address)}
    found = [holder for holder in all_found if in_the_way(holder.address, address)]
    for line in elsewhere:
        ctx.say(f"port {port} is also published by container {line}, on another address: not in the way of "
                f"{address}:{port}")
    for holder in all_found:
        if holder not in found:
            ctx.say(f"port {port} is also held by process {holder.pid}: {holder.command[:300]} (user {holder.user}, "
                    f"listening on {holder.address}), on another address: not in the way of {address}:{port}")
    for holder in found:
        proxy = (" - Docker's port proxy for the container above"
                 if published and "docker-proxy" in holder.command else "")
        ctx.say(f"port {port} is held by process {holder.pid}: {holder.command[:300]} "
                f"(user {holder.user}, listening on {holder.address}){proxy}")
    if sockets and not found:
        ctx.say(f"something listens on {', '.join(sorted(set(sockets.values())))} but its process is not visible "
                "to this user (run as root to see it)")
    if not sockets and not published:
        where = f"{address}:{port}" if elsewhere or all_sockets else f"port {port}"
        ctx.say(f"nothing listens on {where} and no container publishes it: the port is free"
                + "".join(f"; {owner} is not serving: " + (ctx.command('diagnose-process', process_owners[owner])
                                                            if owner in process_owners else
                                                            ctx.command('diagnose-startup', container))
                          for owner, container in owners.items() if container))
    ctx.say(f"nothing was killed: this helper never runs the guide's `lsof -ti:{port} | xargs kill -9`, which kills "
            "whatever holds the port without knowing what it is")
    if sockets or published:
        ctx.say("to free it: stop the owner deliberately (`docker stop <container>` for a container; for a process, "
                "find out what it is, then stop its service or `kill <pid>`), or publish the service on another host "
                "port in the compose file")
    return 0
