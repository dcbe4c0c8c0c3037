"""Image folders: one sub-folder per label (:class:`ImageFolder`), or explicit train/val/test splits."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from litecls.errors import DatasetError
from litecls.imagefiles import list_label_folders
from litecls.training.data import Dataset, _listing, index_labels

#: Sub-folder names recognised as explicit splits.
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation"),
               "test": ("test", "testing")}


class ImageFolder(Dataset):
    """A folder with one sub-folder of images per label (label = sub-folder name).

    ``ImageFolder("flowers/")`` reads ``flowers/daisy/*.jpg``, ``flowers/rose/*.jpg``, ...;
    images in nested folders below a class folder count for that class.

    Args:
        root: the folder.
        classes: fix the class list and order (e.g. a validation folder that
            must match the training folder).
        verify: decode every image up front; ``False`` skips that (bad images
            then fail during feature extraction).
        name: the set's name (default: the folder's).

    Raises:
        DatasetError: no such folder, an empty one, or class folders outside ``classes``.
    """

    def __init__(self, root: str | os.PathLike, classes: Sequence[str] | None = None,
                 verify: bool = True, name: str | None = None) -> None:
        listing = list_label_folders(root)
        root = listing.root
        names = list(classes) if classes is not None else listing.labels
        unknown = sorted(set(listing.labels) - set(names))
        if unknown:
            raise DatasetError(f"{root}: class folders not among the training classes: {_listing(unknown)}")
        if not names:
            raise DatasetError(f"{root}: empty folder; expected one sub-folder of images per label "
                               f"(e.g. {root}/cat/*.jpg, {root}/dog/*.jpg)")
        rank = {label: i for i, label in enumerate(names)}  # by class in the order of names, then path
        items = sorted(listing.items, key=lambda item: (rank.get(item[1], -1), item[0]))
        paths, labels = index_labels(items, names)
        skipped = listing.loose + listing.others
        super().__init__(paths, labels, names, name=name or root.name, skipped=skipped)
        self.root = root
        self._finish(str(root), verify)


def is_split_root(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds explicit ``train/`` plus ``val/`` and/or ``test/`` folders.

    Args:
        root: the folder.

    Returns:
        True for such a folder.
    """
    root = Path(root)
    found = {key for key, aliases in SPLIT_NAMES.items() for a in aliases if (root / a).is_dir()}
    return "train" in found and len(found) > 1


def load_splits(root: str | os.PathLike,
                verify: bool = True) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """``(train, val, test)`` from ``root/train``, ``root/val`` and ``root/test`` image folders.

    The classes are the training folder's.

    Args:
        root: the folder holding ``train/`` (and ``val/``, ``test/``).
        verify: decode every image up front.

    Returns:
        The three sets; ``None`` for a missing ``val``/``test`` folder.

    Raises:
        DatasetError: no ``train/`` folder, or a validation or test class the training folder lacks.
    """
    root = Path(root)

    def folder(key: str) -> Path | None:
        return next((root / a for a in SPLIT_NAMES[key] if (root / a).is_dir()), None)

    train_dir = folder("train")
    if train_dir is None:
        raise DatasetError(f"{root}: no train/ folder")
    train = ImageFolder(train_dir, verify=verify, name="train")
    out: list[Dataset | None] = [train]
    for key in ("val", "test"):
        path = folder(key)
        out.append(None if path is None else ImageFolder(path, classes=train.classes, verify=verify,
                                                         name=key))
    return out[0], out[1], out[2]  # type: ignore[return-value]
