"""Labelled image sets for training: a Dataset from folders of images per label (training.folders),
explicit splits, or a CSV.

Every way in ends in a :class:`Dataset` (paths, integer labels, class names)
and every problem that would waste a training run is found here, before any
model is loaded:

* files that are not images (by extension) are skipped with a
  :class:`DatasetWarning`; hidden files (``.DS_Store``) are ignored silently;
* images that cannot be decoded are listed in the warning and in
  :attr:`Dataset.corrupt`, and skipped;
* an empty folder, fewer than two classes, or a class with too few images for
  the requested split raise :class:`litecls.errors.DatasetError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from litecls.errors import DatasetError, ImageError
from litecls.imagefiles import IMAGE_SUFFIXES, is_image_name
from litecls.labelled import LabelledSet, load_csv


class DatasetWarning(UserWarning):
    """Files skipped while loading a dataset (not images, or corrupt)."""


def _listing(paths: Sequence[object], limit: int = 10) -> str:
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f", ... ({len(paths) - limit} more)" if len(paths) > limit else "")


def _check_decodable(path: Path) -> str | None:
    """None if ``path`` decodes and converts, else the reason. Decoded at reduced size (cheap).

    Orientation and conversion run too: corrupt EXIF fails there, not while decoding.
    """
    from litecls.processing.image import load_image

    try:
        load_image(path, 3, draft_size=(64, 64))
    except ImageError as exc:
        return str(exc)
    except OSError as exc:  # permission denied and the like
        return f"{path}: cannot read: {exc.strerror or exc}"
    return None


def find_corrupt(paths: Sequence[Path], workers: int = 2) -> list[tuple[Path, str]]:
    """``(path, reason)`` of every image in ``paths`` that does not decode.

    Decoding is done in threads: PIL releases the GIL while it decodes.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(_check_decodable, paths))
    return [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]


