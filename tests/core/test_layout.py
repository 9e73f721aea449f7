"""The package layout's two rules, read from the source (AST), imports inside
functions included: no import circle between the modules of ``pylightnix`` and
``dap_adapter``, and no module importing or touching another module's
``_private`` names."""
from __future__ import annotations

import ast
import os
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("pylightnix", "dap_adapter")


def _modules() -> Dict[str, str]:
    """Module name -> file, for every module of the checked packages."""
    out: Dict[str, str] = {}
    for pkg in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, pkg)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(folder, f)
    return out


MODULES = _modules()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    is_pkg = MODULES[module].endswith("__init__.py")
    base = module.split(".")
    base = base[:len(base) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _walk(tree: ast.AST, typing_too: bool) -> Iterator[ast.AST]:
    """``ast.walk``, skipping the ``if TYPE_CHECKING:`` blocks unless ``typing_too``
    (their imports never run, so they cannot close a circle)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not typing_too and isinstance(node, ast.If) and _dotted(node.test) in ("TYPE_CHECKING",
                                                                                  "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imports(module: str, tree: ast.AST, typing_too: bool = True) -> Iterator[Tuple[str, Optional[str], int]]:
    """(imported module, name taken from it or None, line) for every import in ``tree``."""
    for node in _walk(tree, typing_too):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            for a in node.names:
                if f"{src}.{a.name}" in MODULES:
                    yield f"{src}.{a.name}", None, node.lineno  # a submodule
                else:
                    yield src, a.name, node.lineno


def _trees() -> Iterator[Tuple[str, ast.AST]]:
    for name, path in sorted(MODULES.items()):
        with open(path, encoding="utf-8") as f:
            yield name, ast.parse(f.read(), path)


def import_graph() -> Dict[str, Set[str]]:
    """Module -> the checked modules it imports when run (at the top or inside functions)."""
    graph: Dict[str, Set[str]] = {}
    for name, tree in _trees():
        graph[name] = {m for m, _, _ in _imports(name, tree, typing_too=False) if m in MODULES and m != name}
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses() -> List[str]:
    """Every place a module imports, reads or sets a ``_private`` name of another checked module."""
    found: List[str] = []
    for name, tree in _trees():
        aliases: Dict[str, str] = {}  # a local name bound to a checked module -> that module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES:
                        aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom):
                src = _absolute(name, node)
                for a in node.names:
                    if f"{src}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{src}.{a.name}"
        for m, taken, line in _imports(name, tree):
            if m in MODULES and m != name and taken is not None and _private(taken):
                found.append(f"{name}:{line}: from {m} import {taken}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                target = _dotted(node.value)
                if target is None:
                    continue
                head, _, rest = target.partition(".")
                mod = aliases.get(head)
                if mod is None and target in MODULES:
                    mod = target
                elif mod is not None and rest:
                    mod = f"{mod}.{rest}" if f"{mod}.{rest}" in MODULES else None
                if mod is not None and mod != name:
                    found.append(f"{name}:{node.lineno}: {target}.{node.attr} ({mod})")
    return found


def _dotted(node: ast.AST) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def test_the_packages_have_modules() -> None:
    assert "pylightnix" in MODULES and "dap_adapter" in MODULES and len(MODULES) > 40


def test_no_import_circles() -> None:
    found = cycles(import_graph())
    assert not found, "import circles (modules importing each other, directly or around a loop):\n" + \
        "\n".join(" <-> ".join(c) for c in found)


def test_no_module_uses_another_modules_private_names() -> None:
    found = private_uses()
    assert not found, "private names used across modules:\n" + "\n".join(found)


@pytest.mark.parametrize("source, expect", [
    ("from pylightnix.engine.steps import _pause\n", True),
    ("from pylightnix.engine import events\nevents._frontends.clear()\n", True),
    ("import pylightnix.engine.events\npylightnix.engine.events._frontends = []\n", True),
    ("from pylightnix.engine import events\nevents.notify('x')\n", False),
    ("import os\nos._exit(0)\n", False),
])
def test_the_private_check_sees_what_it_should(tmp_path, monkeypatch, source: str, expect: bool) -> None:
    """The checker itself: a module written to use a private name is caught, a clean one is not."""
    name = "pylightnix._layout_probe"
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, name, str(path))
    assert any(u.startswith(name + ":") for u in private_uses()) == expect


def test_the_cycle_check_sees_a_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
