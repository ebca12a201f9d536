"""The lab's pure parts: apt sources parsing, topology, image tag, compose binary."""
from __future__ import annotations

import pytest

from lab import LabError
from lab.base_image import debian_mirror, image_tag
from lab.compose import compose_binary
from lab.topology import find, services


def write_sources(root, one_line: str = "", deb822: str = ""):
    (root / "sources.list.d").mkdir(parents=True)
    (root / "sources.list").write_text(one_line)
    if deb822:
        (root / "sources.list.d" / "debian.sources").write_text(deb822)
    return root


def test_mirror_from_deb822_skips_security(tmp_path):
    root = write_sources(tmp_path, deb822=(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"))
    assert debian_mirror(root) == "http://mirror.example/debian"


def test_mirror_from_one_line_format(tmp_path):
    root = write_sources(tmp_path, one_line=(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64] http://one.example/debian bookworm main contrib\n"))
    assert debian_mirror(root) == "http://one.example/debian"


def test_no_mirror_is_one_clear_error(tmp_path):
    root = write_sources(tmp_path, one_line="deb http://one.example/debian trixie main\n")
    with pytest.raises(LabError, match="no apt source for Debian bookworm"):
        debian_mirror(root)


def test_image_tag_depends_on_the_package_list(monkeypatch):
    before = image_tag()
    monkeypatch.setattr("lab.base_image.PACKAGES", ("python3",))
    assert image_tag() != before and image_tag().startswith("nautilus-lab-base:bookworm-")


def test_topology_reads_the_compose_file():
    by_container = {s.container: s for s in services()}
    assert by_container["nautilus-risk-engine"].port == 8200
    assert by_container["nautilus-risk-engine"].engine == "risk"
    assert by_container["nautilus-redis"].engine is None
    assert len([s for s in services() if s.service.endswith("-engine")]) == 9
    assert find("risk") == find("nautilus-risk-engine") == find("risk-engine")
    with pytest.raises(LabError, match="unknown lab target 'nope'"):
        find("nope")


def test_compose_binary_is_the_shipped_executable():
    binary = compose_binary()
    assert binary.name == "docker-compose" and binary.stat().st_mode & 0o111
