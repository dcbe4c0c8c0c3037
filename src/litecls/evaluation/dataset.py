"""Labelled images to evaluate on: a folder per class, a ``path,label`` file, or the sample photos.

:class:`LabelledSet` and its readers live in :mod:`litecls.labelled` (shared with training).

Labels are *names* (folder names, CSV labels) except for the sample photos,
which carry ImageNet class indices. :class:`LabelMatcher` maps names to a
model's output indices: exactly, then ignoring case, ``_``/``-``/spaces, and
finally by any of the model's display-name synonyms ("goldfish, Carassius
auratus"). Names it cannot map are reported with close matches, never
dropped silently.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from litecls.imagefiles import images_under
from litecls.labelled import LabelledSet, load_csv, load_folder, load_labelled

__all__ = ["LabelMatcher", "LabelledSet", "image_files", "load_csv", "load_folder", "load_labelled",
           "sample_set", "write_csv"]


def image_files(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given, folders searched recursively for images (sorted)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        found.extend(images_under(path) if path.is_dir() else [path])
    return found


def sample_set() -> LabelledSet:
    """The 20 labelled ImageNet validation photos shipped in foolbox's wheel.

    Returns:
        The photos with ImageNet class indices as labels.

    Raises:
        MissingExtraError: foolbox is not installed.
    """
    from litecls.samples import labelled_imagenet_photos

    return LabelledSet([(p, i) for p, i in labelled_imagenet_photos()],
                       "the 20 labelled ImageNet sample photos (foolbox)")


def write_csv(dataset: LabelledSet, out: str | os.PathLike, labels: Sequence[str] | None = None) -> Path:
    """Write ``dataset`` as ``path,label`` lines; class indices become ``labels[index]`` names."""
    out = Path(out)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for image, label in dataset.items:
            writer.writerow([str(Path(image).resolve()),
                             labels[label] if isinstance(label, int) and labels else label])
    return out


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


class LabelMatcher:
    """Map dataset label names to a model's class indices (see the module docstring).

    Args:
        labels: the model's labels, in output order.
        display_names: the model's display names (comma-separated synonyms), if any.
    """

    def __init__(self, labels: Sequence[str], display_names: Sequence[str] | None = None) -> None:
        self.labels = list(labels)
        self._exact = {name: i for i, name in enumerate(self.labels)}
        self._loose: dict[str, int] = {}
        for i, name in enumerate(self.labels):
            self._loose.setdefault(_key(name), i)
        # Synonyms only where unambiguous: "crane" is both a bird and a machine.
        counts = Counter(_key(s) for names in display_names or [] for s in names.split(","))
        self._synonyms = {}
        for i, names in enumerate(display_names or []):
            for synonym in names.split(","):
                key = _key(synonym)
                if key and counts[key] == 1 and key not in self._loose:
                    self._synonyms[key] = i

    def index(self, label: str | int) -> int | None:
        """The class index of ``label``.

        Args:
            label: a name, or a class index already.

        Returns:
            The index, or ``None`` when no model class matches.
        """
        if isinstance(label, int):
            return label if 0 <= label < len(self.labels) else None
        if label in self._exact:
            return self._exact[label]
        key = _key(label)
        return self._loose.get(key, self._synonyms.get(key))

    def suggest(self, label: str, n: int = 3) -> list[str]:
        """Model labels close to an unknown ``label``.

        Args:
            label: the unknown name.
            n: at most this many.

        Returns:
            The closest labels, best first.
        """
        keys = {_key(name): name for name in self.labels}
        return [keys[k] for k in difflib.get_close_matches(_key(label), list(keys), n=n, cutoff=0.6)]
