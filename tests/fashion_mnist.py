"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, as image folders.

Real photos of clothes nobody here made (Zalando's 28x28 greyscale article
shots, 10 classes): the tests and benchmarks/train_fashion_mnist.py train on them. The package
installs the original IDX files under :data:`DEFAULT_ROOT`; this module reads
them with numpy and writes balanced subsets as PNG image folders, the layout
:class:`litecls.training.ImageFolder` loads.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from litecls.errors import DatasetError

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")

#: Class names in label order (from the dataset's README), made folder-safe.
CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle_boot")

_FILES = {"train": "train", "test": "t10k"}


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else Path(os.environ.get("FASHION_MNIST_DIR", DEFAULT_ROOT))


def available(root: str | os.PathLike | None = None) -> bool:
    """True when the IDX files are installed."""
    base = _root(root)
    return all((base / f"{stem}-{kind}-idx{n}-ubyte.gz").is_file()
               for stem in _FILES.values() for kind, n in (("images", 3), ("labels", 1)))


def load(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 Nx28x28 and uint8 N for ``split`` "train" (60,000) or "test" (10,000)."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    base = _root(root)
    stem = _FILES[split]
    try:
        with gzip.open(base / f"{stem}-labels-idx1-ubyte.gz") as handle:
            labels = np.frombuffer(handle.read(), np.uint8, offset=8)
        with gzip.open(base / f"{stem}-images-idx3-ubyte.gz") as handle:
            images = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    except FileNotFoundError:
        raise DatasetError(f"Fashion-MNIST not found in {base}: install Debian's dataset-fashion-mnist "
                           "package (apt-get install dataset-fashion-mnist)") from None
    if len(images) != len(labels):
        raise DatasetError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def balanced_indices(labels: np.ndarray, per_class: int, seed: int = 0,
                     exclude: np.ndarray | None = None) -> np.ndarray:
    """``per_class`` random indices of each label (sorted by class), never one of ``exclude``."""
    rng = np.random.default_rng(seed)
    banned = np.zeros(len(labels), bool)
    if exclude is not None:
        banned[exclude] = True
    picks = []
    for label in np.unique(labels):
        pool = np.flatnonzero((labels == label) & ~banned)
        if len(pool) < per_class:
            raise DatasetError(f"class {label} has {len(pool)} images left, {per_class} asked for")
        picks.append(rng.permutation(pool)[:per_class])
    return np.concatenate(picks)


def write_folder(images: np.ndarray, labels: np.ndarray, folder: str | os.PathLike,
                 prefix: str = "img") -> Path:
    """Write ``images`` as PNG files into ``folder/CLASS_NAME/``; return ``folder``."""
    from PIL import Image

    folder = Path(folder)
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(folder / CLASSES[int(label)] / f"{prefix}{i:05d}.png")
    return folder
