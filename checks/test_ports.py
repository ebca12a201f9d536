"""Every platform port accepts a TCP connection (probed concurrently, once), from its own container."""
from fixtures.spec import EMERGENCY, check
from observation.errors import Unobservable
from remediation.invocation import mention

from .guide import PORTS


def owner_status(port, inventory, container_states) -> tuple[str | None, str | None]:
    """(container, its status) of the port's owner per the inventory; (None, None) when Docker cannot say."""
    engine = inventory.engines.get(port.owner.removesuffix("-engine")) if port.owner.endswith("-engine") else None
    item = engine or inventory.services.get(port.owner)
    name = getattr(item, "container", None)
    if not name or (engine and not engine.docker):
        return None, None
    try:
        attrs = container_states.get(name, port.host)
    except Unobservable:
        return name, None
    return name, ((attrs or {}).get("State") or {}).get("Status", "missing") if attrs else "missing"


@check("port-open", "Platform port accepts TCP connections", tiers=EMERGENCY, severity="critical", guide=PORTS,
       remedy="free-port",
       needs=("container-running", "container-on-platform-network"))  # off its network, Docker publishes no port
def test_port_open(port, port_probes, inventory, container_states, verdict):
    probe = port_probes[(port.host, port.port)]
    verdict.measured("connect_ms", probe.elapsed_ms)
    engine = inventory.engines.get(port.owner.removesuffix("-engine")) if port.owner.endswith("-engine") else None
    if engine is not None and not engine.docker and not probe.open:
        # A plain process (docker: false): nothing to free and no container to start; the process is gone or stuck.
        verdict.advise(f"{engine.name} runs as a plain process and nothing accepts on its port: "
                       f"{mention('diagnose-process', engine.name)} shows its pid and last log lines; start it "
                       f"again with {mention('restart-process', engine.name)}")
    verdict.expect(probe.open, expected=f"{port.address}:{port.port} ({port.owner}) to accept a TCP connection",
                   seen=f"{probe.error} after {probe.elapsed_ms:.0f} ms")
    # Open is not enough: with its container down, whatever answers is another process holding the port.
    container, status = owner_status(port, inventory, container_states)
    verdict.expect(status in (None, "running"), expected=f"{port.address}:{port.port} answered by {container}",
                   seen=f"it accepts connections while {container} is {status}: another process holds the port")
