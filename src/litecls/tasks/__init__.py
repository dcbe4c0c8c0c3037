"""High-level tasks in the style of MediaPipe Tasks: create from a model, call, close."""

from __future__ import annotations

from litecls.tasks.image_classifier import (
    Category,
    ClassificationResult,
    ImageClassifier,
    ImageClassifierOptions,
    load_labels,
    resolve_model,
)
from litecls.tasks.video import classify_video

__all__ = [
    "Category",
    "ClassificationResult",
    "ImageClassifier",
    "ImageClassifierOptions",
    "classify_video",
    "load_labels",
    "resolve_model",
]
