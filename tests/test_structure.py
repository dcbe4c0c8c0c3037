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


# -- size ------------------------------------------------------------------------------------------
#: flatc's output, regenerated from the schema, not written by hand.
GENERATED = {"litecls/metadata/metadata_schema_py_generated.py"}
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def _sources() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(SRC).as_posix() not in GENERATED]


def test_no_function_over_80_lines_and_no_module_over_400() -> None:
    """Lines from ``def`` (decorators excluded) to the function's last line, docstring included."""
    offenders = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            offenders.append(f"{path.relative_to(SRC)}: {lines} lines (module)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {length} lines")
    assert not offenders, "over the size limits:\n" + "\n".join(offenders)


# -- docstrings as contracts ---------------------------------------------------------------------------
# The rule (Google / MediaPipe style sections), for every public name in litecls.__all__ and in each
# subpackage's __all__, and for the public methods of the classes among them:
# - every function, class, method and property has a docstring;
# - a function or method that takes arguments (besides self/cls) has an "Args:" section;
# - one annotated to return something other than None has "Returns:" (or "Yields:"); properties are
#   exempt (their docstring says what they are);
# - one whose own body raises an exception (a `raise X` statement) has "Raises:";
# - a class whose constructor takes arguments (its own __init__, or dataclass fields) documents them
#   in "Args:" or "Attributes:" (in the class docstring or __init__'s); exceptions, enums and
#   NamedTuple-like records with no constructor of their own need only a docstring.
# Names are found with ast, without importing anything (PyTorch or FastAPI need not be installed).


def _module_path(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _definition(module: str, name: str, depth: int = 0) -> ast.AST | None:
    """The ``def`` or ``class`` node that ``name`` in ``module`` stands for (following re-exports)."""
    path = _module_path(module)
    if path is None or depth > 8:
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    target = _resolve(module, node, path.name == "__init__.py")
                    return _definition(target, alias.name, depth + 1)
    if module == "litecls":  # lazy exports: _EXPORTS maps a name to the module defining it
        for node in tree.body:
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "_EXPORTS":
                exports = ast.literal_eval(node.value)
                if name in exports:
                    return _definition(exports[name], name, depth + 1)
    return None  # a constant or other value: nothing to document


def _public_names() -> list[tuple[str, str]]:
    names = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        module = _module_name(init)
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
                names += [(module, n) for n in ast.literal_eval(node.value) if not n.startswith("__")]
    return names


def _raises(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Raise) and n.exc is not None for n in ast.walk(node))


def _function_problems(where: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    doc = ast.get_docstring(node)
    if not doc:
        return [f"{where}: no docstring"]
    decorators = {ast.unparse(d) for d in node.decorator_list}
    if decorators & {"property", "functools.cached_property", "cached_property"} or any(
            d.endswith(".setter") for d in decorators):
        return []
    problems = []
    args = node.args
    named = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    params = [a.arg for a in named if a.arg not in ("self", "cls")]
    params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    if params and "Args:" not in doc:
        problems.append(f"{where}: takes {', '.join(params)} but has no Args: section")
    returns = ast.unparse(node.returns) if node.returns is not None else "None"
    if returns not in ("None", "NoReturn") and node.name != "__init__" and not (
            "Returns:" in doc or "Yields:" in doc):
        problems.append(f"{where}: returns {returns} but has no Returns: section")
    if _raises(node) and "Raises:" not in doc:
        problems.append(f"{where}: raises but has no Raises: section")
    return problems


def _is_exception_or_enum(node: ast.ClassDef) -> bool:
    bases = [ast.unparse(b) for b in node.bases]
    return any(b.endswith(("Error", "Exception", "Warning", "Enum", "IntEnum", "NamedTuple")) for b in bases)


def _class_problems(where: str, node: ast.ClassDef) -> list[str]:
    doc = ast.get_docstring(node)
    if not doc:
        return [f"{where}: no docstring"]
    if _is_exception_or_enum(node):
        return []
    problems = []
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    dataclass = any("dataclass" in ast.unparse(d) for d in node.decorator_list)
    fields = [n for n in node.body
              if isinstance(n, ast.AnnAssign) and "ClassVar" not in ast.unparse(n.annotation)]
    init_doc = (ast.get_docstring(init) or "") if init is not None else ""
    takes = bool(init is not None and [*init.args.args[1:], *init.args.kwonlyargs]) or (
        dataclass and bool(fields))
    if takes and not any(s in doc or s in init_doc for s in ("Args:", "Attributes:")):
        problems.append(f"{where}: its constructor takes arguments; no Args:/Attributes: section says which")
    if init is not None and _raises(init) and "Raises:" not in doc + init_doc:
        problems.append(f"{where}: its constructor raises but has no Raises: section")
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
            problems += _function_problems(f"{where}.{item.name}", item)
    return problems


def docstring_problems(package: str | None = None) -> list[str]:
    """Every breach of the rule above (for one package, or all)."""
    problems, seen = [], set()
    for module, name in _public_names():
        if package is not None and module != package:
            continue
        node = _definition(module, name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        where = f"{module}.{name}"
        if isinstance(node, ast.ClassDef):
            problems += _class_problems(where, node)
        else:
            problems += _function_problems(where, node)
    return problems


def test_public_names_document_args_returns_and_raises() -> None:
    problems = docstring_problems()
    assert not problems, f"{len(problems)} docstring(s) short of the contract:\n" + "\n".join(problems)
