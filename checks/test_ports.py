"""Every platform port accepts a TCP connection (probed concurrently, once)."""
from fixtures.spec import EMERGENCY, check

from .guide import PORTS


@check("port-open", "Platform port accepts TCP connections", tiers=EMERGENCY, severity="critical", guide=PORTS,
       remedy="free-port",
       needs=("container-running",))
def test_port_open(port, port_probes, verdict):
    probe = port_probes[(port.host, port.port)]
    verdict.measured("connect_ms", probe.elapsed_ms)
    verdict.expect(probe.open, expected=f"{port.address}:{port.port} ({port.owner}) to accept a TCP connection",
                   seen=f"{probe.error} after {probe.elapsed_ms:.0f} ms")
