"""Build the lab's base image from Debian packages, without any registry.

`debootstrap --variant=minbase` makes a bookworm root filesystem holding
everything the lab runs (Python with aiohttp/redis/psycopg2, Redis, PostgreSQL,
Prometheus), and `docker import` turns it into an image. The tag carries a hash
of the package list, so changing the list builds a new image and an unchanged
list is never rebuilt.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

from . import LabError

SUITE = "bookworm"
PACKAGES = (
    "python3", "python3-aiohttp", "python3-redis", "python3-psycopg2",
    "redis-server", "postgresql", "prometheus",
    "curl", "procps", "iproute2", "iputils-ping", "netcat-openbsd", "ca-certificates",
)
REPOSITORY = "nautilus-lab-base"
# Bulk the containers never read; dropping it roughly halves the import.
PRUNED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
          "usr/share/locale", "usr/share/info")


def image_tag() -> str:
    digest = hashlib.sha256(" ".join((SUITE,) + PACKAGES).encode()).hexdigest()[:12]
    return f"{REPOSITORY}:{SUITE}-{digest}"


def debian_mirror(sources_root: Path = Path("/etc/apt")) -> str:
    """The first Debian mirror in this machine's apt sources that serves SUITE.

    Both the one-line format (sources.list) and deb822 (*.sources) are read.
    """
    for uri, suites in _apt_sources(sources_root):
        if SUITE in suites and "security" not in uri:
            return uri
    raise LabError(f"no apt source for Debian {SUITE} found under {sources_root}: "
                   "add one (e.g. in /etc/apt/sources.list.d/debian.sources) so debootstrap has a mirror")


def _apt_sources(root: Path):
    one_line = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in _read(path).splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                words = [p for p in parts[1:] if not p.startswith("[")]
                yield words[0], {words[1]}
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", _read(path)):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, flags=re.M))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                suites = set(fields.get("Suites", "").split())
                for uri in fields.get("URIs", "").split():
                    yield uri, suites


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base_image(client: docker.DockerClient, rebuild: bool = False) -> str:
    tag = image_tag()
    if image_exists(client, tag) and not rebuild:
        return tag
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="nautilus-lab-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        print(f"[lab] building base image {tag} from {mirror} (about a minute)", flush=True)
        _debootstrap(rootfs, mirror)
        for rel in PRUNED:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        _import(rootfs, tag)
    print(f"[lab] base image {tag} ready", flush=True)
    return tag


def _apt_install(package: str) -> None:
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            raise LabError(f"`{' '.join(cmd)}` failed: install {package} by hand and retry")


def _debootstrap(rootfs: Path, mirror: str) -> None:
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    stages = {"Retrieving": 0, "Unpacking": 0, "Configuring": 0}
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-15:]
        stage = line.split()[1] if line.startswith("I: ") and len(line.split()) > 1 else ""
        if stage in stages:
            stages[stage] += 1
            if stages[stage] % 25 == 1:
                print(f"[lab]   debootstrap: {stage.lower()} packages ({stages[stage]} so far)", flush=True)
    if proc.wait() != 0:
        sys.stderr.write("\n".join(tail) + "\n")
        raise LabError(f"debootstrap failed (exit {proc.returncode}); its last lines are above")


def _import(rootfs: Path, tag: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    done = subprocess.run(["docker", "import", "--change", "ENV LANG=C.UTF-8", "-", tag],
                          stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    if tar.wait() != 0 or done.returncode != 0:
        raise LabError(f"docker import failed: {done.stderr.strip() or 'tar failed'}")
