"""What :class:`litecls.tasks.ImageClassifier` returns: MediaPipe Tasks' containers plus litecls's extras.

``ClassificationResult.classifications`` holds one :class:`Classifications`
per output head of the model (most models have one); ``result.categories``
is the first head's list, the shortcut most callers need.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Category:
    """One class of a result, fields in MediaPipe's order.

    Attributes:
        index: Its position in the model output (and in the label file).
        score: Its score: a probability in :mod:`litecls.tasks`, the model's own
            (dequantized) value in :mod:`litecls.compat.mediapipe`.
        display_name: Its name in the options' ``display_names_locale``, or ``None``
            when the model has no display names.
        category_name: Its label, or ``None`` when the model has no labels.
    """

    index: int
    score: float
    display_name: str | None = None
    category_name: str | None = None


@dataclass
class Classifications:
    """The categories of one classifier head, best first.

    Attributes:
        categories: The head's categories that passed the options' filters, best first.
        head_index: The head's position among the model's outputs.
        head_name: Its tensor name in the metadata (``None`` without metadata).
    """

    categories: list[Category]
    head_index: int = 0
    head_name: str | None = None


@dataclass
class ClassificationResult:
    """One :class:`Classifications` per head, plus how much to trust the top category.

    Attributes:
        classifications: One :class:`Classifications` per output head, in output order.
        timestamp_ms: The frame's timestamp in VIDEO and LIVE_STREAM modes, 0 in
            IMAGE mode (as MediaPipe gives it).
        ambiguous: For the first head, True when the top score is under the options'
            ``ambiguity_min_score`` or leads the runner-up by less than
            ``ambiguity_margin`` (among the allowed categories, before ``max_results``
            and ``score_threshold`` cut the list).
        applied_softmax: True when the model output logits and litecls turned them
            into probabilities.
        inference_ms: The interpreter's time alone, in milliseconds.
    """

    classifications: list[Classifications] = field(default_factory=list)
    timestamp_ms: int | None = 0
    ambiguous: bool = False
    applied_softmax: bool = False
    inference_ms: float = 0.0

    @property
    def categories(self) -> list[Category]:
        """The first head's categories, best first (empty when the result has no head)."""
        return self.classifications[0].categories if self.classifications else []

    @property
    def top(self) -> Category | None:
        """The first head's best category, or ``None`` when nothing passed the filters."""
        categories = self.categories
        return categories[0] if categories else None


def result_row(file: str, result: ClassificationResult | Exception) -> dict:
    """The JSON object for one image, as ``litecls classify --json`` prints and ``litecls serve`` answers.

    Args:
        file: the name to report (a path as given, an upload's file name).
        result: the image's result, or the exception it raised (e.g. from
            :meth:`ImageClassifier.classify_many`).

    Returns:
        ``{"file", "ambiguous", "applied_softmax", "categories": [{"index", "score",
        "category_name", "display_name"}]}`` (the first head's categories), or
        ``{"file", "error"}``.
    """
    if isinstance(result, Exception):
        return {"file": file, "error": str(result)}
    return {"file": file, "ambiguous": result.ambiguous, "applied_softmax": result.applied_softmax,
            "categories": [{"index": c.index, "score": round(c.score, 6), "category_name": c.category_name,
                            "display_name": c.display_name} for c in result.categories]}
