"""High-level tasks in the style of MediaPipe Tasks: create from a model, call, close.

Options live in :mod:`litecls.tasks.image_classifier_options` and
:mod:`litecls.tasks.image_embedder_options`, results in
:mod:`litecls.tasks.classification_result` and
:mod:`litecls.tasks.embedding_result`, the tasks in
:mod:`litecls.tasks.image_classifier` and :mod:`litecls.tasks.image_embedder`,
what they share in :mod:`litecls.tasks.base_vision_task`.
"""

from __future__ import annotations

from litecls.processing.region import BoundingBox, ImageProcessingOptions, RectF
from litecls.tasks.classification_result import Category, ClassificationResult, Classifications
from litecls.tasks.embedding_result import Embedding, EmbeddingResult, ImageEmbedderResult, cosine_similarity
from litecls.tasks.image_classifier import ImageClassifier, LiveStreamStats, load_labels, resolve_model
from litecls.tasks.image_classifier_options import BaseOptions, ImageClassifierOptions, RunningMode
from litecls.tasks.image_embedder import ImageEmbedder
from litecls.tasks.image_embedder_options import ImageEmbedderOptions
from litecls.tasks.video import classify_video

__all__ = [
    "BaseOptions",
    "BoundingBox",
    "Category",
    "ClassificationResult",
    "Classifications",
    "Embedding",
    "EmbeddingResult",
    "ImageClassifier",
    "ImageClassifierOptions",
    "ImageEmbedder",
    "ImageEmbedderOptions",
    "ImageEmbedderResult",
    "ImageProcessingOptions",
    "LiveStreamStats",
    "RectF",
    "RunningMode",
    "classify_video",
    "cosine_similarity",
    "load_labels",
    "resolve_model",
]
