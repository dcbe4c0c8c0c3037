"""Metadata the Task Library honours: score calibration, a default score threshold, display-name locales.

A real zoo model gets ``ScoreCalibrationOptions`` with a parameters file and
a ``ScoreThresholdingOptions``; litecls must read them back, write them the
way MediaPipe reads them (checked against MediaPipe in test_mediapipe_compat),
and apply them to the interpreter's own output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litecls.errors import MetadataError
from litecls.metadata import ScoreCalibration, read_metadata, write_metadata
from litecls.runtime import describe_classifier, interpreter_from_bytes
from litecls.tasks import ImageClassifier, ImageClassifierOptions

pytestmark = [pytest.mark.core, pytest.mark.zoo]  # core install; reads zoo files from the test cache

PHOTO = Path("/usr/share/doc/opencv-doc/examples/data/orange.jpg")


def calibrated_model(model: Path, transformation: str = "LOG", threshold: float | None = 0.05) -> bytes:
    """``model`` with calibration: classes 0-9 without parameters, 950 (orange) with a min_score."""
    data = model.read_bytes()
    meta = read_metadata(data)
    params: list = [(0.9, 1.5, 0.5, None)] * 1000
    params[:10] = [None] * 10
    params[950] = (1.0, 2.0, 1.0, 0.99)  # under min_score: the default
    meta.score_calibration = ScoreCalibration(transformation, 0.02, params)
    meta.score_threshold = threshold
    return write_metadata(data, meta)


@pytest.fixture(scope="module")
def model(zoo_model) -> Path:
    return zoo_model("mobilenet_v2", "int8")


def test_calibration_and_threshold_read_back(model: Path) -> None:
    meta = read_metadata(calibrated_model(model))
    assert meta.score_threshold == pytest.approx(0.05)
    cal = meta.score_calibration
    assert cal.transformation == "LOG" and cal.default_score == pytest.approx(0.02)
    assert cal.parameters[:10] == [None] * 10 and cal.parameters[950] == (1.0, 2.0, 1.0, 0.99)
    assert cal.parameters[11] == (0.9, 1.5, 0.5, None)
    assert "score_calibration.txt" in meta.associated_files


def test_calibrated_scores_follow_the_sigmoid_of_the_raw_output(model: Path) -> None:
    data = calibrated_model(model, threshold=None)
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            base_options=_buffer(data), max_results=-1)) as classifier:
        tensor = classifier.preprocess(np.asarray(Image.open(PHOTO).convert("RGB")))
        result = classifier.classify_tensor(tensor)
    interpreter = interpreter_from_bytes(model.read_bytes())
    signature = describe_classifier(interpreter)
    interpreter.set_tensor(signature.input.index, tensor)
    interpreter.invoke()
    raw = interpreter.get_tensor(signature.output.index).reshape(-1)
    out = signature.output
    real = (raw.astype(np.float64) - out.zero_point) * out.scale
    scores = {c.index: c.score for c in result.categories}
    assert len(scores) == 1000 and not result.applied_softmax
    for i in range(1000):
        if i < 10 or (i == 950 and real[i] < 0.99):
            expected = 0.02
        elif real[i] <= 0:
            expected = 0.0  # log(0): the sigmoid's limit
        else:
            expected = 0.9 / (1 + math.exp(-(1.5 * math.log(real[i]) + 0.5)))
        assert scores[i] == pytest.approx(expected, abs=1e-9), i


def test_default_threshold_from_metadata_unless_the_options_set_one(model: Path) -> None:
    data = calibrated_model(model, threshold=0.03)
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            base_options=_buffer(data), max_results=-1)) as classifier:
        kept = classifier.classify(photo).categories
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            base_options=_buffer(data), max_results=-1, score_threshold=0.0)) as classifier:
        every = classifier.classify(photo).categories
    assert len(every) == 1000 and 0 < len(kept) < 1000
    assert kept == [c for c in every if c.score >= 0.03]


def test_a_calibration_file_of_the_wrong_length_is_a_clear_error(model: Path) -> None:
    data = model.read_bytes()
    meta = read_metadata(data)
    meta.score_calibration = ScoreCalibration("IDENTITY", 0.0, [(1.0, 1.0, 0.0, None)] * 999)
    with pytest.raises(MetadataError, match="999 lines, but the model outputs 1000 classes"):
        ImageClassifier.create_from_options(ImageClassifierOptions(
            base_options=_buffer(write_metadata(data, meta))))


def _buffer(data: bytes):
    from litecls.tasks import BaseOptions

    return BaseOptions(model_asset_buffer=data)


def test_a_model_whose_only_label_file_has_a_locale_still_gets_category_names(model: Path) -> None:
    data = model.read_bytes()
    meta = read_metadata(data)
    french = [f"classe {i}" for i in range(1000)]
    meta.labels, meta.display_names = [], {"fr": french}
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            base_options=_buffer(write_metadata(data, meta)), display_names_locale="fr")) as classifier:
        top = classifier.classify(np.asarray(Image.open(PHOTO).convert("RGB"))).top
    assert classifier.labels == french
    assert top.category_name == top.display_name == french[top.index]
