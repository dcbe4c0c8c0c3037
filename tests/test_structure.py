"""The package's shape: no import cycle, and the runtime side never reaches the PyTorch side."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "litecls"
#: What litecls.tasks and litecls.runtime must never import: conversion, training, the networks.
TORCH_SIDE = ("litecls.export", "litecls.training", "litecls.models.efficientnet_lite",
              "litecls.models.mobilenet_v2", "litecls.models.weights", "litecls.models.streams",
              "litecls.models.complexity")

pytestmark = pytest.mark.core


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


MODULES = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
           for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """Modules of litecls that ``path`` imports (at module level only, or anywhere).

    ``from package import submodule`` counts as importing the submodule (its package is
    necessarily initialised first, which is no cycle of the code's own making).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module, is_package = _module_name(path), path.name == "__init__.py"
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_package)
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in MODULES else target)
    return {name for name in found if name == "litecls" or name.startswith("litecls.")}


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {target for target in _imports(path, module_level_only)
                   if target in paths and target != name}
            for name, path in paths.items()}


def test_no_import_cycle_at_module_level() -> None:
    graph = _graph(module_level_only=True)
    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target):], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_runtime_side_never_imports_the_pytorch_side() -> None:
    offenders = []
    for path in [*PACKAGE.joinpath("tasks").rglob("*.py"), *PACKAGE.joinpath("runtime").rglob("*.py")]:
        for target in _imports(path, module_level_only=False):
            if target.startswith(TORCH_SIDE):
                offenders.append(f"{_module_name(path)} imports {target}")
    assert not offenders, "\n".join(offenders)
