"""Test-set figures of a trained model: :class:`Evaluation` from scores and labels.

The metric functions themselves live in :mod:`litecls.evaluation.metrics` (shared with ``litecls evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from litecls.evaluation.metrics import confusion_matrix, precision_recall_f1, top_k_accuracy

__all__ = ["Evaluation", "confusion_matrix", "evaluate_scores", "precision_recall_f1", "top_k_accuracy"]


@dataclass
class Evaluation:
    """Test-set figures of one model (PyTorch head, or an exported .tflite).

    Attributes:
        classes: the class names.
        num_images: images scored.
        top1: top-1 accuracy (fraction).
        top5: top-5 accuracy, or ``None`` with fewer than 5 classes.
        loss: cross-entropy, if known.
        confusion: ``confusion[i, j]``: images of true class i predicted as class j.
        precision: per class.
        recall: per class.
        f1: per class.
        support: images per true class.
        seconds: wall time of the evaluation.
        extra: more figures for the report.
    """

    classes: list[str]
    num_images: int
    top1: float
    top5: float | None
    loss: float | None
    #: ``confusion[i, j]``: images of true class i predicted as class j.
    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy (fraction correct)."""
        return self.top1

    def to_dict(self) -> dict:
        """JSON-ready figures.

        Returns:
            Plain types only, per-class figures by class name.
        """
        return {
            "num_images": self.num_images, "top1": self.top1, "top5": self.top5, "loss": self.loss,
            "seconds": round(self.seconds, 2),
            "per_class": {name: {"precision": float(self.precision[i]), "recall": float(self.recall[i]),
                                 "f1": float(self.f1[i]), "support": int(self.support[i])}
                          for i, name in enumerate(self.classes)},
            "confusion_matrix": self.confusion.tolist(), **self.extra,
        }

    def summary(self) -> str:
        """One line: accuracy and image count.

        Returns:
            e.g. ``top-1 91.20 %, top-5 99.80 % on 1000 images``.
        """
        text = f"top-1 {100 * self.top1:.2f} %"
        if self.top5 is not None:
            text += f", top-5 {100 * self.top5:.2f} %"
        return f"{text} on {self.num_images} images"

    def __str__(self) -> str:
        return self.summary()


def evaluate_scores(scores: np.ndarray, labels: np.ndarray, classes: list[str],
                    loss: float | None = None, seconds: float = 0.0) -> Evaluation:
    """All metrics from ``scores`` (N x classes, probabilities or logits) and true ``labels``."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = scores.argmax(axis=1)
    confusion = confusion_matrix(labels, predictions, len(classes))
    precision, recall, f1, support = precision_recall_f1(confusion)
    return Evaluation(
        classes=list(classes), num_images=len(labels),
        top1=float((predictions == labels).mean()) if len(labels) else 0.0,
        top5=top_k_accuracy(scores, labels, 5) if len(classes) >= 5 else None,
        loss=loss, confusion=confusion, precision=precision, recall=recall, f1=f1, support=support,
        seconds=seconds)
