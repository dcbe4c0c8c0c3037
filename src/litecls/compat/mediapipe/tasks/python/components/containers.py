"""``mediapipe.tasks.python.components.containers``: the classes results and options are made of.

They are litecls's own (:mod:`litecls.tasks.classification_result`,
:mod:`litecls.tasks.embedding_result`, :mod:`litecls.processing.region`), which have
MediaPipe's names, fields and field order.
"""

from __future__ import annotations

from litecls.processing.region import BoundingBox, RectF
from litecls.tasks.classification_result import Category, ClassificationResult, Classifications
from litecls.tasks.embedding_result import Embedding, EmbeddingResult

__all__ = ["BoundingBox", "Category", "ClassificationResult", "Classifications", "Embedding",
           "EmbeddingResult", "RectF"]
