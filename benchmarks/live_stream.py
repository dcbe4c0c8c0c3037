"""LIVE_STREAM mode fed faster than the model runs: litecls against MediaPipe.

    python benchmarks/live_stream.py                          # mobilenet_v2 int8 from the zoo cache
    python benchmarks/live_stream.py --model efficientnet_lite0:int8 --fps 240 --seconds 5

A simulated camera calls ``classify_async`` at ``--fps`` frames per second
(224x224 real photos, so resizing plays no part) for ``--seconds``. For each
library the script prints frames submitted and delivered, the drop rate, how
late callbacks come after their frame, whether timestamps arrive in order,
the peak traced Python memory while streaming (litecls: ``tracemalloc``;
MediaPipe's buffers are native and not traced), and how long ``close()``
takes against the median inference time. Libraries run in turn for
``--repeats`` rounds; figures are medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _frames(size: int) -> list[np.ndarray]:
    from photos import agreement_photos

    return [np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in agreement_photos()[:16]]


def run(mp, model: str, frames: list[np.ndarray], fps: float, seconds: float) -> dict[str, float]:
    """Stream ``frames`` into ``mp``'s live-stream classifier; return the figures."""
    delivered: list[tuple[int, float]] = []
    sent: dict[int, float] = {}

    def callback(result, image, timestamp_ms: int) -> None:
        delivered.append((timestamp_ms, time.perf_counter()))

    vision = mp.tasks.vision
    options = vision.ImageClassifierOptions(base_options=mp.tasks.BaseOptions(model_asset_path=model),
                                            running_mode=vision.RunningMode.LIVE_STREAM, max_results=5,
                                            result_callback=callback)
    classifier = vision.ImageClassifier.create_from_options(options)
    image_mode = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=model)))
    images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=f) for f in frames]
    inference = []
    for image in images[:8]:
        started = time.perf_counter()
        image_mode.classify(image)
        inference.append(time.perf_counter() - started)
    image_mode.close()
    tracemalloc.start()
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        ts = int((time.perf_counter() - started) * 1000) + n  # strictly increasing
        sent[ts] = time.perf_counter()
        classifier.classify_async(images[n % len(images)], ts)
        n += 1
        time.sleep(max(0.0, started + n / fps - time.perf_counter()))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    closing = time.perf_counter()
    classifier.close()
    close_s = time.perf_counter() - closing
    stamps = [ts for ts, _ in delivered]
    return {"submitted": n, "delivered": len(delivered), "dropped %": 100 * (1 - len(delivered) / n),
            "latency ms": 1000 * statistics.median(t - sent[ts] for ts, t in delivered),
            "in order": float(stamps == sorted(stamps)), "peak traced MB": peak / 1e6,
            "inference ms": 1000 * statistics.median(inference), "close ms": 1000 * close_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2:int8")
    parser.add_argument("--fps", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import mediapipe

    import litecls.compat.mediapipe as compat
    from litecls.models.zoo import build, parse_model_ref
    from litecls.runtime import describe_classifier, load_interpreter

    path = args.model if Path(args.model).is_file() else str(build(*parse_model_ref(args.model)))
    size = describe_classifier(load_interpreter(path)).input.height
    frames = _frames(size)
    figures: dict[str, list[dict[str, float]]] = {"litecls": [], "mediapipe": []}
    for _ in range(args.repeats):
        for name, module in (("litecls", compat), ("mediapipe", mediapipe)):
            figures[name].append(run(module, path, frames, args.fps, args.seconds))
    keys = list(figures["litecls"][0])
    print(f"model {path}, camera {args.fps:g} fps for {args.seconds:g} s, median of {args.repeats} rounds")
    print(f"{'':>16}" + "".join(f"{k:>16}" for k in keys))
    for name, rows in figures.items():
        print(f"{name:>16}" + "".join(f"{statistics.median(r[k] for r in rows):>16.2f}" for k in keys))


if __name__ == "__main__":
    main()
