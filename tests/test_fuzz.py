"""Fuzz-proofing (issue 15): no input stops a run, no image takes unbounded memory, no model
file crashes the process. Plus one test per model case and per path case.

The fuzz corpus (``tests/fuzzing.py``) is seeded: a failure names a file that the same seed
writes again. Everything that could crash runs in child processes, whose exit status and
peak resident memory (``os.wait4``) are checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fuzzing import (
    IMAGE_BUDGET_BYTES,
    api_images,
    api_models,
    child_env,
    cli_images,
    png_claiming,
    write_images,
    write_models,
)
from PIL import Image

from litecls.errors import ImageError, ModelFileError
from litecls.export.flatbuffer import read, write
from litecls.metadata import strip_metadata
from litecls.models.zoo import build
from litecls.processing.image import ImageLimits, open_image, prepare_image, to_mode
from litecls.runtime.integrity import read_sidecar, sha256_hex, sidecar_path, write_sidecar
from litecls.tasks import ImageClassifier, ImageClassifierOptions, ImageEmbedder

pytestmark = pytest.mark.zoo

IMAGES = 2000
MODELS = 100
#: Generous on a shared 2-core CI machine; the slowest file measured locally took 1.4 s of CPU.
PER_FILE_TIMEOUT_S = 10.0


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@pytest.mark.slow  # 2,000 fuzzed files in child processes (about 25 s)
def test_fuzzed_images_each_get_one_row_without_traceback_signal_hang_or_memory_blowup(
        tmp_path: Path, zoo_model) -> None:
    model = str(zoo_model("efficientnet_lite0", "int8"))
    folder = tmp_path / "images"
    corpus = write_images(folder, IMAGES, seed=15)
    assert len(corpus.inputs) >= IMAGES
    kinds = Counter(kind.split()[0] for kind in corpus.kinds.values())
    for kind in ("valid", "truncate", "bitflip", "duplicate_marker", "dimensions", "exif", "special",
                 "non-image", "path"):
        assert kinds[kind] > 0, kind
    outcomes: Counter = Counter()
    for batch in _chunks(corpus.inputs, 700):
        expected = Counter(batch)
        cli = cli_images(model, batch, folder, PER_FILE_TIMEOUT_S, workers=2)
        assert not cli.timed_out and cli.returncode in (0, 1), cli.stderr[-3000:]
        # Every row is on stdout: nothing at all on stderr (no traceback, no Pillow warning,
        # no LiteRT log line).
        assert cli.stderr == ""
        assert Counter(json.loads(line)["file"] for line in cli.stdout.splitlines()) == expected
        assert cli.max_rss_bytes < 2 * IMAGE_BUDGET_BYTES  # two decoding workers
        api = api_images(model, batch, folder, PER_FILE_TIMEOUT_S)
        assert not api.timed_out and api.returncode == 0, api.stderr[-3000:]
        rows = [json.loads(line) for line in api.stdout.splitlines()]
        assert Counter(row["file"] for row in rows) == expected
        assert max(row["wall_s"] for row in rows) < PER_FILE_TIMEOUT_S
        assert api.max_rss_bytes < IMAGE_BUDGET_BYTES, f"{api.max_rss_bytes / 2**20:.0f} MiB"
        outcomes.update("ok" if "error" not in row else "error" for row in rows)
    # The corpus is not all refusals: valid files and harmless mutations classify.
    assert outcomes["ok"] > IMAGES // 5 and outcomes["error"] > IMAGES // 5


@pytest.mark.slow  # 100 fuzzed models, in child processes (about 16 s)
def test_fuzzed_models_are_refused_in_one_line_naming_the_file_or_run(tmp_path: Path, zoo_model) -> None:
    sources = [zoo_model("efficientnet_lite0", "int8"), zoo_model("mobilenet_v2", "int8"),
               zoo_model("mobilenet_v2", "float32")]
    image = str(tmp_path / "photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(image)
    kinds: Counter = Counter()
    for first in range(0, MODELS, 25):
        models = write_models(tmp_path / f"models{first}", sources, 25, seed=first)
        run = api_models(image, list(models), tmp_path)
        rows = [json.loads(line) for line in run.stdout.splitlines()]
        begun = [row["begin"] for row in rows if "begin" in row]
        assert not run.timed_out, f"hang in {begun[-1]} ({models[begun[-1]]})"
        assert run.returncode == 0, \
            f"exit {run.returncode} in {begun[-1]} ({models[begun[-1]]}): {run.stderr[-2000:]}"
        assert run.max_rss_bytes < IMAGE_BUDGET_BYTES
        done = [row for row in rows if "outcome" in row]
        assert [row["file"] for row in done] == list(models)
        for row in done:
            name, kind = row["file"], models[row["file"]]
            kinds[kind.split("_")[0]] += 1
            assert "traceback" not in row["outcome"], row.get("traceback")
            assert "cli_traceback" not in row and "info_traceback" not in row, row
            if row["outcome"] == "api ok":
                assert row["cli_status"] == 0 and row["cli_rows"] == 1, row
            else:
                assert name in row["message"] and "\n" not in row["message"], row["message"]
                assert row["cli_status"] == 2 and row["cli_stderr"].count("\n") == 1, row
                assert name in row["cli_stderr"]
            if row["info_status"] != 0:
                assert name in row["info_stderr"] and row["info_stderr"].count("\n") == 1, row
            if kind.startswith("sidecar_"):
                assert "checksum mismatch" in row["message"], row
        (tmp_path / f"models{first}").rename(tmp_path / "done")  # keep the disk use to one batch
        for path in (tmp_path / "done").iterdir():
            path.unlink()
        (tmp_path / "done").rmdir()
    assert sum(kinds.values()) == MODELS and kinds["scale"] > 0 and kinds["sidecar"] > 0


# -- model cases ----------------------------------------------------------------------------------


def _edited(path: Path, edit) -> bytes:
    model = read(strip_metadata(path.read_bytes()))
    edit(model)
    return write(model)


_SCALE_CHILD = """
import sys
from litecls.errors import ModelFileError
from litecls.tasks import ImageClassifier
for path in sys.argv[1:]:
    try:
        ImageClassifier.create_from_model_path(path)
        print("accepted", path)
    except ModelFileError as exc:
        print("refused", exc)
