"""Shared fixtures and the suite's rules: markers, the test-model cache, seeds, required test data.

Zoo models are built once and cached on disk in a folder named by a hash of the
sources that produce them (``src/litecls/export/**`` and ``src/litecls/models/**``)
under ``.cache/test-models`` in the checkout (ignored by git), or under
``$LITECLS_TEST_CACHE``: any change to the exporter or the model code gets
freshly built files, never stale ones.

Every test carries at least one marker saying what it needs (declared in
pyproject.toml): ``core``, ``zoo``, ``train``, ``serve``, ``browser``, ``ray``;
``slow`` marks the long ones. ``make test-fast`` runs the quick subset.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPO, in_ci, seed_from_env, source_hash

#: ``$LITECLS_TEST_MODELS`` names the exact folder instead: the core-install run (scripts/core_env.sh)
#: reads the files the full run built, from an environment without the converters the hash covers.
_CACHE_ROOT = Path(os.environ.get("LITECLS_TEST_CACHE", REPO / ".cache" / "test-models"))
TEST_CACHE = (Path(os.environ["LITECLS_TEST_MODELS"]) if os.environ.get("LITECLS_TEST_MODELS")
              else _CACHE_ROOT / source_hash())
NEEDS = ("core", "zoo", "train", "serve", "browser", "ray")
ZOO_FIXTURES = {"zoo_model", "zoo_cache", "zoo_embedding"}


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = seed_from_env()
    return [f"litecls test models: {TEST_CACHE}",
            f"LITECLS_TEST_SEED: {'unset (inputs as they are)' if seed is None else seed}; "
            f"CI: {'yes (missing test data fails)' if in_ci() else 'no'}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test says what it needs; a test using zoo files cannot claim to be ``core``."""
    problems = []
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        fixtures = set(getattr(item, "fixturenames", ()))
        if not marks & set(NEEDS):
            problems.append(f"{item.nodeid}: no marker among {', '.join(NEEDS)}")
        elif fixtures & ZOO_FIXTURES and not marks & {"zoo", "train"}:
            problems.append(f"{item.nodeid}: uses zoo models but is not marked zoo")
    if problems:
        raise pytest.UsageError("tests without the right markers:\n  " + "\n  ".join(problems))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``LITECLS_CORE_ONLY`` set (the core-install run), skip test files that cannot run there.

    That is a file with no core test, or one importing at its top a package the core install
    lacks (PyTorch, MediaPipe, PyAV...).
    """
    if not (os.environ.get("LITECLS_CORE_ONLY") and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_")):
        return None
    source = collection_path.read_text(encoding="utf-8")
    if "pytest.mark.core" not in source:
        return True
    tops = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            tops.add(node.module.split(".")[0])
    local = {path.stem for path in collection_path.parent.glob("*.py")}
    return any(importlib.util.find_spec(name) is None for name in tops - local - {"__future__"})


@pytest.fixture(scope="session")
def zoo_cache() -> Path:
    """Folder holding the models built for the tests (one per source hash)."""
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    return TEST_CACHE


@pytest.fixture(scope="session")
def zoo_model(zoo_cache: Path) -> Callable[[str, str], Path]:
    """``zoo_model(name, precision)`` -> path of that zoo model, built on first use."""
    from litecls.models.zoo import build

    def get(name: str, precision: str = "float32") -> Path:
        return build(name, precision, cache=zoo_cache)

    return get


@pytest.fixture(scope="session")
def zoo_embedding(zoo_cache: Path) -> Callable[[str, str], Path]:
    """``zoo_embedding(name, precision)`` -> path of that zoo model's embedding file, built on first use."""
    from litecls.models.zoo import build_embedding

    def get(name: str, precision: str = "float32") -> Path:
        return build_embedding(name, precision, cache=zoo_cache)

    return get
