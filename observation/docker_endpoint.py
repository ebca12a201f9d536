"""Which Docker daemon a host means: one rule for the checks, the remediation helpers and the lab.

The inventory host's `url` when the inventory sets it, else DOCKER_HOST (with
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else the local socket. Plain Python
(no pydantic, no Docker SDK), so the lab can call it before anything is installed.

>>> docker_endpoint(None, {"DOCKER_HOST": "unix:///run/x.sock"}).describe()
'unix:///run/x.sock (from DOCKER_HOST)'
>>> docker_endpoint("ssh://ops@t2", {"DOCKER_HOST": "unix:///run/x.sock"}, url_source="hosts[1].url").describe()
'ssh://ops@t2 (from hosts[1].url)'
>>> docker_endpoint(None, {}).describe()
'unix:///var/run/docker.sock (from the default, with no hosts[].url and no DOCKER_HOST)'
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

LOCAL_SOCKET = "unix:///var/run/docker.sock"
INVENTORY_URL = "hosts[].url in the inventory"


@dataclass(frozen=True)
class DockerEndpoint:
    """A Docker daemon's address and why it is this one.

    TLS is used when `cert_path` is set (the directory of ca.pem, cert.pem and key.pem);
    `tls_verify` says whether the daemon's certificate is checked against ca.pem.
    """

    url: str
    tls_verify: bool = False
    cert_path: str | None = None
    source: str = INVENTORY_URL  # where the url came from, in words
    how_to_change: str = f"fix {INVENTORY_URL}"  # what to edit to point somewhere else, in words

    def describe(self) -> str:
        return f"{self.url} (from {self.source})"


def docker_endpoint(url: str | None = None, environ: Mapping[str, str] = os.environ, *, tls_verify: bool = False,
                    cert_path: str | None = None, url_source: str = INVENTORY_URL) -> DockerEndpoint:
    """The endpoint for a host whose inventory `url` (with its `tls_verify`, `cert_path`) is given or None.

    `url_source` names where `url` was written, for messages (e.g. "hosts[0].url in the inventory").
    """
    if url:
        # The inventory's own rule, unchanged: TLS only with both tls_verify and cert_path.
        return DockerEndpoint(url, tls_verify, cert_path if tls_verify else None, url_source, f"fix {url_source}")
    host = environ.get("DOCKER_HOST")
    if host:  # empty is unset, as for the Docker SDK and CLI
        # As docker.utils.kwargs_from_env (Docker SDK 7) reads them: DOCKER_TLS_VERIFY set to anything but ""
        # (even "0") verifies; an empty DOCKER_CERT_PATH is unset; TLS is on when either is set, with the
        # certificates in DOCKER_CERT_PATH, else ~/.docker.
        verify = environ.get("DOCKER_TLS_VERIFY") not in (None, "")
        certs = environ.get("DOCKER_CERT_PATH") or None
        if verify and not certs:
            certs = os.path.join(os.path.expanduser("~"), ".docker")
        return DockerEndpoint(host, verify, certs, "DOCKER_HOST", "fix or unset DOCKER_HOST")
    return DockerEndpoint(LOCAL_SOCKET, source="the default, with no hosts[].url and no DOCKER_HOST",
                          how_to_change=f"set {INVENTORY_URL} or DOCKER_HOST")
