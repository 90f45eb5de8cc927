"""The package's shape: no import circles among nbjax's modules, and strategies in the
abstract/final pattern (every class of a strategy family is abstract, named Abstract*, or final
with no subclasses).  Both read the source (the import graph by ``ast``, every import of a
module counted, function-local and TYPE_CHECKING ones too), so they fail as soon as a change
brings a circle or subclasses a concrete strategy."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "nbjax").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the nbjax modules it imports anywhere in its text (``from P import m``
    counts as an import of module P.m when that is a module, else of P)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in modules:
                        edges.add(full)
                    elif base in modules:
                        edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_import_circles():
    graph = import_graph()
    assert "nbjax.kernel" in graph and "nbjax.strategy" in graph["nbjax.experiment"]
    assert circles(graph) == []


def test_strategy_module_imports_nothing_of_nbjax():
    assert import_graph()["nbjax.strategy"] == set()


def _family(base):
    out, todo = [], [base]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("nbjax"):
                out.append(sub)
                todo.append(sub)
    return out


@pytest.mark.parametrize(
    "base",
    [
        "nbjax.strategy:AbstractAccumulation",
        "nbjax.fit:AbstractParameter",
        "nbjax.fit:AbstractMethod",
        "nbjax.fit:AbstractLoss",
    ],
)
def test_strategies_are_abstract_or_final(base):
    import importlib

    module, name = base.split(":")
    root = getattr(importlib.import_module(module), name)
    import nbjax.ccompat  # noqa: F401 (its model joins the family)

    family = _family(root)
    assert family, base
    for cls in family:
        if cls.__name__.startswith("Abstract"):
            assert inspect.isabstract(cls) or cls.__subclasses__(), f"{cls.__name__} declares nothing abstract"
        else:
            assert getattr(cls, "__final__", False), f"{cls.__name__} is concrete but not @final"
            assert not cls.__subclasses__(), f"{cls.__name__} is final but subclassed"
            assert not inspect.isabstract(cls), f"{cls.__name__} leaves {cls.__abstractmethods__} abstract"


def test_every_kernel_call_on_a_model_is_declared_abstract():
    """What kernel.py calls on ``model`` (``e.model.NAME``, ``exp.model.NAME``) is an abstract
    method of AbstractAccumulation."""
    from nbjax.strategy import AbstractAccumulation

    text = (SRC / "nbjax" / "kernel.py").read_text()
    called = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "model":
            called.add(node.attr)
    assert called >= {"pixels", "prepare", "finish"}
    assert called <= AbstractAccumulation.__abstractmethods__, called - AbstractAccumulation.__abstractmethods__
