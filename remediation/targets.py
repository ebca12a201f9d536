"""What a helper's argument names, checked against the inventory: an engine, a container or a port.

Only the platform's own containers can be targets, so a typo cannot restart
something else on the host.

>>> from observation.inventory import load_inventory
>>> inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
>>> resolve(inv, "restart-engine", "risk").container, resolve(inv, "restart-container", "backend").container
('nautilus-risk-engine', 'nautilus-backend')
>>> resolve(inv, "restart-redis", None).container, resolve(inv, "free-port", "8200").port
('nautilus-redis', 8200)
"""
from __future__ import annotations

from dataclasses import dataclass

from observation import targets as inventory_targets
from observation.inventory import Engine, Inventory

from .errors import RemediationError
from .registry import HELPERS


@dataclass(frozen=True)
class Target:
    container: str | None  # None for a port
    host: str  # the inventory's Docker host name
    engine: Engine | None = None
    port: int | None = None

    @property
    def label(self) -> str:
        """How the target reads in file names and messages."""
        return self.engine.name if self.engine else self.container or str(self.port)


def resolve(inventory: Inventory, helper: str, argument: str | None) -> Target:
    """The target `argument` names for `helper`; a missing or unknown one is refused with the valid ones."""
    kind = HELPERS[helper].target
    if kind is None:
        if argument:
            raise RemediationError(f"{helper}: takes no target (got {argument!r})")
        which = "redis" if helper == "restart-redis" else "postgres"
        restarts = helper in ("restart-redis", "restart-postgres")
        if restarts and inventory_targets.backend_without_docker(inventory, which):
            # No container to restart: the refusal says how it is started where it runs, not a Docker error.
            raise RemediationError(f"{helper}: {inventory_targets.start_without_docker(inventory, which)}")
        return platform_containers(inventory)[getattr(inventory, which).container]
    if kind == "engine":
        if argument not in inventory.engines:
            raise RemediationError(_refusal(helper, argument, "an engine", sorted(inventory.engines)))
        engine = inventory.engines[argument]
        refuse_docker_for_process(inventory, helper, engine)
        return Target(engine.container, engine.host, engine=engine)
    if kind == "container":
        known = platform_containers(inventory)
        for engine in inventory.engines.values():  # a process engine named by its name or its container's
            if argument in (engine.name, engine.container) and engine.container not in known:
                refuse_docker_for_process(inventory, helper, engine)
        aliases = {**{e.name: e.container for e in inventory.engines.values()},
                   **{s.name: s.container for s in inventory.services.values() if s.container}}
        name = argument if argument in known else aliases.get(argument or "")
        if name is None:
            raise RemediationError(_refusal(helper, argument, "a container", sorted(known))
                                   + " (or an engine or service name)")
        return known[name]
    if kind == "port":
        if not (argument or "").isdigit() or not 1 <= int(argument) <= 65535:
            ports = sorted({str(t.port) for t in inventory_targets.ports(inventory, None)[0]}, key=int)
            raise RemediationError(_refusal(helper, argument, "a port number (1-65535)", ports,
                                            "the platform's ports"))
        return Target(None, inventory.hosts[0].name, port=int(argument))
    raise RemediationError(f"{helper}: unknown target kind {kind!r}")


# Helpers that judge a process engine without asking Docker about it.
PROCESS_HELPERS = ("diagnose-process", "restart-process", "check-messagebus", "maintenance")


def refuse_docker_for_process(inventory: Inventory, helper: str, engine: Engine) -> None:
    """A helper never asks Docker about an engine that is a plain process (docker: false on it or its host): it
    is refused with the process helpers that fit, before any Docker client is opened.

    >>> from observation.inventory import load_inventory
    >>> inv = load_inventory(None, environ={"NAUTILUS_POSTGRES_PASSWORD": "x"})
    >>> inv.engines["risk"].docker = False
    >>> resolve(inv, "diagnose-startup", "risk")
    Traceback (most recent call last):
    ...
    remediation.errors.RemediationError: diagnose-startup: risk runs as a plain process (docker: false), not in a container: use diagnose-process risk (pid, ports, last log lines) or restart-process risk
    """
    if not engine.docker and helper not in PROCESS_HELPERS:
        raise RemediationError(f"{helper}: {engine.name} runs as a plain process (docker: false), not in a "
                               f"container: use diagnose-process {engine.name} (pid, ports, last log lines) or "
                               f"restart-process {engine.name}")


def platform_containers(inventory: Inventory) -> dict[str, Target]:
    """Every platform container by name: engines, services, Redis and PostgreSQL."""
    found = {t.name: Target(t.name, t.host, engine=inventory.engines.get(t.engine) if t.engine else None)
             for t in inventory_targets.containers(inventory, None)[0]}
    for spec in (inventory.redis, inventory.postgres):
        found.setdefault(spec.container, Target(spec.container, inventory.hosts[0].name))
    return found


def _refusal(helper: str, argument: str | None, wanted: str, valid: list[str], label: str = "valid") -> str:
    """
    >>> _refusal("restart-engine", "rsk", "an engine", ["analytics", "risk"])
    "restart-engine: 'rsk' is not an engine; valid: analytics, risk"
    """
    given = f"{argument!r} is not {wanted}" if argument else f"needs {wanted}"
    return f"{helper}: {given}; {label}: {', '.join(valid)}"
