"""The module graph of plugins/lifeboat has no import cycle, and no module is over 500 lines.

Every `import` / `from ... import` statement counts, at any depth (function-level imports included),
except those under `if TYPE_CHECKING:`: they never run, they only name a type. `from pkg import name`
is an edge to `pkg.name` when that is a module of the package, else to `pkg`. Python's implicit import
of a parent package when a submodule is imported is not an edge: it is how packages load, and a
package `__init__` that imports one of its own submodules at the top is then an ordinary edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
PACKAGE = PLUGINS / "lifeboat"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PLUGINS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str] | None = None) -> set[str]:
    """Names of the modules `module` imports (absolute, possibly outside the package); `known`: the
    package's modules, to tell `from pkg import submodule` from `from pkg import name`."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{alias.name}" for alias in node.names}
            found = subs & (known or set())
            out.update(found)
            if len(found) < len(subs):
                out.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = _imports(tree, name, path.name == "__init__.py", set(mods))
        graph[name] = {m for m in found if m in mods and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative DFS, deterministic order)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_import_graph_finds_a_planted_cycle():
    """The checker itself can fail: a cycle through three modules is found and named."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(g) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from lifeboat import jobs\nif TYPE_CHECKING:\n    import lifeboat.ui\n")
    assert _imports(tree, "lifeboat.x", False, {"lifeboat.jobs"}) == {"lifeboat.jobs"}
    assert _imports(ast.parse("from lifeboat.x import y"), "lifeboat.z", False) == {"lifeboat.x"}


def test_import_graph_of_lifeboat_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "lifeboat.registry" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_import_graph_inventory_does_not_import_engines():
    graph = import_graph()
    assert not {m for m in graph["lifeboat.inventory"] if m.startswith("lifeboat.datastores")}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_at_most_500_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PLUGINS)} has {n} lines (limit {MAX_LINES}): split it by concern"
