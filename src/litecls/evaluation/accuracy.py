"""Top-k accuracy of a classifier on labelled images, per class, with its common confusions.

Images stream through :meth:`ImageClassifier.classify_many` (decoding runs
ahead in worker threads while the interpreter works), so a large folder
costs about its inference time. Images whose label the model does not know
and images that cannot be read are counted and reported, and left out of
the accuracy: a model cannot be right about a class it does not have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litecls.errors import DatasetError, LabelsError
from litecls.evaluation.dataset import LabelledSet, LabelMatcher
from litecls.evaluation.metrics import confusion_matrix, in_top_k
from litecls.tasks import ImageClassifier

MAX_K = 5

ProgressFn = Callable[[int, int], None]


@dataclass
class ClassAccuracy:
    """Accuracy on the images of one true class."""

    label: str
    images: int
    top1: int
    top5: int

    @property
    def top1_accuracy(self) -> float:
        """Fraction of the class's images whose best guess is right."""
        return self.top1 / self.images if self.images else 0.0


@dataclass
class Prediction:
    """One evaluated image: its true class and the model's best ``MAX_K`` classes."""

    path: str
    true_index: int
    top: list[int]
    top_scores: list[float]
    #: Every class's score, when :func:`evaluate` was asked for them (``all_scores``).
    scores: np.ndarray | None = None


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes:
        model: the model evaluated.
        source: where the images came from.
        labels: the model's labels.
        predictions: one :class:`Prediction` per evaluated image.
        unknown_labels: dataset label names the model does not know, with their image counts.
        suggestions: close model labels for each unknown name.
        unreadable: ``(file, error)`` of images that could not be read.
        skipped: ``(item, reason)`` of inputs without a usable label.
    """

    model: str
    source: str
    labels: list[str]
    predictions: list[Prediction]
    #: Dataset label names the model does not know, with their image counts.
    unknown_labels: dict[str, int] = field(default_factory=dict)
    suggestions: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        """Images that count towards the accuracy."""
        return len(self.predictions)

    @property
    def left_out(self) -> int:
        """Images given but not evaluated (unknown label, unreadable, or without a label)."""
        return sum(self.unknown_labels.values()) + len(self.unreadable) + len(self.skipped)

    def correct(self, k: int) -> int:
        """Images whose true class is among the best ``k``.

        Args:
            k: how many of the best classes count.

        Returns:
            The count.
        """
        trues, tops = self._arrays()
        return int(in_top_k(tops[:, :k], trues).sum())

    def top_k(self, k: int) -> float:
        """Top-``k`` accuracy over the evaluated images.

        Args:
            k: how many of the best classes count.

        Returns:
            A fraction, 0..1 (0 with no images).
        """
        return self.correct(k) / self.evaluated if self.evaluated else 0.0

    def per_class(self) -> list[ClassAccuracy]:
        """Accuracy per true class.

        Returns:
            One :class:`ClassAccuracy` per class, worst first (then by name).
        """
        classes, rows, matrix = self._present_confusion()
        trues, tops = self._arrays()
        top5 = np.bincount(rows, weights=in_top_k(tops[:, :5], trues), minlength=len(classes))
        table = [ClassAccuracy(self._name(c), int(matrix[i].sum()), int(matrix[i, i]), int(top5[i]))
                 for i, c in enumerate(classes)]
        return sorted(table, key=lambda r: (r.top1_accuracy, r.label))

    def confusions(self, n: int = 10) -> list[tuple[str, str, int]]:
        """The most common top-1 mistakes.

        Args:
            n: how many.

        Returns:
            ``(true, predicted, count)``, most common first.
        """
        counts = Counter((p.true_index, p.top[0]) for p in self.predictions if p.top[0] != p.true_index)
        return [(self._name(t), self._name(q), c) for (t, q), c in counts.most_common(n)]

    def confusion_matrix(self) -> tuple[list[str], np.ndarray]:
        """The confusion matrix of the classes present.

        Returns:
            ``(names, matrix)``: rows are the true classes present; columns the same
            classes plus "other" (any other class).
        """
        classes, _, matrix = self._present_confusion()
        return [self._name(c) for c in classes], matrix

    def score_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Every class's score per image, for results of :func:`evaluate` with ``all_scores``.

        Returns:
            ``(scores, labels)``: N x classes scores and the N true class indices.

        Raises:
            ValueError: the predictions were made without ``all_scores``.
        """
        trues, _ = self._arrays()
        scores = [p.scores for p in self.predictions if p.scores is not None]
        if len(scores) != len(self.predictions):
            raise ValueError("the predictions carry no scores; evaluate with all_scores=True")
        return (np.stack(scores) if scores else np.zeros((0, len(self.labels)), np.float32)), trues

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The true classes (N) and each image's best classes, best first (N x up to 5)."""
        trues = np.asarray([p.true_index for p in self.predictions], np.int64)
        width = max((len(p.top) for p in self.predictions), default=1)
        tops = np.full((len(self.predictions), width), -1, np.int64)
        for row, p in zip(tops, self.predictions, strict=True):
            row[:len(p.top)] = p.top
        return trues, tops

    def _present_confusion(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The true classes present (sorted), each image's row among them, and their confusion matrix.

        The matrix has one more column, "other", for predictions of classes not present.
        """
        trues, tops = self._arrays()
        classes = sorted(set(trues.tolist()))
        position = {c: i for i, c in enumerate(classes)}
        rows = np.asarray([position[t] for t in trues.tolist()], np.int64)
        columns = np.asarray([position.get(t, len(classes)) for t in tops[:, 0].tolist()], np.int64)
        return classes, rows, confusion_matrix(rows, columns, len(classes) + 1)[:len(classes)]

    def _name(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    def to_dict(self, per_image: bool = False) -> dict:
        """JSON-ready summary.

        Args:
            per_image: add every prediction.

        Returns:
            Plain types only.
        """
        data = {
            "model": self.model, "data": self.source, "images": self.evaluated + self.left_out,
            "evaluated": self.evaluated, "left_out": self.left_out,
            "top_k": {str(k): round(self.top_k(k), 6) for k in range(1, MAX_K + 1)},
            "correct": {str(k): self.correct(k) for k in range(1, MAX_K + 1)},
            "per_class": [{"label": c.label, "images": c.images, "top1": c.top1, "top5": c.top5,
                           "top1_accuracy": round(c.top1_accuracy, 6)} for c in self.per_class()],
            "confusions": [{"true": t, "predicted": p, "count": c} for t, p, c in self.confusions()],
            "unknown_labels": self.unknown_labels, "suggestions": self.suggestions,
            "unreadable": [{"file": f, "error": e} for f, e in self.unreadable],
            "skipped": [{"item": f, "reason": r} for f, r in self.skipped],
        }
        if per_image:
            data["predictions"] = [{"file": p.path, "true": self._name(p.true_index),
                                    "top": [self._name(i) for i in p.top],
                                    "scores": [round(s, 6) for s in p.top_scores]} for p in self.predictions]
        return data


def evaluate(classifier: ImageClassifier, dataset: LabelledSet, workers: int = 2,
             progress: ProgressFn | None = None, all_scores: bool = False) -> EvaluationResult:
    """Classify every image of ``dataset`` with ``classifier`` and score the answers.

    Args:
        classifier: ranks at least :data:`MAX_K` categories with no threshold
            or allow/deny list (create it with ``max_results=-1`` or 5;
            ``max_results=-1`` with ``all_scores``).
        dataset: the labelled images (label names, or class indices).
        workers: image decoding threads.
        progress: called with ``(done, total)`` after each image.
        all_scores: keep every class's score in each :class:`Prediction`.

    Returns:
        The predictions, and the images left out with the reason.

    Raises:
        LabelsError: the model has no labels to match names against, or no
            dataset label names a model class.
        DatasetError: the classifier returns fewer than 5 categories.
    """
    labels = classifier.labels
    needs_names = any(isinstance(label, str) for _, label in dataset.items)
    if labels is None:
        if needs_names:
            raise LabelsError(f"{classifier.options.model_path}: the model has no labels to match the "
                              "dataset's label names against; pass a labels file")
        labels = [str(i) for i in range(classifier.signature.output.num_classes)]
    from litecls.models.labels import label_synonyms

    matcher = LabelMatcher(labels, label_synonyms(labels, classifier.display_names))
    known: list[tuple[Path, int]] = []
    unknown: Counter[str] = Counter()
    for path, label in dataset.items:
        index = matcher.index(label)
        if index is None:
            unknown[str(label)] += 1
        else:
            known.append((path, index))
    suggestions = {name: matcher.suggest(name) for name in unknown}
    result = EvaluationResult(model=str(classifier.options.model_path), source=dataset.source,
                              labels=list(labels), predictions=[], unknown_labels=dict(unknown),
                              suggestions=suggestions, skipped=list(dataset.skipped))
    if not known:
        names = ", ".join(repr(n) for n in list(unknown)[:5])
        raise LabelsError(f"none of the {len(unknown)} label name(s) in {dataset.source} is a label of the "
                          f"model ({names}{', ...' if len(unknown) > 5 else ''}); check the folder names "
                          f"against the model's labels (litecls models info MODEL)")
    # classify_many yields in input order, so the n-th answer belongs to known[n].
    for done, (path, answer) in enumerate(classifier.classify_many((p for p, _ in known), workers), 1):
        if isinstance(answer, Exception):
            result.unreadable.append((str(path), str(answer)))
        else:
            top = answer.categories[:MAX_K]
            if len(top) < min(MAX_K, len(labels)):
                raise DatasetError("the classifier returned fewer than 5 categories; create it with "
                                   "max_results=-1 or 5, no score threshold and no allow/deny list")
            scores = None
            if all_scores:
                scores = np.zeros(len(labels), np.float32)
                for category in answer.categories:
                    scores[category.index] = category.score
            result.predictions.append(Prediction(str(path), known[done - 1][1], [c.index for c in top],
                                                 [c.score for c in top], scores))
        if progress is not None:
            progress(done, len(known))
    return result


def evaluate_model(model: str, dataset: LabelledSet, num_threads: int | None = None, workers: int = 2,
                   labels: str | None = None, cache_dir: str | None = None,
                   progress: ProgressFn | None = None) -> EvaluationResult:
    """:func:`evaluate` with a classifier created for ``model``.

    Args:
        model: a .tflite path or a zoo name.
        dataset: the labelled images.
        num_threads: interpreter threads (default: LiteRT's).
        workers: image decoding threads.
        labels: a labels file, for a model without metadata.
        cache_dir: the zoo cache.
        progress: called with ``(done, total)``.

    Returns:
        What :func:`evaluate` returns.

    Raises:
        ModelFileError: the model cannot be loaded.
        LabelsError: see :func:`evaluate`.
    """
    from litecls.tasks import ImageClassifierOptions

    options = ImageClassifierOptions(model_path=model, max_results=MAX_K, num_threads=num_threads,
                                     labels=labels, cache_dir=cache_dir)
    with ImageClassifier.create_from_options(options) as classifier:
        return evaluate(classifier, dataset, workers=workers, progress=progress)
