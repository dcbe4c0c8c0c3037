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

Normalization = float | Sequence[float] | np.ndarray

#: How far from 1 the sum of a float output may be and still count as a distribution.
PROBABILITY_ATOL = 0.05


def _per_channel(value: Normalization, what: str, channels: int) -> np.ndarray:
    """``value`` as a float32 array that broadcasts over the last (channel) axis."""
    array = np.asarray(value, dtype=np.float32).reshape(-1)
    if array.size not in (1, channels):
        raise ValueError(f"{what} needs 1 or {channels} values (one per channel), got {array.size}")
    if what == "std" and np.any(array == 0):
        raise ValueError("std must not be 0")
    return array


def quantize_input(pixels: np.ndarray, dtype: np.dtype | type, scale: float = 0.0, zero_point: int = 0,
                   mean: Normalization = 0.0, std: Normalization = 1.0) -> np.ndarray:
    """Turn an ``...xC`` pixel array (uint8 or float, 0-255) into a model input of ``dtype``.

    The model expects the real value ``(pixel - mean) / std`` (``mean``/``std``:
    one value or one per channel). A float32 input gets that value; a uint8 or
    int8 input gets it quantized with the tensor's own ``scale`` and
    ``zero_point``: ``round(value / scale + zero_point)``, clipped to the type.

    When the two steps together map each pixel to itself plus a whole number
    (e.g. mean 127, std 128, scale 1/128, zero point 127), the shift is done in
    integer arithmetic, so a uint8 input that takes raw pixels gets them
    exactly. ``scale == 0`` (an integer input without quantization
    parameters) means the model takes raw pixels: uint8 as is, int8 as
    ``pixel - 128``; ``mean``/``std`` are then ignored.
    """
    dtype = np.dtype(dtype)
    channels = pixels.shape[-1] if pixels.ndim else 1
    if dtype == np.float32:
        mean_a, std_a = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
        if pixels.dtype == np.uint8:
            return _lookup(pixels, (_LEVELS[:, None] - mean_a) / std_a)
        return (pixels.astype(np.float32) - mean_a) / std_a
    if dtype not in (np.uint8, np.int8):
        raise ValueError(f"unsupported input dtype {dtype.name}; expected float32, uint8 or int8")
    info = np.iinfo(dtype)
    if scale <= 0:
        gain, offset = np.ones(1, np.float32), np.full(1, 0 if dtype == np.uint8 else -128, np.float32)
    else:
        mean_a, std_a = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
        gain = 1.0 / (std_a.astype(np.float64) * scale)
        offset = zero_point - mean_a * gain
    shift = np.rint(offset)
    if (pixels.dtype == np.uint8 and np.all(np.abs(gain - 1) < 1e-6) and np.all(np.abs(offset - shift) < 1e-4)
            and np.all(shift == shift[0])):
        # An integer shift of the raw pixels: exact, and much cheaper than float maths.
        step = int(shift[0])
        if step == 0 and dtype == np.uint8:
            return pixels
        if step == -128 and dtype == np.int8:
            return (pixels ^ np.uint8(0x80)).view(np.int8)  # p - 128 without widening
        return np.clip(pixels.astype(np.int16) + step, info.min, info.max).astype(dtype)
    levels = _LEVELS[:, None] if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    values = np.clip(np.rint(levels * gain.astype(np.float32) + offset.astype(np.float32)),
                     info.min, info.max)
    return _lookup(pixels, values.astype(dtype)) if pixels.dtype == np.uint8 else values.astype(dtype)


#: The 256 values a uint8 pixel can take, for the lookup tables of :func:`quantize_input`.
_LEVELS = np.arange(256, dtype=np.float32)


def _lookup(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[pixel, channel]`` for each pixel of a uint8 ``...xC`` array (``table``: 256 x 1 or C).

    The same float32 arithmetic done once per pixel value instead of once per
    pixel, so the result is identical and a 224x224x3 frame takes a few
    hundred microseconds instead of one or two milliseconds (5-25 % of an
    EfficientNet-Lite0 inference).
    """
    if table.shape[1] == 1:
        return np.take(table[:, 0], pixels, mode="clip")
    out = np.empty(pixels.shape, dtype=table.dtype)
    for channel in range(pixels.shape[-1]):
        np.take(table[:, channel], pixels[..., channel], out=out[..., channel], mode="clip")
    return out


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


def filter_categories(indices: np.ndarray | Sequence[int], mask: np.ndarray | None) -> np.ndarray:
    """Keep the ``indices`` whose ``mask`` entry is True, in their order (all when ``mask`` is None)."""
    indices = np.asarray(indices, dtype=np.int64)
    return indices if mask is None else indices[mask[indices]]


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
