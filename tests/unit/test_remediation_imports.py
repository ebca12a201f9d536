"""The remediation package imports in one direction: no module reaches back to one that imports it.

Read from the source with ast, function-level imports included, so a cycle
hidden behind a late `from . import x` inside a function is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "remediation"


def imports_of(path: Path) -> set[str]:
    """The remediation modules `path` imports, by module name (`actions`, `cli`, ...)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .x import y
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x, y
                found.update(alias.name for alias in node.names)
            elif node.module == "remediation":
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("remediation."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("remediation."))
    return found & modules()


def modules() -> set[str]:
    return {p.stem for p in PACKAGE.glob("*.py")}


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) - {p.stem} for p in PACKAGE.glob("*.py")}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the path around it, or None."""
    state: dict[str, str] = {}  # visiting / done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "visiting"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "visiting":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("from . import audit, windows\nfrom .sequence import carry_out\n"
                      "def f():\n    from .compose import run\n    import remediation.cli\n")
    assert imports_of(source) == {"audit", "windows", "sequence", "compose", "cli"}


def test_no_module_of_remediation_imports_itself_back():
    edges = graph()
    assert {"actions", "fitting", "procedures", "sequence", "registry", "cli"} <= set(edges)
    assert cycle(edges) is None, " -> ".join(cycle(edges))


def test_the_helper_table_imports_no_helper():
    # The CLI's `list` and `--help`, and the checks, read the table without importing Docker or database clients.
    assert graph()["registry"] <= {"invocation"}
