"""How much the test suite's noise-sensitive figures move under an invisible input change.

    LITECLS_TEST_CACHE=DIR python benchmarks/floor_noise.py [--models NAME ...] [--seeds 1 2 3 4 5]

For each zoo model it computes the figures ``tests/test_zoo.py`` checks, on the inputs as
they are and with every pixel moved by -1, 0 or +1 level under each seed (what
``LITECLS_TEST_SEED`` does in the tests, ``tests/support.py: perturb``):

* int8 agreement: inputs (of the 696 views) on which int8's top-1 equals float32's top-1,
  both run on the same (perturbed) inputs;
* float32 +-1 level: inputs on which float32 keeps its own top-1 of the unchanged input
  (the standing target: int8 should keep it at least as often);
* on the 20 labelled ImageNet photos: float32 top-1 and top-5 hits, and how many of
  float16's and dynamic's top-1 equal float32's, and their top-5 hits.

``--photos-only`` skips the 696 views (seconds instead of minutes a model). The last column
is the floor the tests use: the mean over the unchanged inputs and the seeds, minus three
standard deviations, rounded down.

The floors in tests/test_zoo.py sit below the unperturbed figure by the spread printed
here (docs/decisions.md, "Test floors and their noise").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' photo sets

from photos import agreement_set, imagenet_set, run_tflite
from support import perturb

from litecls.models import list_models
from litecls.models.registry import PRECISIONS
from litecls.models.zoo import build

FLOAT_COMPUTE = [p for p in PRECISIONS if p not in ("float32", "int8")]


def figures(name: str, cache: str | None, seeds: list[int], views: bool = True) -> dict[str, list[int]]:
    """Per figure, its value on the unchanged inputs followed by one value per seed."""
    photos, labels = imagenet_set(name)
    paths = {p: build(name, p, cache) for p in PRECISIONS}
    keys = ["float32 top-1 /20", "float32 top-5 /20"]
    keys += [f"{p} {what} /20" for p in FLOAT_COMPUTE for what in ("agree", "top-5")]
    if views:
        keys = ["int8 agree /696", "float32 +-1 keeps /696", *keys]
        inputs = agreement_set(name)
        float_top1 = run_tflite(paths["float32"], inputs).argmax(1)
    out: dict[str, list[int]] = {k: [] for k in keys}
    for seed in [None, *seeds]:
        if views:
            changed = inputs if seed is None else perturb(inputs, seed)
            f32 = float_top1 if seed is None else run_tflite(paths["float32"], changed).argmax(1)
            out["int8 agree /696"].append(int((run_tflite(paths["int8"], changed).argmax(1) == f32).sum()))
            out["float32 +-1 keeps /696"].append(int((f32 == float_top1).sum()))
        small = photos if seed is None else perturb(photos, seed)
        probs = run_tflite(paths["float32"], small)
        top5 = np.argsort(-probs, axis=1)[:, :5]
        out["float32 top-1 /20"].append(int((top5[:, 0] == labels).sum()))
        out["float32 top-5 /20"].append(sum(label in row for label, row in zip(labels, top5, strict=True)))
        for precision in FLOAT_COMPUTE:
            other = run_tflite(paths[precision], small)
            out[f"{precision} agree /20"].append(int((other.argmax(1) == top5[:, 0]).sum()))
            other5 = np.argsort(-other, axis=1)[:, :5]
            out[f"{precision} top-5 /20"].append(sum(label in row
                                                     for label, row in zip(labels, other5, strict=True)))
        print(f"  {name} seed {seed}: " + ", ".join(f"{k} {v[-1]}" for k, v in out.items()), flush=True)
    return out


def floor(values: list[int]) -> int:
    """Mean minus three (sample) standard deviations, rounded down."""
    return int(np.floor(np.mean(values) - 3 * np.std(values, ddof=1)))


def main(argv: list[str] | None = None) -> None:
    """Print, per model and figure, the unchanged value, each seed's value and their range."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--cache", help="zoo cache directory (default: the zoo's)")
    parser.add_argument("--photos-only", action="store_true", help="skip the 696 views")
    args = parser.parse_args(argv)
    for name in args.models:
        result = figures(name, args.cache, args.seeds, views=not args.photos_only)
        print(f"\n{name}: unchanged | seeds {' '.join(map(str, args.seeds))} | min-max over seeds | "
              f"mean, sd | floor")
        for key, values in result.items():
            seeded = values[1:]
            print(f"  {key:24s}{values[0]:5d} | {' '.join(f'{v:4d}' for v in seeded)} | "
                  f"{min(seeded)}-{max(seeded)} | {np.mean(values):.1f}, {np.std(values, ddof=1):.1f} | "
                  f"{floor(values)}")
        print(flush=True)


if __name__ == "__main__":
    main()
