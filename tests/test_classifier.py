"""ImageClassifier, the runtime loader and the post-processing steps, on real zoo models and photos."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litecls.errors import ImageError, LabelsError, ModelFileError
from litecls.export.flatbuffer import read, write
from litecls.metadata import strip_metadata
from litecls.models.registry import PRECISIONS
from litecls.models.zoo import DEFAULT_MODEL
from litecls.processing import config as config_module
from litecls.processing.image import prepare_image
from litecls.processing.postprocess import (
    category_mask,
    dequantize,
    is_ambiguous,
    is_probability,
    to_probabilities,
    top_k,
)
from litecls.processing.preprocess import quantize_input
from litecls.runtime import describe_classifier, load_interpreter
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ClassificationResult, ImageClassifier, ImageClassifierOptions

ZooModel = Callable[[str, str], Path]


@pytest.fixture(scope="module")
def photos() -> list[tuple[Path, int]]:
    return labelled_imagenet_photos()


@pytest.fixture(scope="module")
def confident_photo(photos: list[tuple[Path, int]]) -> tuple[Path, int]:
    """The folding chair: EfficientNet-Lite0 gives it over 0.95."""
    return photos[1]


@pytest.fixture(scope="module")
def float_model(zoo_model: ZooModel) -> Path:
    return zoo_model(DEFAULT_MODEL, "float32")


@pytest.fixture(scope="module")
def classifier(float_model: Path) -> ImageClassifier:
    with ImageClassifier.create_from_options(
            ImageClassifierOptions(model_path=float_model, max_results=-1)) as shared:
        yield shared


def make_classifier(model: Path | str, **options: object) -> ImageClassifier:
    return ImageClassifier.create_from_options(ImageClassifierOptions(model_path=model, **options))


# -- accuracy and result shape --------------------------------------------------------------


@pytest.mark.core
@pytest.mark.zoo
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_classifies_the_labelled_photos(zoo_model: ZooModel, photos, precision: str) -> None:
    with make_classifier(zoo_model(DEFAULT_MODEL, precision), max_results=-1) as classifier:
        results = [classifier.classify(path) for path, _ in photos]
    correct = sum(result.categories[0].index == label
                  for result, (_, label) in zip(results, photos, strict=True))
    assert correct >= (18 if precision == "float32" else 16), f"{precision}: {correct}/20 top-1"
    for result in results:
        scores = [c.score for c in result.categories]
        assert len(scores) == 1000
        assert sum(scores) == pytest.approx(1.0, abs=1e-3)
        assert scores == sorted(scores, reverse=True)
        assert not result.applied_softmax  # the zoo models end in a softmax


@pytest.mark.zoo
def test_zoo_name_resolves_and_uses_the_zoo_preprocessing(zoo_model: ZooModel, zoo_cache: Path,
                                                          confident_photo) -> None:
    zoo_model("mobilenet_v2", "float32")  # built (or reused) by the fixture, not by the test
    options = ImageClassifierOptions(model_path="mobilenet_v2:float32", cache_dir=zoo_cache)
    with ImageClassifier.create_from_options(options) as classifier:
        assert classifier.resize == ("crop", 0.875, "bilinear")
        assert classifier.classify(confident_photo[0]).categories[0].index == confident_photo[1]


@pytest.mark.core
@pytest.mark.zoo
def test_a_zoo_built_file_gets_the_zoo_preprocessing(classifier: ImageClassifier) -> None:
    assert classifier.resize == ("crop", pytest.approx(224 / 256), "bicubic")
    mean, std = classifier.normalization
    assert mean.tolist() == [127.0] and std.tolist() == [128.0]


@pytest.mark.core
@pytest.mark.zoo
def test_max_results_and_score_threshold(float_model: Path, confident_photo) -> None:
    with make_classifier(float_model, max_results=3) as classifier:
        assert len(classifier.classify(confident_photo[0]).categories) == 3
    with make_classifier(float_model, max_results=-1, score_threshold=0.5) as classifier:
        result = classifier.classify(confident_photo[0])
    assert [c.index for c in result.categories] == [confident_photo[1]]
    assert result.categories[0].score >= 0.5


@pytest.mark.core
@pytest.mark.zoo
def test_default_max_results_is_five(float_model: Path, confident_photo) -> None:
    with ImageClassifier.create_from_model_path(float_model) as classifier:
        assert len(classifier.classify(confident_photo[0]).categories) == 5


@pytest.mark.core
@pytest.mark.zoo
def test_allowlist_and_denylist(classifier: ImageClassifier, float_model: Path, confident_photo) -> None:
    path, label = confident_photo
    labels = classifier.labels
    allowed = [labels[0], labels[1], labels[label]]
    with make_classifier(float_model, max_results=-1, category_allowlist=allowed) as allow:
        result = allow.classify(path)
    assert {c.category_name for c in result.categories} == set(allowed)
    assert result.categories[0].index == label

    with make_classifier(float_model, max_results=-1, category_denylist=[labels[label]]) as deny:
        result = deny.classify(path)
    assert len(result.categories) == 999
    assert label not in {c.index for c in result.categories}


@pytest.mark.core
@pytest.mark.zoo
def test_allowlist_and_denylist_together_is_an_error(float_model: Path) -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        ImageClassifierOptions(model_path=float_model, category_allowlist=["tench"],
                               category_denylist=["goldfish"])


@pytest.mark.core
@pytest.mark.zoo
def test_unknown_allowlist_name_is_a_labels_error(float_model: Path) -> None:
    with pytest.raises(LabelsError, match="no-such-class"):
        make_classifier(float_model, category_allowlist=["tench", "no-such-class"])


@pytest.mark.core
@pytest.mark.zoo
def test_display_names_come_from_the_metadata(classifier: ImageClassifier, float_model: Path,
                                               confident_photo) -> None:
    top = classifier.classify(confident_photo[0]).categories[0]
    assert top.category_name == "folding chair"
    assert top.display_name and top.display_name == classifier.display_names[top.index]
    assert all(c.display_name for c in classifier.classify(confident_photo[0]).categories)
    with make_classifier(float_model, display_names_locale="fr") as french:
        top = french.classify(confident_photo[0]).categories[0]
    assert top.category_name == "folding chair" and top.display_name is None


@pytest.mark.core
@pytest.mark.zoo
def test_ambiguity(classifier: ImageClassifier, float_model: Path, confident_photo) -> None:
    grey = np.full((224, 224, 3), 128, np.uint8)
    assert classifier.classify(grey).ambiguous
    assert not classifier.classify(confident_photo[0]).ambiguous
    with make_classifier(float_model, ambiguity_min_score=0.999) as strict:
        assert strict.classify(confident_photo[0]).ambiguous
    with make_classifier(float_model, ambiguity_margin=1.0) as strict:
        assert strict.classify(confident_photo[0]).ambiguous


@pytest.mark.core
@pytest.mark.zoo
def test_int8_flat_output_becomes_uniform_not_nan(zoo_model: ZooModel) -> None:
    with make_classifier(zoo_model(DEFAULT_MODEL, "int8"), max_results=-1) as classifier:
        result = classifier.classify(np.full((224, 224, 3), 128, np.uint8))
    scores = np.array([c.score for c in result.categories])
    assert np.all(np.isfinite(scores)) and scores.sum() == pytest.approx(1.0)
    assert result.ambiguous


# -- inputs -------------------------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.zoo
def test_every_image_input_type_gives_the_same_answer(classifier: ImageClassifier, confident_photo) -> None:
    path, label = confident_photo
    pil = Image.open(path)
    inputs = [path, str(path), path.read_bytes(), pil, np.asarray(pil.convert("RGB"))]
    results = [classifier.classify(image) for image in inputs]
    for result in results:
        assert result.categories[0].index == label
        assert result.categories[0].score == pytest.approx(results[0].categories[0].score, abs=0.02)


@pytest.mark.core
@pytest.mark.zoo
def test_a_model_sized_array_is_not_resized(classifier: ImageClassifier, confident_photo,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = confident_photo[0]
    _, crop_pct, interpolation = classifier.resize
    sized = prepare_image(path, (224, 224), crop_pct=crop_pct, interpolation=interpolation)
    expected = classifier.classify(path)

    def no_decoding(*_args: object, **_kwargs: object) -> np.ndarray:
        raise AssertionError("a model-sized array must not be decoded or resized")

    monkeypatch.setattr(config_module, "prepare_image", no_decoding)
    result = classifier.classify(sized)
    assert [c.index for c in result.categories[:5]] == [c.index for c in expected.categories[:5]]
    assert result.categories[0].score == expected.categories[0].score


@pytest.mark.core
@pytest.mark.zoo
def test_context_manager_closes(float_model: Path, confident_photo) -> None:
    with ImageClassifier.create_from_model_path(float_model) as classifier:
        assert classifier.classify(confident_photo[0]).categories
        assert not classifier.closed
    assert classifier.closed
    with pytest.raises(RuntimeError, match="closed"):
        classifier.classify(confident_photo[0])


@pytest.mark.core
@pytest.mark.zoo
def test_classify_many_keeps_order_and_reports_bad_files(classifier: ImageClassifier, photos,
                                                         tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photos[2][0].read_bytes()[:3000])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    good = [path for path, _ in photos[:5]]
    inputs = [good[0], empty, good[1], truncated, good[2], text, good[3], good[4]]

    outputs = list(classifier.classify_many(inputs, workers=2))

    assert [image for image, _ in outputs] == inputs
    answers = dict(outputs)
    for bad, message in ((empty, "empty"), (truncated, "truncated"), (text, "not an image")):
        assert isinstance(answers[bad], ImageError)
        assert message in str(answers[bad]) and str(bad) in str(answers[bad])
    for path, _ in photos[:5]:
        assert isinstance(answers[path], ClassificationResult)
        assert answers[path].categories[0].index == classifier.classify(path).categories[0].index
    assert sum(answers[path].categories[0].index == label for path, label in photos[:5]) >= 4


@pytest.mark.core
@pytest.mark.zoo
def test_classify_many_stops_early_without_reading_everything(classifier: ImageClassifier, photos) -> None:
    seen = []

    def images():
        for path, _ in photos:
            seen.append(path)
            yield path

    stream = classifier.classify_many(images(), workers=1)
    first = next(stream)
    stream.close()
    assert first[0] == photos[0][0]
    assert len(seen) <= 4  # bounded read-ahead


# -- models without metadata, labels -------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_model(float_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bare") / "no_metadata.tflite"
    path.write_bytes(strip_metadata(float_model.read_bytes()))
    return path


@pytest.mark.core
@pytest.mark.zoo
def test_model_without_metadata_with_user_labels_and_normalisation(
        classifier: ImageClassifier, bare_model: Path, photos, tmp_path: Path) -> None:
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(classifier.labels) + "\n")
    _, crop_pct, interpolation = classifier.resize
    options = ImageClassifierOptions(model_path=bare_model, labels=labels_file, mean=127.0, std=128.0,
                                     crop_pct=crop_pct, interpolation=interpolation, max_results=3)
    with ImageClassifier.create_from_options(options) as bare:
        assert bare.metadata is None
        for path, _ in photos[:4]:
            with_meta, without = classifier.classify(path).categories[0], bare.classify(path).categories[0]
            assert without.index == with_meta.index
            assert without.category_name == with_meta.category_name
            assert without.score == pytest.approx(with_meta.score, abs=1e-5)
            assert without.display_name is None


@pytest.mark.core
@pytest.mark.zoo
def test_model_without_metadata_or_labels_reports_indices(bare_model: Path, confident_photo) -> None:
    with make_classifier(bare_model, mean=127.0, std=128.0) as bare:
        top = bare.classify(confident_photo[0]).categories[0]
    assert top.index == confident_photo[1] and top.category_name is None


@pytest.mark.core
@pytest.mark.zoo
def test_labels_count_mismatch_is_a_labels_error(classifier: ImageClassifier, bare_model: Path) -> None:
    with pytest.raises(LabelsError, match=r"999 labels.*1000 classes"):
        make_classifier(bare_model, labels=classifier.labels[:999])


# -- bad model files -----------------------------------------------------------------------------


@pytest.mark.core
@pytest.mark.zoo
def test_bad_model_files_raise_specific_errors(float_model: Path, tmp_path: Path) -> None:
    text = tmp_path / "model.tflite"
    text.write_text("not a model at all, just some text\n")
    with pytest.raises(ModelFileError, match=r"not a TFLite model.*TFL3.*text file"):
        ImageClassifier.create_from_model_path(text)

    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(float_model.read_bytes()[:1_000_000])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        ImageClassifier.create_from_model_path(truncated)

    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty model file"):
        ImageClassifier.create_from_model_path(empty)

    with pytest.raises(ModelFileError, match="no such model file"):
        ImageClassifier.create_from_model_path(tmp_path / "missing.tflite")
    with pytest.raises(ModelFileError, match="not a zoo model"):
        ImageClassifier.create_from_model_path("resnet9000")


@pytest.mark.zoo
def test_a_model_that_cannot_allocate_is_a_model_file_error(zoo_model: ZooModel) -> None:
    model = read(strip_metadata(zoo_model(DEFAULT_MODEL, "int8").read_bytes()))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shape = np.array([1, 224, 224, 4], dtype=np.int32)
    with pytest.raises(ModelFileError, match="cannot be allocated"):
        load_interpreter(write(model))


class _FakeInterpreter:
    """Just the two describe calls, to check shapes that no zoo model has."""

    def __init__(self, input_shape: list[int], output_shape: list[int], dtype: type = np.float32) -> None:
        quant = {"scales": np.zeros(0), "zero_points": np.zeros(0)}
        self.inputs = [{"index": 0, "name": "in", "shape": np.array(input_shape), "dtype": dtype,
                        "quantization": (0.0, 0), "quantization_parameters": quant}]
        self.outputs = [{"index": 1, "name": "out", "shape": np.array(output_shape), "dtype": np.float32,
                         "quantization": (0.0, 0), "quantization_parameters": quant}]

    def get_input_details(self) -> list[dict]:
        return self.inputs

    def get_output_details(self) -> list[dict]:
        return self.outputs


@pytest.mark.parametrize(("input_shape", "output_shape", "dtype", "found"), [
    ([1, 224, 224, 4], [1, 10], np.float32, r"input is float32 \[1, 224, 224, 4\]"),
    ([2, 224, 224, 3], [1, 10], np.float32, r"input is float32 \[2, 224, 224, 3\]"),
    ([1, 224, 224, 3], [1, 10], np.int16, r"input is int16"),
    ([1, 224, 224, 3], [1, 7, 7, 10], np.float32, r"output is float32 \[1, 7, 7, 10\]"),
])
@pytest.mark.core
def test_non_classifier_shapes_are_explained(input_shape, output_shape, dtype, found: str) -> None:
    with pytest.raises(ModelFileError, match=found + ".*expected"):
        describe_classifier(_FakeInterpreter(input_shape, output_shape, dtype), "fake")  # type: ignore[arg-type]


@pytest.mark.core
@pytest.mark.zoo
def test_classifier_signature_of_a_real_model(classifier: ImageClassifier) -> None:
    signature = classifier.signature
    assert (signature.input.height, signature.input.width, signature.input.channels) == (224, 224, 3)
    assert signature.output.num_classes == 1000 and not signature.input.quantized


# -- post-processing building blocks --------------------------------------------------------------


@pytest.mark.core
def test_quantize_input_is_exact_for_raw_pixel_uint8_inputs() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    # EfficientNet-Lite int8: mean 127, std 128, input scale 1/128, zero point 127.
    assert np.array_equal(quantize_input(pixels, np.uint8, 1 / 128, 127, 127.0, 128.0), pixels)
    assert np.array_equal(quantize_input(pixels, np.uint8, 1.0, 0, 0.0, 1.0), pixels)
    as_int8 = quantize_input(pixels, np.int8, 1 / 128, -1, 127.0, 128.0)
    assert np.array_equal(as_int8.astype(np.int16), pixels.astype(np.int16) - 128)
    floats = quantize_input(pixels, np.float32, mean=127.0, std=128.0)
    assert floats.dtype == np.float32 and floats[0, 0, 0] == pytest.approx(-127 / 128)
    # A general mapping rounds to the nearest step and clips to the type.
    general = quantize_input(pixels, np.uint8, 1 / 255 * 2, 0, 0.0, 255.0)
    assert general.dtype == np.uint8 and general.max() == 128 and general.min() == 0


@pytest.mark.core
def test_to_probabilities_softmax_and_renormalisation() -> None:
    logits = np.array([2.0, 1.0, -1.0, 0.5])
    probs, applied = to_probabilities(logits)
    assert applied and probs.sum() == pytest.approx(1.0) and np.argmax(probs) == 0
    raw = np.zeros(1000, np.uint8)
    raw[[3, 7]] = [200, 30]  # a uint8 softmax output with 1/256 steps: sums to 230/256
    scores = dequantize(raw, 1 / 256, 0)
    assert is_probability(scores, step=1 / 256)
    probs, applied = to_probabilities(scores, step=1 / 256)
    assert not applied and probs.sum() == pytest.approx(1.0, abs=1e-9)
    assert probs[3] == pytest.approx(200 / 230)


@pytest.mark.core
def test_top_k_filters_and_ambiguity() -> None:
    probs = np.array([0.1, 0.4, 0.1, 0.3, 0.1])
    assert top_k(probs, 3).tolist() == [1, 3, 0]  # ties: lower index first
    assert top_k(probs, -1, threshold=0.2).tolist() == [1, 3]
    mask = category_mask(["a", "b", "c", "d", "e"], denylist=["b"])
    assert top_k(probs, 2, mask=mask).tolist() == [3, 0]
    assert is_ambiguous([0.45, 0.1]) and is_ambiguous([0.6, 0.55]) and not is_ambiguous([0.8, 0.1])


@pytest.mark.core
@pytest.mark.zoo
def test_image_bytes_in_memory_are_accepted(classifier: ImageClassifier, confident_photo) -> None:
    buffer = io.BytesIO()
    Image.open(confident_photo[0]).save(buffer, format="PNG")
    assert classifier.classify(buffer.getvalue()).categories[0].index == confident_photo[1]
