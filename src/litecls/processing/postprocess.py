"""Tensor-level steps around the interpreter: quantize the input, turn raw scores into ranked categories.

Each function is small and works on plain numpy arrays, so a caller can
compose them differently from :class:`litecls.tasks.ImageClassifier`::

    x = quantize_input(pixels, spec.dtype, spec.scale, spec.zero_point, mean=127.0, std=128.0)
    scores = dequantize(raw_output, out.scale, out.zero_point)
    probs, applied_softmax = to_probabilities(scores, step=out.scale)
    best = top_k(probs, k=5, threshold=0.1, mask=category_mask(labels, allowlist=["tabby"]))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from litecls.errors import LabelsError
from litecls.metadata.types import ScoreCalibration

#: How far from 1 the sum of a float output may be and still count as a distribution.
PROBABILITY_ATOL = 0.05


def dequantize(raw: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Real values ``(raw - zero_point) * scale`` as float32; a float tensor (``scale == 0``) as is."""
    if scale <= 0:
        return raw.astype(np.float32, copy=False)
    return (raw.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Numerically stable softmax of a 1-D score vector (float64)."""
    shifted = np.asarray(scores, dtype=np.float64) - np.max(scores)
    exp = np.exp(shifted)
    return exp / exp.sum()


def is_probability(scores: np.ndarray, atol: float = PROBABILITY_ATOL, step: float = 0.0) -> bool:
    """Heuristic: does ``scores`` already look like a probability distribution?

    True when every value is in [0, 1] and the sum is within ``atol`` of 1.
    ``step`` is the quantization step of the output (0 for float): each of
    the N values may be off by half a step, so the allowed gap grows by
    ``N * step / 2``. A uint8 softmax output (step 1/256) loses the mass of
    every class under 1/256 and can sum to well under 1 (0 for a flat one).
    """
    scores = np.asarray(scores)
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        return False
    if scores.min() < -1e-6 or scores.max() > 1 + 1e-6:
        return False
    return abs(float(scores.sum(dtype=np.float64)) - 1.0) <= atol + scores.size * step / 2


def to_probabilities(scores: np.ndarray, step: float = 0.0,
                     atol: float = PROBABILITY_ATOL) -> tuple[np.ndarray, bool]:
    """Return ``(probabilities, applied_softmax)`` for a 1-D score vector.

    Scores that are not a distribution (logits: values outside [0, 1] or a
    sum far from 1, see :func:`is_probability`) go through a softmax.
    Scores that are one are renormalised to sum to exactly 1, because
    quantized outputs do not; an all-zero quantized output (every class
    under one step) becomes uniform. The result is float64.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not is_probability(scores, atol, step):
        return softmax(scores), True
    total = scores.sum()
    if total <= 0:
        return np.full(scores.shape, 1.0 / scores.size), False
    return scores / total, False


def top_k(probs: np.ndarray, k: int = -1, threshold: float = 0.0,
          mask: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` best scores (all for ``k < 0``), best first.

    Scores below ``threshold`` are dropped; with ``mask`` (a boolean array,
    see :func:`category_mask`) only the indices where it is True compete.
    Ties are broken by the lower index, so the order is deterministic.
    """
    probs = np.asarray(probs).reshape(-1)
    candidates = np.arange(probs.size) if mask is None else np.flatnonzero(mask)
    if threshold > 0:
        candidates = candidates[probs[candidates] >= threshold]
    order = candidates[np.argsort(-probs[candidates], kind="stable")]
    return order if k < 0 else order[:k]


def category_mask(labels: Sequence[str] | None, allowlist: Sequence[str] | None = None,
                  denylist: Sequence[str] | None = None,
                  display_names: Sequence[str] | None = None) -> np.ndarray | None:
    """Boolean mask of the categories that may be reported; ``None`` when no list is given.

    Names are matched against the category names (``labels``) and, when
    given, the display names. Only one of ``allowlist`` and ``denylist`` may
    be set (``ValueError`` otherwise). A name that matches no category raises
    :class:`LabelsError`, so a typo does not silently allow or deny nothing.
    """
    if allowlist is not None and denylist is not None:
        raise ValueError("category_allowlist and category_denylist are mutually exclusive: set only one")
    names = allowlist if allowlist is not None else denylist
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError("the category allowlist/denylist must be a list of names, not a string")
    if not labels:
        raise LabelsError("a category allowlist/denylist needs labels, and the model has none; "
                          "give labels in the options")
    positions: dict[str, list[int]] = {}
    for table in (labels, display_names or ()):
        for i, name in enumerate(table):
            positions.setdefault(name, []).append(i)
    unknown = [name for name in names if name not in positions]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise LabelsError(f"{len(unknown)} name(s) in the category "
                          f"{'allowlist' if allowlist is not None else 'denylist'} match no label: {shown}")
    listed = np.zeros(len(labels), dtype=bool)
    for name in names:
        listed[positions[name]] = True
    return listed if allowlist is not None else ~listed


def is_ambiguous(top_scores: Sequence[float] | np.ndarray, min_score: float = 0.5,
                 margin: float = 0.1) -> bool:
    """True when the best score is under ``min_score`` or leads the second by less than ``margin``.

    ``top_scores`` is sorted best first; no score at all is ambiguous, and a
    lone score is compared with 0.
    """
    if len(top_scores) == 0:
        return True
    first = float(top_scores[0])
    second = float(top_scores[1]) if len(top_scores) > 1 else 0.0
    return first < min_score or first - second < margin


def calibrate(scores: np.ndarray, calibration: ScoreCalibration) -> np.ndarray:
    """Calibrated scores, as the TFLite Task Library and MediaPipe compute them from the metadata.

    For class ``i`` with parameters ``(scale, slope, offset, min_score)``:
    ``scale / (1 + exp(-(slope * g(score) + offset)))`` with ``g`` the
    transformation (identity, log, or log(s) - log(1 - s)); a class without
    parameters, or whose score is under ``min_score``, gets ``default_score``.

    Args:
        scores: the dequantized scores, one per class.
        calibration: the model's calibration metadata.

    Returns:
        float64 calibrated scores.

    Raises:
        ValueError: the parameters do not have one entry per class.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    params = calibration.parameters
    if len(params) != scores.size:
        raise ValueError(f"score calibration has {len(params)} entries for {scores.size} classes")
    out = np.full(scores.shape, float(calibration.default_score))
    have = np.array([p is not None for p in params])
    table = np.array([p[:3] if p is not None else (0.0, 0.0, 0.0) for p in params], dtype=np.float64)
    minimum = np.array([p[3] if p is not None and p[3] is not None else -np.inf for p in params])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if calibration.transformation == "LOG":
            x = np.log(scores)
        elif calibration.transformation == "INVERSE_LOGISTIC":
            x = np.log(scores) - np.log1p(-scores)
        else:
            x = scores
        z = x * table[:, 1] + table[:, 2]
        value = table[:, 0] / (1.0 + np.exp(-z))
    use = have & (scores >= minimum)
    out[use] = value[use]
    return out
