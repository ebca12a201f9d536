"""reconnect-network: put a platform container back on the platform network (the inventory's platform_network).

The fix of the check container-on-platform-network. Connecting is the Docker API's
`docker network connect`, with the alias the other containers reach it by (its
Compose service); restore-engine reconnects an isolated engine through the same
`connect` here. An isolated engine is refused: restore-engine undoes the whole isolation.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from observation.docker_api import Docker, State
from observation.networks import compose_service, isolation_marker, network_names

from .bundle import CONTENTS, default_dir
from .context import Context
from .errors import RemediationError
from .sequence import Action, asks, carry_out, dry_run, numbered
from .targets import resolve


def connect(docker: Docker, name: str, network: str, spec: dict) -> None:
    """`docker network connect` of `name` to `network` with what `spec` keeps (aliases, fixed addresses, links),
    as `networks_of` reads them."""
    docker._call(f"connect {name} to {network}", name, docker.api.connect_container_to_network, name, network,
                 aliases=spec.get("aliases") or None, ipv4_address=spec.get("ipv4_address"),
                 ipv6_address=spec.get("ipv6_address"), links=spec.get("links"))


def connect_command(network: str, container: str, aliases: list[str]) -> str:
    """The docker CLI line of one connect, as a person would type it.

    >>> connect_command("nautilus_nautilus-network", "nautilus-risk-engine", ["risk-engine"])
    'docker network connect --alias risk-engine nautilus_nautilus-network nautilus-risk-engine'
    """
    return shlex.join(["docker", "network", "connect", *(a for alias in aliases for a in ("--alias", alias)),
                       network, container])


def reconnect_network(ctx: Context, argument: str | None, apply: bool) -> int:
    """Connect a platform container to the platform network, with its Compose service as its alias."""
    target = resolve(ctx.inventory, "reconnect-network", argument)
    name, docker, network = target.container, ctx.docker(target.host), ctx.inventory.platform_network
    if target.engine and isolation_marker(target.engine.name).exists():
        raise RemediationError(f"{target.engine.name} is isolated (marker {isolation_marker(target.engine.name)}): "
                               f"undo the isolation with {ctx.command('restore-engine', target.engine.name)}")
    attrs = docker.inspect(name)
    state, on_now = State.of(attrs), network_names(attrs)
    if network in on_now:
        ctx.say(f"{name} is already on {network} (its networks: {', '.join(on_now)}); nothing to do")
        return 0
    service = compose_service(attrs)
    spec = {"aliases": [service] if service else []}
    bundle_dir = ctx.bundle_dir or default_dir("reconnect-network", target)
    plan = numbered([
        f"save the pre-restart diagnostics to {bundle_dir}/: {CONTENTS}",
        f"connect {name} to {network} (POST /networks/{network}/connect, as "
        f"`{connect_command(network, name, spec['aliases'])}`)"
        + (f": the other containers reach it as {service}" if service else ": it has no Compose service label, "
           "so no alias"),
        f"read its networks again and say whether it is on {network}",
        f"append the outcome to the audit log {ctx.audit_path}"])
    header = (f"reconnect-network {name} (now {state.line()}, on {', '.join(on_now) or 'no network'}) on Docker "
              f"host {target.host!r}")
    if not apply:
        return dry_run(ctx, header, plan, asks(name))

    def act(bundle: Path | None) -> tuple[str, int]:
        connect(docker, name, network, spec)
        ctx.say(f"connected {name} to {network}" + (f" as {service}" if service else ""))
        after = network_names(docker.inspect(name))
        if network not in after:
            return f"{name} is still not on {network} (its networks: {', '.join(after) or 'none'})", 1
        return f"{name} is on {network} again (its networks: {', '.join(after)})", 0
    action = Action("reconnect-network", name, plan, confirm=name, bundle=(target, bundle_dir),
                    question=f"reconnect-network will connect {name} to {network}:")
    return carry_out(ctx, action, act)
