"""Classification metrics on arrays: top-k hits, confusion matrix, per-class precision/recall/F1, log loss.

The one set of functions behind training's :class:`litecls.training.Evaluation`
(from score matrices) and evaluation's
:class:`litecls.evaluation.EvaluationResult` (from each image's best classes).
NumPy only.
"""

from __future__ import annotations

import numpy as np


def best_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring classes of each row (in no particular order).

    Args:
        scores: N x classes.
        k: how many (at most the number of classes).

    Returns:
        N x k class indices.
    """
    k = min(k, scores.shape[1])
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


def in_top_k(top: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether each row's true label is among its classes ``top``.

    Args:
        top: N x k class indices (e.g. the best k, best first, cut with ``top[:, :k]``).
        labels: N true class indices.

    Returns:
        N booleans.
    """
    return (np.asarray(top) == np.asarray(labels)[:, None]).any(axis=1)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores.

    Args:
        scores: N x classes.
        labels: N true class indices.
        k: how many of the best classes count.

    Returns:
        A fraction, 0..1 (0 with no rows).
    """
    return float(in_top_k(best_k(scores, k), labels).mean()) if len(labels) else 0.0


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``num_classes`` x ``num_classes`` counts, rows = true class, columns = predicted.

    Args:
        labels: N true class indices.
        predictions: N predicted class indices.
        num_classes: the matrix's size.

    Returns:
        int64 counts.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    return np.bincount(labels * num_classes + predictions,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support; 0 where undefined (no predictions / images).

    Args:
        confusion: a square confusion matrix (rows true, columns predicted).

    Returns:
        ``(precision, recall, f1, support)``, one value per class each.
    """
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return precision, recall, f1, support


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean cross-entropy of the true classes' probabilities (clipped at 1e-7).

    Args:
        probabilities: N x classes.
        labels: N true class indices.

    Returns:
        The loss, or ``None`` with no rows.
    """
    if not len(labels):
        return None
    return float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1)).mean())