class Dataset:
    """Image paths with integer labels into :attr:`classes`.

    Build one with :class:`ImageFolder`, :meth:`from_csv` or :func:`load_splits`;
    cut it with :meth:`split`.

    Args:
        paths: the image files.
        labels: one class index per file.
        classes: the class names, in index order.
        name: what to call the set in messages ("train", "val"...).
        skipped: files left out because they are not images.
        corrupt: ``(file, reason)`` of images that failed to decode.

    Raises:
        ValueError: paths and labels differ in number, or a label is not a class index.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], labels: Sequence[int], classes: Sequence[str],
                 name: str = "data", skipped: Sequence[Path] = (),
                 corrupt: Sequence[tuple[Path, str]] = ()) -> None:
        self.paths = [Path(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.classes = list(classes)
        self.name = name
        #: Files left out because they are not images.
        self.skipped = list(skipped)
        #: ``(path, reason)`` of images left out because they do not decode.
        self.corrupt = list(corrupt)
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError("labels must index into classes")

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_csv(cls, csv_path: str | os.PathLike, verify: bool = True,
                 classes: Sequence[str] | None = None) -> Dataset:
        """Rows of ``path,label`` (a header row is optional); relative paths start at the CSV's folder.

        Missing or undecodable files are listed as corrupt and skipped.

        Args:
            csv_path: the file.
            verify: decode every image now (otherwise bad ones fail later).
            classes: fix the class list and order (default: the labels found, sorted).

        Returns:
            The dataset.

        Raises:
            DatasetError: unreadable file, labels outside ``classes``, or no usable image.
        """
        csv_path = Path(csv_path)
        dataset = cls._from_items(load_csv(csv_path).items, classes, csv_path.stem, str(csv_path))
        return dataset._finish(str(csv_path), verify)

    @classmethod
    def from_labelled(cls, labelled: LabelledSet, classes: Sequence[str] | None = None,
                      verify: bool = True, name: str | None = None) -> Dataset:
        """A dataset of the images of ``labelled`` (from :func:`litecls.labelled.load_labelled` and the like).

        Files that are not images are skipped with a warning, corrupt images too
        (with ``verify``).

        Args:
            labelled: images with label names (a class index counts as
                ``classes[index]`` when ``classes`` are given).
            classes: fix the class list and order (default: the labels found, sorted).
            verify: decode every image now (otherwise bad ones fail later).
            name: the set's name (default: ``labelled.source``).

        Returns:
            The dataset.

        Raises:
            DatasetError: labels outside ``classes``, or no usable image.
        """
        dataset = cls._from_items(labelled.items, classes, name or labelled.source, labelled.source)
        return dataset._finish(labelled.source, verify)

    @classmethod
    def _from_items(cls, items: Sequence[tuple[Path, str | int]], classes: Sequence[str] | None,
                    name: str, origin: str) -> Dataset:
        """The image items, not yet verified; ``origin`` names the source in messages."""
        skipped = [p for p, _ in items if not is_image_name(p)]
        entries = [(p, _label_name(label, classes)) for p, label in items if is_image_name(p)]
        names = list(classes) if classes is not None else sorted({label for _, label in entries})
        unknown = sorted({label for _, label in entries} - set(names))
        if unknown:
            raise DatasetError(f"{origin}: labels not among the classes: {_listing(unknown)}")
        paths, labels = index_labels(entries, names)
        return cls(paths, labels, names, name=name, skipped=skipped)

    def to_labelled(self) -> LabelledSet:
        """The images with their class indices as labels, e.g. for :func:`litecls.evaluation.evaluate`.

        Returns:
            A labelled set named after this one.
        """
        return LabelledSet([(p, int(label)) for p, label in zip(self.paths, self.labels, strict=True)],
                           self.name)

    def _finish(self, origin: str, verify: bool) -> Dataset:
        """Warn about skipped files, drop corrupt images, refuse an empty set."""
        if self.skipped:
            warnings.warn(f"{origin}: skipped {len(self.skipped)} file(s) that are not images "
                          f"({', '.join(sorted(IMAGE_SUFFIXES))}): {_listing(self.skipped)}",
                          DatasetWarning, stacklevel=3)
        if verify and self.paths:
            bad = find_corrupt(self.paths)
            if bad:
                self.corrupt.extend(bad)
                keep = np.ones(len(self.paths), bool)
                gone = {p for p, _ in bad}
                keep[[i for i, p in enumerate(self.paths) if p in gone]] = False
                self.paths = [p for p, k in zip(self.paths, keep, strict=True) if k]
                self.labels = self.labels[keep]
                warnings.warn(f"{origin}: skipped {len(bad)} corrupt image(s):\n  "
                              + "\n  ".join(reason for _, reason in bad),
                              DatasetWarning, stacklevel=3)
        if not self.paths:
            raise DatasetError(f"{origin}: no usable images found"
                               + (f" ({len(self.corrupt)} corrupt)" if self.corrupt else ""))
        return self

    # -- description ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} images, {len(self.classes)} classes)"

    @property
    def num_classes(self) -> int:
        """Number of classes (including any without images in this subset)."""
        return len(self.classes)

    def counts(self) -> np.ndarray:
        """Images per class.

        Returns:
            One count per class, in class order.
        """
        return np.bincount(self.labels, minlength=len(self.classes))

    def class_weights(self) -> np.ndarray:
        """``n / (classes * count)`` per class ("balanced" weights): all 1 for a balanced set.

        Returns:
            One float32 weight per class; a class without images gets 0.
        """
        counts = self.counts().astype(np.float64)
        weights = np.zeros_like(counts)
        present = counts > 0
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights.astype(np.float32)

    def summary(self) -> str:
        """A table of classes and image counts.

        Returns:
            Text, one line per class.
        """
        return split_summary({self.name: self})

    # -- subsets ----------------------------------------------------------------------------

    def subset(self, indices: Iterable[int], name: str | None = None) -> Dataset:
        """The images at ``indices``, same classes.

        Args:
            indices: positions in this set.
            name: the new set's name (default: this one's).

        Returns:
            A new dataset.
        """
        idx = np.asarray(list(indices), dtype=np.int64)
        return Dataset([self.paths[i] for i in idx], self.labels[idx], self.classes,
                       name=name or self.name)

    def check(self, min_classes: int = 2) -> None:
        """Check that the set can be trained on.

        Args:
            min_classes: classes that must have images.

        Raises:
            DatasetError: fewer classes have images.
        """
        present = int((self.counts() > 0).sum())
        if present < min_classes:
            raise DatasetError(f"{self.name}: {present} class(es) with images "
                               f"({', '.join(self.classes) or 'none'}); training needs at least "
                               f"{min_classes} classes (one sub-folder of images per label)")

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple[Dataset, ...]:
        """Stratified random split into ``len(fractions)`` parts (e.g. train, val, test).

        Every class is split on its own, so each part keeps the class balance.
        Each part after the first with a non-zero fraction gets at least one
        image of every class, and the first part keeps at least one.

        Args:
            fractions: 2 or 3 non-negative fractions summing to 1, train first.
            seed: the shuffle's seed.

        Returns:
            The parts, in the order of ``fractions``.

        Raises:
            ValueError: bad fractions.
            DatasetError: a class too small for the split (named).
        """
        fractions = [float(f) for f in fractions]
        if not 2 <= len(fractions) <= 3 or any(f < 0 for f in fractions) or fractions[0] <= 0 \
                or abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be 2 or 3 non-negative numbers summing to 1 with a "
                             f"positive first one, got {tuple(fractions)}")
        self.check()
        names = ("train", "val", "test")[:len(fractions)]
        counts = self.counts()
        needed = min_images_for_split(fractions)
        small = [f"{self.classes[c]} ({counts[c]})" for c in range(len(self.classes))
                 if counts[c] < needed]
        if small:
            raise DatasetError(f"{self.name}: a {'/'.join(f'{f:g}' for f in fractions)} split needs at "
                               f"least {needed} images per class (one in each part); too few in: "
                               f"{_listing(small)}")
        rng = np.random.default_rng(seed)
        parts: list[list[int]] = [[] for _ in fractions]
        for c in range(len(self.classes)):
            members = rng.permutation(np.flatnonzero(self.labels == c))
            sizes = part_sizes(len(members), fractions)
            start = 0
            for k, size in enumerate(sizes):
                parts[k].extend(members[start:start + size].tolist())
                start += size
        return tuple(self.subset(sorted(p), name=n) for p, n in zip(parts, names, strict=True))


def _label_name(label: str | int, classes: Sequence[str] | None) -> str:
    if isinstance(label, int) and classes is not None and 0 <= label < len(classes):
        return classes[label]
    return str(label)


def index_labels(items: Iterable[tuple[Path, str]], classes: Sequence[str]) -> tuple[list[Path], list[int]]:
    """Paths and class indices of the ``(path, label name)`` items whose label is in ``classes``.

    Args:
        items: the images with their label names.
        classes: the class names, in index order.

    Returns:
        ``(paths, labels)``, in the order of ``items``.
    """
    index = {label: i for i, label in enumerate(classes)}
    kept = [(path, index[label]) for path, label in items if label in index]
    return [p for p, _ in kept], [i for _, i in kept]


def part_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """How many of ``n`` images of one class go to each part (the first part takes the rest)."""
    later = [0 if f == 0 else max(1, round(n * f)) for f in fractions[1:]]
    return [n - sum(later), *later]


def min_images_for_split(fractions: Sequence[float]) -> int:
    """Fewest images a class needs so that :func:`part_sizes` gives every part one."""
    n = 1
    while min(s for s, f in zip(part_sizes(n, fractions), fractions, strict=True) if f > 0) < 1:
        n += 1
    return n


def split_summary(parts: dict[str, Dataset | None]) -> str:
    """A table with one row per class and one column of image counts per part."""
    present = {k: v for k, v in parts.items() if v is not None}
    classes = next(iter(present.values())).classes
    header = ["class", *present]
    rows = [[name, *[str(d.counts()[i]) for d in present.values()]] for i, name in enumerate(classes)]
    rows.append(["total", *[str(len(d)) for d in present.values()]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                            strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ensure_trainable(train: Dataset, val: Dataset | None) -> None:
    """Refuse sets that cannot train a classifier: fewer than 2 classes, or an empty validation set."""
    train.check()
    if val is not None and len(val) == 0:
        raise DatasetError("the validation set is empty")
