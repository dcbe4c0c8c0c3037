"""Image files on disk: which names are images, finding them, label folders and ``path,label`` lists.

One place for what training (:mod:`litecls.training.data`), evaluation
(:mod:`litecls.evaluation.dataset`) and ``litecls classify`` all need.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from litecls.errors import DatasetError

#: File name extensions read as images (what PIL decodes and cameras and the web use).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})

#: First-column names that mark a header row in a ``path,label`` file.
_HEADER_NAMES = {"path", "file", "filename", "image", "image_path"}


def is_image_name(path: str | os.PathLike) -> bool:
    """Whether the file name has an image extension (the content is not checked)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _files_under(folder: str | os.PathLike, follow_links: bool) -> list[Path]:
    """Every file below ``folder`` that is not hidden, in :func:`images_under`'s order."""
    found = []
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=follow_links):
        if follow_links:
            try:
                stat = os.stat(root)
            except OSError:
                dirs[:] = []
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


def images_under(folder: str | os.PathLike, follow_links: bool = False) -> list[Path]:
    """Image files below ``folder``, recursively, sorted; hidden files and folders are ignored.

    Links to folders are not followed unless ``follow_links`` (then each real
    folder is visited once, so a link loop ends). A folder named like an image
    (``x.jpg/``) is a folder, not an image. Each folder's files come before its
    sub-folders'.

    Args:
        folder: where to look.
        follow_links: follow links to folders.

    Returns:
        The image files.
    """
    return [p for p in _files_under(folder, follow_links) if is_image_name(p)]


@dataclass
class LabelFolders:
    """What a folder with one sub-folder of images per label holds (see :func:`list_label_folders`).

    Attributes:
        root: the folder.
        labels: the label folders' names, sorted (hidden folders are ignored).
        items: ``(image, label)`` for every image in a label folder, recursively.
        loose: files lying in ``root`` itself, beside the label folders.
        others: files in the label folders that are not images.
    """

    root: Path
    labels: list[str]
    items: list[tuple[Path, str]] = field(default_factory=list)
    loose: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)

    def empty_labels(self) -> list[str]:
        """Label folders without images.

        Returns:
            Their names, sorted.
        """
        found = {label for _, label in self.items}
        return [label for label in self.labels if label not in found]


def list_label_folders(root: str | os.PathLike) -> LabelFolders:
    """Read ``root/<label>/...``: the one lister behind training's and evaluation's folder readers.

    Args:
        root: the folder.

    Returns:
        Its labels, labelled images, and the files that are neither.

    Raises:
        DatasetError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    listing = LabelFolders(root, [p.name for p in entries if p.is_dir()],
                           loose=[p for p in entries if p.is_file()])
    for label in listing.labels:
        for path in _files_under(root / label, follow_links=False):
            if is_image_name(path):
                listing.items.append((path, label))
            else:
                listing.others.append(path)
    return listing


def read_path_label_file(path: str | os.PathLike) -> list[tuple[Path, str]]:
    """The ``(image path, label)`` rows of a CSV/text file of ``path,label`` lines.

    Relative paths start at the file's folder. A header line (``path,label``),
    blank lines and ``#`` comments are skipped; quote labels that contain
    commas. Raises :class:`DatasetError` for a missing or unreadable file, a
    line without a label, or a file without entries.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    rows: list[tuple[Path, str]] = []
    for number, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() in _HEADER_NAMES:
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{path}, line {number}: expected 'path,label', got {','.join(row)!r}")
        image = Path(row[0].strip())
        rows.append((image if image.is_absolute() else path.parent / image, ",".join(row[1:]).strip()))
    if not rows:
        raise DatasetError(f"{path}: no 'path,label' lines")
    return rows
