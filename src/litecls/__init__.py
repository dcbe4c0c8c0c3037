"""litecls: on-device image classification with LiteRT (TensorFlow Lite).

The everyday entry points are re-exported here, loaded on first use so that
``import litecls`` stays cheap (training pulls in PyTorch, classifying only
LiteRT)::

    import litecls

    with litecls.ImageClassifier.create_from_model_path("model.tflite") as classifier:
        print(classifier.classify("photo.jpg").categories[0])

    data = litecls.ImageFolder("flowers/")
    train_set, val_set, test_set = data.split((0.8, 0.1, 0.1), seed=0)
    model = litecls.train(train_set, val_set, model="efficientnet_lite0")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "ImageClassifier": "litecls.tasks",
    "ImageClassifierOptions": "litecls.tasks",
    "ImageEmbedder": "litecls.tasks",
    "ImageEmbedderOptions": "litecls.tasks",
    "Category": "litecls.tasks",
    "ClassificationResult": "litecls.tasks",
    "ImageFolder": "litecls.training",
    "train": "litecls.training",
    "build_model": "litecls.models.zoo",
}

__all__ = ["Category", "ClassificationResult", "ImageClassifier", "ImageClassifierOptions", "ImageEmbedder",
           "ImageEmbedderOptions", "ImageFolder", "__version__", "build_model", "train"]

if TYPE_CHECKING:
    from litecls.models.zoo import build as build_model
    from litecls.tasks import (
        Category,
        ClassificationResult,
        ImageClassifier,
        ImageClassifierOptions,
        ImageEmbedder,
        ImageEmbedderOptions,
    )
    from litecls.training import ImageFolder, train


def __getattr__(name: str) -> Any:
    """Import an exported name's module on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'litecls' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), "build" if name == "build_model" else name)
    globals()[name] = value
    return value
