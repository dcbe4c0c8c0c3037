"""Helpers the tests share: the test-model cache key, the noise seed, and required test data."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("src/litecls/export", "src/litecls/models")
#: Libraries whose versions change what the exporter writes.
CONVERTERS = ("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert")


def source_hash(folders: tuple[str, ...] = SOURCE_FOLDERS) -> str:
    """12 hex digits of SHA-256 over every .py file under ``folders`` and the converters' versions.

    The test-model cache is keyed on it: a change to the exporter or the model code (or
    an upgraded converter) gets freshly built files, without anyone bumping a version.
    """
    digest = hashlib.sha256()
    for package in CONVERTERS:
        try:
            digest.update(f"{package}=={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} missing\0".encode())
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def seed_from_env() -> int | None:
    """``$LITECLS_TEST_SEED`` as an int, or None (unset or empty: the inputs as they are)."""
    value = os.environ.get("LITECLS_TEST_SEED", "").strip()
    return int(value) if value else None


def in_ci() -> bool:
    """True under CI (``.ci/run`` exports ``CI=true``), where missing test data is a failure."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(available: bool, message: str) -> None:
    """Skip the calling test when a test input is missing; fail instead under CI."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{message} (CI installs every test input: a skip would hide a gap)")
    pytest.skip(message)


def perturb(images: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Every pixel moved by -1, 0 or +1 level (seeded, kept in 0..255); unchanged when seed is None.

    The noise-sensitive checks (agreement and accuracy floors) run on these inputs with
    ``$LITECLS_TEST_SEED``: their floors sit below the measured value by the spread that
    such an invisible change makes (docs/decisions.md, "Test floors and their noise").
    """
    seed = seed_from_env() if seed is None else seed
    if seed is None:
        return images
    steps = np.random.default_rng(seed).integers(-1, 2, images.shape)
    return np.clip(images.astype(np.int16) + steps, 0, 255).astype(np.uint8)


def import_or_skip(module: str) -> Any:
    """``import module``; when it is not installed, skip the test (fail under CI)."""
    require(importlib.util.find_spec(module) is not None,
            f"{module} is not installed (make install installs it)")
    return importlib.import_module(module)


def run_example(example: str, import_line: str, **names: Any) -> Any:
    """Run a documented example program after ``import_line``; return what it left in ``results``.

    ``{package}`` in the example becomes the imported package (``mediapipe`` or
    ``litecls.compat.mediapipe``); ``names`` are the example's inputs (MODEL, IMAGES, ...).
    """
    import textwrap

    package = import_line.split()[1]
    scope = dict(names)
    exec(import_line + "\n" + textwrap.dedent(example).format(package=package), scope)
    return scope["results"]
