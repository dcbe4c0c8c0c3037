"""What :class:`litecls.tasks.ImageEmbedder` returns: MediaPipe Tasks' embedding containers.

``EmbeddingResult.embeddings`` holds one :class:`Embedding` per output head
(the zoo's embedders have one); ``result.embedding`` is the first head's
vector. :func:`cosine_similarity` compares two embeddings as MediaPipe's does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Embedding:
    """The feature vector of one embedder head, fields as in MediaPipe.

    ``embedding``: a float vector, or a scalar-quantized one (1 byte per
    value, ``quantize=True``: int8 in :mod:`litecls.tasks`, the same bytes
    as uint8 in :mod:`litecls.compat.mediapipe`, as MediaPipe gives them).
    ``head_index``: the head's position among the model's outputs;
    ``head_name``: its tensor name in the metadata (``None`` without metadata).
    """

    embedding: np.ndarray
    head_index: int | None = None
    head_name: str | None = None


@dataclass
class EmbeddingResult:
    """One :class:`Embedding` per head; ``timestamp_ms`` as in MediaPipe (0 in IMAGE mode).

    ``inference_ms`` is the interpreter's time alone (litecls's addition).
    """

    embeddings: list[Embedding] = field(default_factory=list)
    timestamp_ms: int | None = 0
    inference_ms: float = 0.0

    @property
    def embedding(self) -> np.ndarray:
        """The first head's vector.

        Raises:
            ValueError: the result has no embedding.
        """
        if not self.embeddings:
            raise ValueError("the result has no embedding")
        return self.embeddings[0].embedding


#: MediaPipe's name of the image embedder's result.
ImageEmbedderResult = EmbeddingResult


def _values(x: Embedding | np.ndarray) -> np.ndarray:
    return np.asarray(x.embedding if isinstance(x, Embedding) else x)


def cosine_similarity(u: Embedding | np.ndarray, v: Embedding | np.ndarray) -> float:
    """Cosine similarity of two embeddings (or vectors), with MediaPipe's rules.

    Both float, or both quantized (int8, or MediaPipe's uint8 bytes, read as
    int8); of the same size; neither all zeros.

    Args:
        u: an :class:`Embedding` or a 1-D array.
        v: another.

    Returns:
        ``u . v / (|u| |v|)``, between -1 and 1.

    Raises:
        ValueError: different sizes, quantized against float, empty or zero-norm vectors.
    """
    a, b = _values(u).reshape(-1), _values(v).reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"Cannot compute cosine similarity between embeddings of different sizes "
                         f"({len(a)} vs. {len(b)}).")
    kinds = {a.dtype.kind, b.dtype.kind}
    if kinds <= {"f"}:
        a, b = a.astype(np.float64), b.astype(np.float64)
    elif kinds <= {"i", "u"} and a.dtype.itemsize == b.dtype.itemsize == 1:
        a, b = (x.view(np.int8).astype(np.float64) for x in (a, b))
    else:
        raise ValueError("Cannot compute cosine similarity between quantized and float embeddings.")
    if not len(a):
        raise ValueError("Cannot compute cosine similarity on empty embeddings.")
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if norm_a <= 0 or norm_b <= 0:
        raise ValueError("Cannot compute cosine similarity on embedding with 0 norm.")
    return float(a.dot(b) / (norm_a * norm_b))


def l2_normalized(vectors: np.ndarray) -> np.ndarray:
    """Each row (or the vector) divided by its L2 norm; all-zero rows stay zero.

    Args:
        vectors: ``[D]`` or ``[N, D]`` floats.

    Returns:
        float32 of the same shape.
    """
    values = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    return values / np.where(norms > 0, norms, 1.0).astype(np.float32)


def scalar_quantized(vector: np.ndarray) -> np.ndarray:
    """MediaPipe's scalar quantization: ``round(v * 128)`` (half away from zero) clamped to int8.

    Args:
        vector: floats, assumed in [-1, 1] (L2-normalised).

    Returns:
        The int8 vector.
    """
    scaled = np.asarray(vector, np.float64) * 128
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded, -128, 127).astype(np.int8)
