"""Labelled images: :class:`LabelledSet` and its readers, for a folder per label or a ``path,label`` file.

The one type for "images with their labels" as found on disk. Evaluation
(``litecls evaluate``, ``models report``) matches its label names to a
model's; training turns it into a :class:`litecls.training.Dataset` with a
fixed class list (:meth:`Dataset.from_labelled`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from litecls.errors import DatasetError
from litecls.imagefiles import IMAGE_SUFFIXES, is_image_name, list_label_folders, read_path_label_file


@dataclass
class LabelledSet:
    """Images with their labels: a name (``str``) or a class index (``int``).

    Attributes:
        items: ``(path, label)`` pairs.
        source: where they came from (for messages and reports).
        skipped: ``(item, reason)`` for inputs that carry no usable label,
            e.g. images lying next to the class folders.
    """

    items: list[tuple[Path, str | int]]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


def load_folder(root: str | os.PathLike) -> LabelledSet:
    """``root/<label>/*.jpg`` (searched recursively inside each label folder).

    Args:
        root: the folder.

    Returns:
        The labelled images; images beside the label folders and label folders
        without images are listed in ``skipped``.

    Raises:
        DatasetError: a missing or empty folder, or one whose images are not in
            label sub-folders (nothing says their label).
    """
    listing = list_label_folders(root)
    root = listing.root
    loose = [p for p in listing.loose if is_image_name(p)]
    skipped = [(str(p), "image not in a label folder: its label is unknown") for p in loose]
    skipped += [(str(root / name), "label folder without images") for name in listing.empty_labels()]
    if not listing.items:
        if loose:
            raise DatasetError(
                f"{root}: {len(loose)} image(s) but no label folders; put each image in a folder named "
                f"after its label (e.g. {root}/goldfish/1.jpg), or give a CSV file of path,label lines")
        raise DatasetError(f"{root}: no images found (expected {root}/<label>/<image>, "
                           f"with extensions {', '.join(sorted(IMAGE_SUFFIXES))})")
    return LabelledSet(list(listing.items), f"folder {root}", skipped)


def load_csv(path: str | os.PathLike) -> LabelledSet:
    """A text/CSV file of ``path,label`` lines (see :func:`litecls.imagefiles.read_path_label_file`).

    Args:
        path: the file.

    Returns:
        The labelled images (relative paths start at the file's folder).

    Raises:
        DatasetError: a missing or unreadable file, a line without a label, or no lines.
    """
    items: list[tuple[Path, str | int]] = list(read_path_label_file(path))
    return LabelledSet(items, f"list {path}")


def load_labelled(data: str | os.PathLike) -> LabelledSet:
    """A folder (:func:`load_folder`) or a ``path,label`` file (:func:`load_csv`).

    Args:
        data: the folder or file.

    Returns:
        The labelled images.

    Raises:
        DatasetError: it does not exist, is a single image, or holds no labelled images.
    """
    path = Path(data)
    if path.is_dir():
        return load_folder(path)
    if path.is_file():
        if is_image_name(path):
            raise DatasetError(f"{path}: a single image has no label; give a folder of label folders "
                               "or a CSV file of path,label lines")
        return load_csv(path)
    raise DatasetError(f"{path}: no such folder or file")
