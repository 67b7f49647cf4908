"""The package's import graph has no cycle, read from the source (ast), without importing anything.

An edge ``a -> b`` is an import of marlkit module ``b`` (or of a name from it) in module ``a``; importing
``marlkit.x.y`` also runs the package ``marlkit.x``'s ``__init__``, so that is an edge too unless ``a`` lives in
that package (its own package is initialised before it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import marlkit

ROOT = Path(marlkit.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["marlkit", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _module_level(body: list[ast.stmt]):
    """Import statements executed when the module is imported (also inside if/try/with at module level)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for block in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                yield from _module_level(handler.body)


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module
    return [module, *(f"{module}.{a.name}" for a in node.names)]


def import_graph(module_level_only: bool = True) -> dict[str, set[str]]:
    """marlkit module -> the marlkit modules (packages included) importing it imports first."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = _module_level(tree.body) if module_level_only else (
            n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
        deps: set[str] = set()
        for node in nodes:
            for target in _imported(node, name, path.name == "__init__.py"):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    dep = ".".join(parts[:i])
                    if dep in modules and not (name == dep or name.startswith(dep + ".")):
                        deps.add(dep)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of ``graph``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_covers_the_package():
    graph = import_graph()
    assert {"marlkit.train", "marlkit.bench.runner", "marlkit.behavior.weights", "marlkit.data.build"} <= set(graph)
    assert "marlkit.nets.mlp" in graph["marlkit.behavior.weights"]
    assert "marlkit.behavior.td3" not in graph["marlkit.envs.mamujoco"]


def test_no_import_cycle_at_module_level():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_function_local_import_hides_a_cycle():
    """Counting the imports inside functions too, the graph stays acyclic: none of them dodges a cycle."""
    cycle = find_cycle(import_graph(module_level_only=False))
    assert cycle is None, "import cycle through a function-local import: " + " -> ".join(cycle)


def test_weights_io_depends_only_on_nets():
    deps = import_graph()["marlkit.behavior.weights"]
    assert deps and all(d == "marlkit.nets" or d.startswith("marlkit.nets.") for d in deps), deps
