"""The package's modules import one way: no module imports one that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import ephemeral_registry

PACKAGE = Path(ephemeral_registry.__file__).parent

LAYERS = [
    {"__init__", "__main__", "_cli", "pytest_plugin"},
    {"_lifecycle"},
    {"_registry"},
    {"_bring_up", "_teardown", "_watch"},
    {"_pushers.base", "_pushers.crane", "_pushers.native"},
    {"_running"},
    {"_engine", "_engine.base", "_engine.docker", "_engine.errors", "_engine.quirks"},
]
"""From the top down: a module may import those of the layers below its own, never above."""


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__") or "__init__"


def _imports(path: Path) -> set[str]:
    """The package's modules that the file at ``path`` imports (relative imports only)."""
    here = _module(path).split(".")
    package = here[:-1] if path.name != "__init__.py" else here
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join([*base, *([node.module] if node.module else [])])
            if node.module:
                found.add(target)
            for alias in node.names:  # from . import _auth, or from ._pushers import distribution
                found.add(".".join(filter(None, [target, alias.name])))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def test_no_module_imports_a_layer_above_its_own() -> None:
    """The life cycle imports the handle, the handle the bring-up and the pushers; never back."""
    graph = _graph()
    layer_of = {name: n for n, layer in enumerate(LAYERS) for name in layer}
    for name, imported in graph.items():
        for other in imported:
            if name in layer_of and other in layer_of:
                assert layer_of[other] >= layer_of[name], f"{name} imports {other}, above it"


def test_there_are_no_import_cycles() -> None:
    """Following imports from any module never comes back to it."""
    graph = _graph()
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            name = todo.pop()
            assert name != start, f"{start} imports itself through {sorted(seen)}"
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))


def test_only_the_docker_engine_uses_aiodocker_and_aiohttp() -> None:
    """Everything else holds an ``Engine`` and the typed values of ``_engine.base``."""
    users: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                top = name.partition(".")[0]
                if top in ("aiodocker", "aiohttp"):
                    users.setdefault(top, set()).add(_module(path))
    assert users == {
        "aiodocker": {"_engine.docker", "_engine.errors", "_lifecycle", "_sweep"},
        "aiohttp": {"_engine.docker", "_engine.errors"},
    }, "_lifecycle and _sweep: only the type of their public docker= argument"
