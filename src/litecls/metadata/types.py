"""What litecls reads from, and writes into, a model's TFLite metadata: one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Name of the associated file in which litecls records how images are resized for the model
#: (resize policy, crop fraction, interpolation): settings the metadata schema has no field for.
#: MediaPipe and the TFLite Task Library ignore associated files they do not know.
PROCESSING_FILE = "litecls_processing.json"


@dataclass
class ScoreCalibration:
    """Sigmoid score calibration of an output (``ScoreCalibrationOptions`` and its parameters file).

    ``transformation``: "IDENTITY", "LOG" or "INVERSE_LOGISTIC", applied to a
    raw score before the sigmoid. ``parameters``: one entry per class,
    ``(scale, slope, offset, min_score or None)``, or ``None`` for a class
    without parameters (it gets ``default_score``), as the Task Library and
    MediaPipe read the file (one line ``scale,slope,offset[,min_score]`` per class).
    """

    transformation: str = "IDENTITY"
    default_score: float = 0.0
    parameters: list[tuple[float, float, float, float | None] | None] = field(default_factory=list)
    file_name: str = "score_calibration.txt"


@dataclass
class OutputHead:
    """One score output (classifier head) of a model: its tensor metadata name and label files.

    ``labels``: category names (the label file without locale);
    ``display_names``: locale -> names. ``score_threshold``: the default
    threshold of its ``ScoreThresholdingOptions``, or ``None``;
    ``score_calibration``: its :class:`ScoreCalibration`, or ``None``.
    """

    name: str = ""
    labels: list[str] = field(default_factory=list)
    display_names: dict[str, list[str]] = field(default_factory=dict)
    score_threshold: float | None = None
    score_calibration: ScoreCalibration | None = None


@dataclass
class ModelMetadata:
    """The parts of the TFLite metadata schema that image classifiers use.

    ``mean``/``std``: the float input expects ``(pixel - mean) / std``, one
    value or one per channel. ``labels``: category names of the score output
    (its label file without locale); ``display_names``: locale -> names
    (label files with a locale). ``processing``: the contents of
    :data:`PROCESSING_FILE` when the model carries it, else ``None``.
    ``head_name``/``score_threshold``/``score_calibration``: the score
    output's tensor metadata name, default score threshold
    (``ScoreThresholdingOptions``) and :class:`ScoreCalibration`.
    ``heads``: for a model with several score outputs only, one
    :class:`OutputHead` per output in output order (then ``labels``,
    ``display_names``, ``head_name`` and ``score_threshold`` are the first's).
    ``embedding``: the output is a feature vector (an image embedder's), not
    scores; it is written as MediaPipe's ``add_feature_output`` does, named
    "embedding", without labels or value range.
    ``associated_files``: names of the files packed in the model.
    ``missing_files``: files the metadata names but the model does not carry.
    """

    name: str
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    color_space: str = "RGB"  # or "GRAYSCALE"
    labels: list[str] = field(default_factory=list)
    display_names: dict[str, list[str]] = field(default_factory=dict)
    processing: dict[str, Any] | None = None
    head_name: str = "score"
    score_threshold: float | None = None
    score_calibration: ScoreCalibration | None = None
    heads: list[OutputHead] = field(default_factory=list)
    embedding: bool = False
    min_parser_version: str = ""
    associated_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
