"""The README's claim that zoo files load unchanged in the TFLite Task Library (tflite-support).

tflite-support 0.4.4 (the last release) needs protobuf 3 and numpy 1 and ships wheels up to
CPython 3.11 only, so it lives in its own virtualenv, built once under ``.cache/`` from
``tests/tflite_support_requirements.txt``. Its ``ImageClassifier`` runs in a subprocess on the
same model-sized pixels litecls classifies (so both see identical input: the Task Library
squashes any other size), and its top categories, scores and names are compared with litecls's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from photos import run_tflite
from PIL import Image
from support import REPO, require

from litecls.models import get_config, list_models
from litecls.models.registry import PRECISIONS
from litecls.processing.image import prepare_image
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

REQUIREMENTS = Path(__file__).with_name("tflite_support_requirements.txt")
MAX_RESULTS = 5

_CLASSIFY = """
import json, sys
from tflite_support.task import core, processor, vision

path, *images = sys.argv[2:]
options = vision.ImageClassifierOptions(
    base_options=core.BaseOptions(file_name=path),
    classification_options=processor.ClassificationOptions(max_results=int(sys.argv[1])))
classifier = vision.ImageClassifier.create_from_options(options)
out = []
for image in images:
    result = classifier.classify(vision.TensorImage.create_from_file(image))
    out.append([[c.index, c.score, c.category_name, c.display_name]
                for c in result.classifications[0].categories])
print(json.dumps(out))
"""


def python311() -> str | None:
    """A CPython 3.11 to build the virtualenv with (tflite-support has no newer wheels)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return shutil.which("python3.11")


@pytest.fixture(scope="session")
def task_library_python() -> Path:
    """The virtualenv's python, built on first use (about 20 s and a PyPI download)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    root = Path(os.environ.get("LITECLS_TEST_CACHE", REPO / ".cache" / "test-models"))
    venv = root / f"tflite-support-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        base = python311()
        require(base is not None, "the TFLite Task Library needs CPython 3.11 (python3.11 on PATH)")
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".tflite-support-", dir=root))
        try:
            subprocess.run([base, "-m", "venv", str(building)], check=True, capture_output=True)
            pip = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q",
                                  "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
                                 capture_output=True, text=True, timeout=600)
            require(pip.returncode == 0, f"cannot install tflite-support: {pip.stderr[-2000:]}")
            (building / ".complete").write_text("ok\n")
            shutil.rmtree(venv, ignore_errors=True)
            # venv scripts carry their folder's path: rebuild the launchers for the final place.
            building.rename(venv)
            subprocess.run([str(python), "-m", "venv", "--upgrade", str(venv)], check=True,
                           capture_output=True)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return python


def task_library(python: Path, model: Path, images: list[Path]) -> list[list[list]]:
    """Top categories from the Task Library's ImageClassifier: [index, score, name, display name]."""
    child = subprocess.run([str(python), "-c", _CLASSIFY, str(MAX_RESULTS), str(model), *map(str, images)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout)


@pytest.fixture(scope="module")
def model_sized_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Path]]:
    """Per input size: the 20 labelled photos prepared as litecls prepares them, saved as PNG."""
    out: dict[int, list[Path]] = {}
    for name in list_models():
        config = get_config(name)
        if config.input_size in out:
            continue
        folder = tmp_path_factory.mktemp(f"photos{config.input_size}")
        size = (config.input_size, config.input_size)
        out[config.input_size] = []
        for i, (path, _label) in enumerate(labelled_imagenet_photos()):
            pixels = prepare_image(path, size, crop_pct=config.crop_pct, interpolation=config.interpolation)
            Image.fromarray(pixels).save(folder / f"{i:02d}.png")
            out[config.input_size].append(folder / f"{i:02d}.png")
    return out


# The two ends of the zoo's precisions: float input/output, and uint8 input/output.
@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p in ("float32", "int8")])
@pytest.mark.parametrize("name", list_models()[:1] + list_models()[-1:])
def test_task_library_classifies_zoo_files_like_litecls(name: str, precision: str, zoo_model,
                                                        task_library_python: Path, model_sized_photos):
    path = zoo_model(name, precision)
    images = model_sized_photos[get_config(name).input_size]
    theirs = task_library(task_library_python, path, images)
    pixels = np.stack([np.asarray(Image.open(image).convert("RGB")) for image in images])
    raw = run_tflite(path, pixels)  # the file's own output in LiteRT, dequantized
    # Scores: the Task Library reports the output tensor as it is (litecls renormalises int8's
    # 1/256 steps to sum to 1, so the raw output is the reference): float32 to rounding, int8 to
    # one output step (its bundled TFLite runtime is older than LiteRT 2.3 and rounds some
    # requantizations the other way, as MediaPipe's does: test_zoo.test_mediapipe_agrees).
    tolerance = 1e-4 if precision == "float32" else 1 / 256 + 1e-6
    options = ImageClassifierOptions(model_path=path, max_results=MAX_RESULTS)
    with ImageClassifier.create_from_options(options) as classifier:
        for image, probs, their_top in zip(pixels, raw, theirs, strict=True):
            ours = classifier.classify(image).categories
            assert len(their_top) == MAX_RESULTS
            assert np.allclose([c[1] for c in their_top], np.sort(probs)[::-1][:MAX_RESULTS], atol=tolerance)
            by_index = {c.index: c for c in ours}
            # The same top class; equal scores (int8 steps) may be listed in either order.
            assert their_top[0][0] == ours[0].index or abs(their_top[0][1] - their_top[1][1]) <= tolerance
            for index, score, category_name, display_name in their_top:
                assert score == pytest.approx(probs[index], abs=tolerance)
                if index not in by_index:  # a tie at the last place, listed differently
                    assert probs[index] <= probs[ours[-1].index] + tolerance
                    continue
                # Names from the file's metadata: labels file and display-names file.
                assert category_name == by_index[index].category_name
                assert display_name == (by_index[index].display_name or "")
