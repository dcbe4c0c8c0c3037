"""One model, five ways to run it, timed interleaved in one process, against the machine's limit.

    python benchmarks/side_by_side.py --model efficientnet_lite0 --precision float32 --threads 1

Runtimes, all on the same real photo already cropped to the model's size:

* ``litert``: raw LiteRT ``Interpreter.invoke()`` on a ready input tensor (the reference, 1.00x);
* ``litecls tensor``: ``ImageClassifier.classify_tensor`` (invoke + dequantize, softmax check, top-k);
* ``litecls frame``: ``ImageClassifier.classify`` on the model-sized uint8 frame (+ normalise/quantize);
* ``mediapipe``: MediaPipe Tasks ``ImageClassifier.classify`` on an ``mp.Image`` of the same frame;
* ``pytorch``: the PyTorch module in eager mode (``torch.set_num_threads`` matched), + softmax.

Each runner does a few runs in turn (interleaved), so load from other
processes hits all of them alike; figures are medians (p50) and minimums.
"cores used" is process CPU time over wall time during the runs: it shows
how many threads a runtime really kept busy (MediaPipe picks its own).

The floor: the network's multiply-accumulates (conv + linear, as published)
x 2 FLOPs, divided by this CPU's measured float32 peak (best large numpy
matmul at the same thread count, measured before and after the runtimes). No float32 runtime can beat it; the
"% of peak" column says how close each gets. For int8 files the float32
floor is only a reference point (int8 kernels have their own ceiling).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from litecls.evaluation.benchmark import interleaved
from litecls.evaluation.machine import machine_info, measure_peak_gflops
from litecls.models import create_model, get_config
from litecls.models.complexity import count_params_and_macs
from litecls.models.zoo import build
from litecls.processing.config import resolve_processing
from litecls.samples import labelled_imagenet_photos
from litecls.tasks import ImageClassifier, ImageClassifierOptions

#: A 1024^3 matmul takes ~50 ms: short enough that the best of 20 is rarely interrupted by other
#: processes (a 2048^3 one takes ~0.4 s and, on a busy machine, is always time-sliced).
PEAK_SIZE, PEAK_REPEATS = 1024, 20


@dataclass
class Runner:
    """A named way to classify the frame: ``run()`` does one inference, ``top1()`` says its answer."""

    name: str
    run: Callable[[], object]
    top1: Callable[[], int]
    cpu_seconds: float = 0.0


def _with_cpu_time(runner: Runner) -> Callable[[], object]:
    def timed() -> object:
        start = time.process_time()
        out = runner.run()
        runner.cpu_seconds += time.process_time() - start
        return out
    return timed


def make_runners(name: str, precision: str, threads: int, cache: str | None,
                 skip: set[str]) -> tuple[list[Runner], list[Callable[[], object]]]:
    """Build every runtime on the same model file and photo; return the runners and their closers."""
    from ai_edge_litert.interpreter import Interpreter

    config = get_config(name)
    path = build(name, precision, cache)
    photo = labelled_imagenet_photos()[1][0]  # the folding chair: every runtime agrees on it
    processing = resolve_processing(zoo=config)
    frame = processing.prepare(photo)
    runners = []
    classifier = ImageClassifier.create_from_options(
        ImageClassifierOptions(model_path=path, max_results=5, num_threads=threads))
    closers: list[Callable[[], object]] = [classifier.close]
    tensor = classifier.preprocess(frame)

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], tensor)
    def litert_top1() -> int:
        interpreter.invoke()
        return int(np.argmax(interpreter.get_tensor(out["index"])))
    runners.append(Runner("litert", interpreter.invoke, litert_top1))

    runners.append(Runner("litecls tensor", lambda: classifier.classify_tensor(tensor),
                          lambda: classifier.classify_tensor(tensor).categories[0].index))
    runners.append(Runner("litecls frame", lambda: classifier.classify(frame),
                          lambda: classifier.classify(frame).categories[0].index))

    if "mediapipe" not in skip:
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        mp_classifier = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
            base_options=BaseOptions(model_asset_path=str(path)), max_results=5))
        closers.append(mp_classifier.close)  # before interpreter exit, or its __del__ raises
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        runners.append(Runner("mediapipe", lambda: mp_classifier.classify(image),
                              lambda: mp_classifier.classify(image).classifications[0].categories[0].index))

    if "pytorch" not in skip:
        import torch

        torch.set_num_threads(threads)
        module = create_model(name)
        batch = torch.from_numpy(processing.normalize(frame).transpose(2, 0, 1)[None].copy())

        def torch_run() -> object:
            with torch.inference_mode():
                return torch.softmax(module(batch), dim=-1)
        runners.append(Runner("pytorch", torch_run, lambda: int(torch_run().argmax())))
    return runners, closers


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, time every runtime interleaved, print the table and the floor."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--precision", default="float32", help="float32, float16, dynamic or int8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=60, help="timed runs per runtime (default 60)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma-separated runtimes to leave out: mediapipe,pytorch")
    parser.add_argument("--cache-dir")
    parser.add_argument("--no-peak", action="store_true", help="skip the numpy peak measurement")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.runs < 1:
        parser.error("--threads and --runs must be positive")

    runners, closers = make_runners(args.model, args.precision, args.threads, args.cache_dir,
                                   {s.strip() for s in args.skip.split(",") if s.strip()})
    peak_before = 0.0 if args.no_peak else measure_peak_gflops(args.threads, PEAK_SIZE, PEAK_REPEATS)
    answers = {r.name: r.top1() for r in runners}
    for r in runners:
        for _ in range(args.warmup):
            r.run()
    times = interleaved([_with_cpu_time(r) for r in runners], args.runs)
    wall_seconds = {r.name: sum(samples) / 1000 for r, samples in zip(runners, times, strict=True)}

    config = get_config(args.model)
    _params, macs = count_params_and_macs(create_model(args.model, pretrained=False),
                                          (config.input_size, config.input_size))
    # Measured before and after the runtimes; the better of the two is the less disturbed.
    peak = None if args.no_peak else max(peak_before, measure_peak_gflops(args.threads, PEAK_SIZE,
                                                                           PEAK_REPEATS))
    floor_ms = 2 * macs / (peak * 1e9) * 1000 if peak else None

    info = machine_info()
    print(f"{args.model}:{args.precision}, {args.threads} thread(s), {args.runs} interleaved runs each")
    print(f"machine: {info.summary()}")
    base = statistics.median(times[0])
    print(f"\n{'runtime':<16} {'p50 ms':>8} {'min ms':>8} {'x litert':>9} {'cores used':>11} "
          f"{'% of peak':>10}  top-1")
    for r, samples in zip(runners, times, strict=True):
        p50 = statistics.median(samples)
        cores = r.cpu_seconds / wall_seconds[r.name] if wall_seconds[r.name] else float("nan")
        share = f"{100 * floor_ms / p50:9.0f}%" if floor_ms else f"{'-':>10}"
        print(f"{r.name:<16} {p50:8.2f} {min(samples):8.2f} {p50 / base:8.2f}x {cores:11.2f} {share}  "
              f"{answers[r.name]}")
    print(f"\nMACs (conv + linear): {macs / 1e6:.0f} M = {2 * macs / 1e9:.2f} GFLOP per image")
    if peak:
        print(f"float32 peak of this CPU at {args.threads} thread(s): {peak:.1f} GFLOP/s "
              f"(best of 2 x {PEAK_REPEATS} {PEAK_SIZE}x{PEAK_SIZE} numpy matmuls)")
        best = min(times[0])
        print(f"floor: {floor_ms:.2f} ms per image; raw LiteRT is {base / floor_ms:.1f}x the floor at p50 "
              f"({100 * floor_ms / base:.0f}% of peak), {best / floor_ms:.1f}x at its best run "
              f"({100 * floor_ms / best:.0f}%)")
        if best < floor_ms:
            print("warning: a runtime beat the float32 floor, so the peak measurement was disturbed (a busy "
                  "machine) or the kernels are not float32: treat the % of peak as unreliable",
                  file=sys.stderr)
    for close in closers:
        close()
    if len(set(answers.values())) > 1:
        print(f"warning: the runtimes disagree on the top-1 class: {answers}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
