"""The import graph: no module imports one that imports it back, and imports run down the layers
(search uses pipeline, which uses compress/convert, which use runtime/models/data/core; never the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

import edgemap

ROOT = Path(edgemap.__file__).parent
# lower number = lower layer; a module may import its own package and anything of a lower layer
LAYERS = {"errors": 0, "core": 1, "data": 2, "results": 2, "models": 3, "train": 4, "runtime": 4, "devices": 4,
          "compress": 5, "convert": 5, "deploy": 5, "pipeline": 6, "report": 6, "peers": 6, "split": 6, "search": 7,
          "commands": 8, "cli": 9}
# imports that still run upward, each with why (kept short: new entries need a reason)
KNOWN_UPWARD = {("models", "runtime"): "a user's ONNX model is checked and run with the runtime's ONNX Runtime session"}


def module_imports() -> dict[str, set[str]]:
    """module -> the edgemap modules it imports (at the top or inside functions)."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(("edgemap", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t != "edgemap":
                    deps.add(t)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                on.discard(w)
                comp.append(w)
            on.discard(v)
            if comp:
                out.append(sorted([v, *comp]))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def layer(module: str) -> str:
    return module.split(".")[1]


def test_no_import_cycles():
    assert cycles(module_imports()) == []


def test_imports_run_down_the_layers():
    upward = sorted({(layer(m), layer(d), m, d) for m, deps in module_imports().items() for d in deps
                     if LAYERS[layer(d)] >= LAYERS[layer(m)] and layer(d) != layer(m)
                     and (layer(m), layer(d)) not in KNOWN_UPWARD})
    assert upward == []


def test_the_checker_sees_a_cycle():
    graph = {"edgemap.core.a": {"edgemap.search.b"}, "edgemap.search.b": {"edgemap.core.a"}}
    assert cycles(graph) == [["edgemap.core.a", "edgemap.search.b"]]
