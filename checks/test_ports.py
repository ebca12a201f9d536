"""Every platform port accepts a TCP connection (probed concurrently, once)."""
from checks.catalog import check


@check("port-open")
def test_port_open(port, port_probes, verdict):
    probe = port_probes[(port.host, port.port)]
    verdict.expect(probe.open, expected=f"{port.address}:{port.port} ({port.owner}) to accept a TCP connection",
                   seen=f"{probe.error} after {probe.elapsed_ms:.0f} ms")
