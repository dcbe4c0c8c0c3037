"""Shared fixtures: real zoo models, built once per test run and cached on disk.

The cache lives in ``.cache/test-models`` inside the checkout (ignored by
git), or in ``$LITECLS_TEST_CACHE``: a CI run converts each model once and
every test after that reuses the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from litecls.models.zoo import build

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = Path(os.environ.get("LITECLS_TEST_CACHE", REPO / ".cache" / "test-models"))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``LITECLS_CORE_ONLY`` set (the core-install run), skip test files that hold no core test.

    Such files may import PyTorch or MediaPipe at the top, which the core install lacks.
    """
    if (os.environ.get("LITECLS_CORE_ONLY") and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_")):
        return "pytest.mark.core" not in collection_path.read_text(encoding="utf-8")
    return None


@pytest.fixture(scope="session")
def zoo_cache() -> Path:
    """Folder holding the models built for the tests."""
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    return TEST_CACHE


@pytest.fixture(scope="session")
def zoo_model(zoo_cache: Path) -> Callable[[str, str], Path]:
    """``zoo_model(name, precision)`` -> path of that zoo model, built on first use."""

    def get(name: str, precision: str = "float32") -> Path:
        return build(name, precision, cache=zoo_cache)

    return get
