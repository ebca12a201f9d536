"""The lab's pure parts: apt sources parsing, topology, image tag, compose binary; how lab/ and the lab engine's
modules import each other."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

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


# -- how the lab's modules fit together ------------------------------------------------------------------

LAB = Path(__file__).resolve().parents[2] / "lab"
ENGINE = LAB / "engine"


def lab_imports(source: str) -> set[str]:
    """The lab modules one module of lab/ imports (`from . import x`, `from .x import y`), at any depth of the
    code: an import inside a function is part of the circle as much as one at the top."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # `from . import faults, LabError`: only names that are modules of lab/ count
                found.update(alias.name for alias in node.names if (LAB / f"{alias.name}.py").exists())
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as the path that closes it (a, b, ..., a), or [] when there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node], _ = "open", path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node], _ = "done", path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_sees_a_circle_and_none_in_a_tree():
    assert find_cycle({"stack": {"faults"}, "faults": {"compose"}, "compose": {"stack"}}) == \
        ["compose", "stack", "faults", "compose"]
    assert find_cycle({"stack": {"faults", "compose"}, "faults": {"compose"}, "compose": set()}) == []
    assert lab_imports("def f():\n    from .stack import guard\nfrom . import faults, LabError\n") == {"stack", "faults"}


def test_lab_has_no_import_circle():
    graph = {path.stem: lab_imports(path.read_text()) - {"__init__"} for path in LAB.glob("*.py")}
    assert graph["faults"] and graph["stack"]  # the graph was read, not empty
    assert find_cycle(graph) == [], f"import circle in lab/: {' -> '.join(find_cycle(graph))}"


def literal(path: Path, name: str):
    """A module-level constant of an engine module, read without importing it (the engine's modules run with
    Debian's python3 and import aiohttp, redis and psycopg2)."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return node.value
    raise AssertionError(f"{name} not found in {path.name}")


def test_every_engine_fault_kind_has_an_entry_in_the_fault_table():
    kinds = ast.literal_eval(literal(ENGINE / "engine_config.py", "FAULT_KINDS"))
    table = literal(ENGINE / "fault_table.py", "FAULTS")
    assert isinstance(table, ast.Dict)
    entries = {ast.literal_eval(key): value for key, value in zip(table.keys, table.values)}
    assert len(entries) == len(table.keys), "a kind appears twice in FAULTS"
    assert sorted(entries) == sorted(kinds)
    for kind, entry in entries.items():  # each entry says both what inject does and what clear undoes
        assert isinstance(entry, ast.Call) and entry.func.id == "Fault" and len(entry.args) == 2, kind


def test_the_lab_cli_knows_the_engine_faults():
    from lab.fault_records import ENGINE_FAULTS
    assert ENGINE_FAULTS == ast.literal_eval(literal(ENGINE / "engine_config.py", "FAULT_KINDS"))


def test_engine_parts_import_only_what_the_engine_image_has():
    """The engine runs in the lab's Debian image: the standard library, aiohttp, redis, psycopg2 and its siblings."""
    parts = {path.stem for path in ENGINE.glob("*.py")}
    allowed = set(sys.stdlib_module_names) | {"aiohttp", "redis", "psycopg2"} | parts
    for path in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: no relative imports (app.py runs as a script)"
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}, which the engine image lacks"
