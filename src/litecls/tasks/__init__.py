"""High-level tasks in the style of MediaPipe Tasks: create from a model, call, close.

Options live in :mod:`litecls.tasks.image_classifier_options`, results in
:mod:`litecls.tasks.classification_result`, the task in
:mod:`litecls.tasks.image_classifier`.
"""

from __future__ import annotations

from litecls.processing.region import BoundingBox, ImageProcessingOptions, RectF
from litecls.tasks.classification_result import Category, ClassificationResult, Classifications
from litecls.tasks.image_classifier import ImageClassifier, LiveStreamStats, load_labels, resolve_model
from litecls.tasks.image_classifier_options import BaseOptions, ImageClassifierOptions, RunningMode
from litecls.tasks.video import classify_video

__all__ = [
    "BaseOptions",
    "BoundingBox",
    "Category",
    "ClassificationResult",
    "Classifications",
    "ImageClassifier",
    "ImageClassifierOptions",
    "ImageProcessingOptions",
    "LiveStreamStats",
    "RectF",
    "RunningMode",
    "classify_video",
    "load_labels",
    "resolve_model",
]