"""


def test_impossible_quantization_scales_are_refused_not_a_segfault(tmp_path: Path, zoo_model) -> None:
    # inf, nan, 0 and -1 as the output scale each kill raw LiteRT with SIGSEGV at allocate_tensors;
    # 3.4e38 on an activation corrupts XNNPACK's heap (SIGABRT), found by the model fuzz.
    paths = []
    for name, value in (("inf", float("inf")), ("nan", float("nan")), ("zero", 0.0), ("negative", -1.0),
                        ("huge", 3.4e38)):
        def edit(model, value=value) -> None:
            graph = model.subgraphs[0]
            graph.tensors[graph.outputs[0]].quantization.scale = [value]
        path = tmp_path / f"scale_{name}.tflite"
        path.write_bytes(_edited(zoo_model("mobilenet_v2", "int8"), edit))
        paths.append(str(path))
    run = subprocess.run([sys.executable, "-c", _SCALE_CHILD, *paths], capture_output=True, text=True,
                         env=child_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]  # -11 is the SIGSEGV this test guards against
    lines = run.stdout.splitlines()
    assert len(lines) == 5
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"refused {path}: corrupt quantization") and "finite and positive" in line


def test_a_model_that_cannot_run_is_a_model_file_error_naming_it(tmp_path: Path, zoo_model) -> None:
    path = tmp_path / "no_first_op.tflite"
    path.write_bytes(_edited(zoo_model("efficientnet_lite0", "int8"),
                             lambda model: model.subgraphs[0].operators.pop(0)))
    with pytest.raises(ModelFileError, match=rf"^{path}: the model fails a trial run"):
        ImageClassifier.create_from_model_path(path)


def _pooled_features(model) -> None:
    graph = model.subgraphs[0]
    pooled = [i for op in graph.operators for i in op.outputs
              if list(graph.tensors[i].shape) == [1, 1280] and graph.tensors[i].type == 0]
    graph.outputs = np.array([pooled[-1]], dtype=np.int32)
    model.signatureDefs = []


def test_a_feature_extractor_without_labels_is_refused_with_a_pointer_to_the_embedder(
        tmp_path: Path, zoo_model, capsys) -> None:
    path = tmp_path / "features.tflite"
    path.write_bytes(_edited(zoo_model("efficientnet_lite0", "float32"), _pooled_features))
    with pytest.raises(ModelFileError, match=r"feature extractor.*1280 outputs.*ImageEmbedder"):
        ImageClassifier.create_from_model_path(path)
    # models info describes it, and says why ImageClassifier would not take it.
    from litecls.cli.main import main

    assert main(["models", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"file: {path}" in out and "output tensor: " in out and "[1, 1280] float32" in out
    assert "image classifier: no: this looks like a feature extractor" in out
    # What the message points to takes it: a 1280-value embedding.
    with ImageEmbedder.create_from_model_path(str(path)) as embedder:
        assert embedder.dimension == 1280
    # Labels say it is a classifier after all: accepted, and the probabilities sum to 1.
    options = ImageClassifierOptions(model_path=path, labels=[f"f{i}" for i in range(1280)], max_results=-1)
    with ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(np.full((224, 224, 3), 128, np.uint8))
    assert abs(sum(c.score for c in result.categories) - 1) < 1e-4
    # The unedited classifier (softmax output, no labels passed or read) is not refused.
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(strip_metadata(zoo_model("efficientnet_lite0", "float32").read_bytes()))
    with ImageClassifier.create_from_model_path(plain) as classifier:
        assert classifier.labels is None


def test_a_model_with_nan_weights_is_refused(tmp_path: Path, zoo_model) -> None:
    def poison(model) -> None:
        graph = model.subgraphs[0]
        def size(tensor) -> int:
            data = model.buffers[tensor.buffer].data
            return 0 if data is None else len(data)
        weights = max((t for t in graph.tensors if t.type == 0), key=size)
        data = np.frombuffer(bytes(model.buffers[weights.buffer].data), np.float32).copy()
        data[:] = np.nan
        model.buffers[weights.buffer].data = np.frombuffer(data.tobytes(), np.uint8)
    path = tmp_path / "nan.tflite"
    path.write_bytes(_edited(zoo_model("efficientnet_lite0", "float32"), poison))
    with pytest.raises(ModelFileError, match=rf"^{path}: the model outputs NaN"):
        ImageClassifier.create_from_model_path(path)


def test_a_corrupted_zoo_cache_file_is_rebuilt_and_a_custom_one_refused(tmp_path: Path, zoo_model) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    for precision in ("float32", "float16"):  # float16 is rebuilt from float32: the cheapest rebuild
        source = zoo_model("mobilenet_v2", precision)
        (cache / source.name).write_bytes(source.read_bytes())  # no sidecar, as an older litecls left it
    built = build("mobilenet_v2", "float16", cache=cache)
    good = built.read_bytes()
    # A file without a sidecar is adopted once it loads and passes a trial run: sidecar written.
    assert read_sidecar(built) == sha256_hex(good)

    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x01  # a weight: the file still loads and answers
    built.write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        ImageClassifier.create_from_model_path(built)  # as a custom file: a clear error
    said: list[str] = []
    rebuilt = build("mobilenet_v2", "float16", cache=cache, progress=said.append)
    assert any("checksum mismatch" in line and "rebuilding" in line for line in said), said
    assert rebuilt.read_bytes() != bytes(damaged)
    assert read_sidecar(rebuilt) == sha256_hex(rebuilt.read_bytes())
    with ImageClassifier.create_from_model_path(rebuilt):
        pass
    # A file made elsewhere has nothing to check: no sidecar, no error.
    elsewhere = tmp_path / "elsewhere.tflite"
    elsewhere.write_bytes(bytes(damaged))
    with ImageClassifier.create_from_model_path(elsewhere):
        pass
    write_sidecar(elsewhere, good)
    with pytest.raises(ModelFileError, match=rf"^{elsewhere}: checksum mismatch"):
        ImageClassifier.create_from_model_path(elsewhere)
    assert sidecar_path(elsewhere).name == "elsewhere.tflite.sha256"


# -- image limits ---------------------------------------------------------------------------------


def test_extreme_headers_are_refused_before_decoding(tmp_path: Path) -> None:
    tall = tmp_path / "tall.jpg"
    Image.new("RGB", (1, 65500)).save(tall)
    with pytest.raises(ImageError, match=r"1x65500 pixels is over the size limit"):
        open_image(tall)
    with pytest.raises(ImageError, match=r"1x1000000 pixels is over the size limit"):
        open_image(png_claiming(1, 1_000_000))
    strip = tmp_path / "strip.webp"
    Image.new("RGB", (1, 16383)).save(strip)
    with pytest.raises(ImageError, match=r"aspect ratio of 16,383:1, over the limit of 50:1"):
        open_image(strip)
    with pytest.raises(ImageError, match=r"would take 381 MiB, over the limit of 100 MiB"):
        open_image(png_claiming(10000, 10000, colour=2), limits=ImageLimits(max_memory=100 * 2**20))
    # A wide but sane panorama passes, and only its centre is resampled.
    wide = prepare_image(np.zeros((100, 4000, 3), np.uint8), (224, 224), crop_pct=0.875)
    assert wide.shape == (224, 224, 3)


def test_a_large_transparent_palette_image_is_reduced_flattened_on_white(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    indices = rng.integers(0, 4, (3000, 2000), dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    image.info["transparency"] = bytes([255, 128, 0, 255])
    reduced = np.asarray(to_mode(image.copy(), 3, reduce_to=(448, 448)), np.float64)
    # The reference: flatten at full size (what small images get), then the same reduction.
    rgba = image.convert("RGBA")
    full = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    reference = np.asarray(full.reduce(2000 // 448), np.float64)
    assert reduced.shape == reference.shape
    assert np.abs(reduced - reference).max() <= 1.0


def test_corrupt_exif_is_that_images_error_not_a_crash(tmp_path: Path, zoo_model) -> None:
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "exif.webp"
    image.save(path, "WEBP", exif=exif.tobytes())
    data = bytearray(path.read_bytes())
    tiff = max(data.find(b"MM\0*"), data.find(b"II*\0"))
    data[tiff] = 0xCD  # a damaged TIFF header in the EXIF chunk: Pillow raises SyntaxError
    path.write_bytes(bytes(data))
    with Image.open(path) as raw, pytest.raises(SyntaxError):
        raw.getexif()
    with pytest.raises(ImageError, match=rf"^{path}: corrupt or unsupported image data while orienting"
                                         rf".*SyntaxError: not a TIFF file"):
        prepare_image(path, (224, 224))
    # In a batch it is that image's error; the next image is still classified.
    with ImageClassifier.create_from_model_path(zoo_model("efficientnet_lite0", "int8")) as classifier:
        results = list(classifier.classify_many([path, np.zeros((8, 8, 3), np.uint8)]))
    assert isinstance(results[0][1], ImageError) and not isinstance(results[1][1], Exception)


# -- paths ----------------------------------------------------------------------------------------


def _classify(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "litecls.cli.main", "classify", *args], cwd=cwd,
                          capture_output=True, env=child_env(), timeout=300)


def test_every_input_string_gets_exactly_one_row_with_that_string(tmp_path: Path, zoo_model) -> None:
    model = str(zoo_model("efficientnet_lite0", "int8"))
    photo = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    (tmp_path / "sub").mkdir()
    Image.fromarray(photo).save(tmp_path / "sub" / "a.jpg")
    Image.fromarray(photo).save(tmp_path / "new\nline.jpg")
    Image.fromarray(photo).save(os.fsencode(tmp_path) + b"/esc\x1b[31m\xff.png")
    (tmp_path / "x.jpg").mkdir()
    (tmp_path / "empty").mkdir()
    os.symlink(tmp_path / "sub", tmp_path / "link")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")  # a link loop: --follow-links must still end
    odd = os.fsdecode(b"esc\x1b[31m\xff.png")
    inputs = ["x.jpg", "empty", "link", "missing_dir/", "./sub/a.jpg", "sub/", "new\nline.jpg", odd]
    run = _classify(["--json", "--model", model, *inputs], tmp_path)
    assert run.returncode == 1 and run.stderr == b"", run.stderr
    rows = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert [row["file"] for row in rows] == ["x.jpg", "empty", "link", "missing_dir/", "./sub/a.jpg",
                                             "sub/a.jpg", "new\nline.jpg", odd]
    errors = {row["file"]: row.get("error") for row in rows}
    assert "is a directory" in errors["x.jpg"] and "no image files" in errors["empty"]
    assert "not followed (pass --follow-links" in errors["link"]
    assert errors["missing_dir/"] == "missing_dir/: no such file"
    assert errors["./sub/a.jpg"] is None and errors["new\nline.jpg"] is None and errors[odd] is None

    followed = _classify(["--json", "--follow-links", "--model", model, "link"], tmp_path)
    files = [json.loads(line)["file"] for line in followed.stdout.decode().splitlines()]
    assert files[0] == "link/a.jpg" and len(files) == len(set(files))  # the loop is walked once

    text = _classify(["--model", model, "new\nline.jpg", odd, "x.jpg"], tmp_path)
    out, err = text.stdout.decode(), text.stderr.decode()
    assert "new\\nline.jpg" in out and "esc\\x1b[31m\\xff.png" in out and "\x1b" not in out
    assert "cannot classify: x.jpg: is a directory" in err
    assert "XNNPACK" not in err and "Traceback" not in err
    verbose = _classify(["--verbose", "--model", model, "sub/a.jpg"], tmp_path)
    assert "Created TensorFlow Lite XNNPACK delegate" in verbose.stderr.decode()


def test_training_data_checks_report_corrupt_exif_and_bombs_per_file(tmp_path: Path) -> None:
    from litecls.training.data import find_corrupt

    good = tmp_path / "good.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(good)
    exif = Image.Exif()
    exif[0x0112] = 3
    broken = tmp_path / "exif.webp"
    Image.new("RGB", (32, 32)).save(broken, "WEBP", exif=exif.tobytes())
    data = bytearray(broken.read_bytes())
    data[max(data.find(b"MM\0*"), data.find(b"II*\0"))] = 0xCD
    broken.write_bytes(bytes(data))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(1, 1_000_000))
    found = dict(find_corrupt([good, broken, bomb]))
    assert set(found) == {broken, bomb}
    assert "SyntaxError" in found[broken] and "over the size limit" in found[bomb]


def test_image_limits_are_an_option_of_the_classifier(zoo_model, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (640, 480), (30, 60, 90)).save(photo)
    strict = ImageClassifierOptions(model_path=zoo_model("efficientnet_lite0", "int8"),
                                    image_limits=ImageLimits(max_pixels=100_000))
    with ImageClassifier.create_from_options(strict) as classifier:
        with pytest.raises(ImageError, match=r"640x480 pixels is over the limit of 100,000 pixels"):
            classifier.classify(photo)
        # Arrays are already decoded (the memory is spent): the limits are about files and bytes.
        assert classifier.classify(np.zeros((480, 640, 3), np.uint8)).categories
    with pytest.raises(ValueError, match="max_aspect_ratio must be at least 1"):
        ImageLimits(max_aspect_ratio=0.5)
