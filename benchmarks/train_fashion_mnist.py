"""Benchmark: transfer learning on Fashion-MNIST (issue 4's figures). Not a test.

For 100 and 500 training images a class (plus a disjoint validation tenth,
at least 10 a class, used only for early stopping), tested on the full
10,000-image Fashion-MNIST test set:

* head-only: frozen EfficientNet-Lite0 at 224 px, features with LiteRT, a new head;
* fine-tuned: the head first, then the backbone (PyTorch, augmented images);
* baseline: the TensorFlow "Image classification" tutorial CNN trained from scratch
  (3 conv+pool blocks of 16/32/64 filters, dense 128) on the same 28x28 images.

Wall time is split into feature extraction, training, evaluation (the 10,000
test images) and, apart, export and the evaluation of the exported float32
and int8 files. Run::

    .venv/bin/python benchmarks/train_fashion_mnist.py --out bench-out/

Needs Debian's dataset-fashion-mnist. Timings depend on what else runs on the
machine; the script prints the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from litecls.training import TrainedModel, load_splits, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the Fashion-MNIST reader
import fashion_mnist


def write_data(root: Path, per_class: int, seed: int) -> Path:
    """``root/train``, ``root/val`` (disjoint, from the training set) and ``root/test`` (all 10,000)."""
    folder = root / f"fmnist-{per_class}-seed{seed}"
    if (folder / "done").is_file():
        return folder
    images, labels = fashion_mnist.load("train")
    train_idx = fashion_mnist.balanced_indices(labels, per_class, seed=seed)
    val_idx = fashion_mnist.balanced_indices(labels, max(10, per_class // 10), seed=seed + 1000,
                                             exclude=train_idx)
    fashion_mnist.write_folder(images[train_idx], labels[train_idx], folder / "train")
    fashion_mnist.write_folder(images[val_idx], labels[val_idx], folder / "val")
    test_images, test_labels = fashion_mnist.load("test")
    fashion_mnist.write_folder(test_images, test_labels, folder / "test")
    (folder / "done").write_text("ok\n")
    return folder


def load_avg() -> str:
    """The 1/5/15-minute load averages (other processes make timings noisy)."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_transfer(folder: Path, out: Path, cache: str | None, fine_tune: bool, **options) -> dict:
    """Train, evaluate on the 10,000 test images, export float32/int8 and evaluate those too."""
    started = time.perf_counter()
    train_set, val_set, test_set = load_splits(folder)  # lists and decodes every image once (checks)
    loaded = time.perf_counter()
    model: TrainedModel = train(train_set, val_set, cache_dir=cache, fine_tune=fine_tune, **options)
    trained = time.perf_counter()
    evaluation = model.evaluate(test_set)
    evaluated = time.perf_counter()
    result = {
        "options": {k: v for k, v in model.options.items() if k != "show_progress"},
        "epochs_run": {name: s.epochs_run for name, s in model.stages.items()},
        "best_epoch": {name: s.best_epoch for name, s in model.stages.items()},
        "seconds": {"loading and checking the images": round(loaded - started, 1),
                    **{k: round(v, 1) for k, v in model.timings.items()},
                    "evaluation (10,000 test images)": round(evaluated - trained, 1),
                    "end to end (load + train + evaluate)": round(evaluated - started, 1)},
        "accuracy": {"trained model": evaluation.top1},
    }
    out.mkdir(parents=True, exist_ok=True)
    float_bytes = None
    for precision in ("float32", "int8"):
        t0 = time.perf_counter()
        path = model.export(out / f"model-{precision}.tflite", precision, float_model=float_bytes)
        t1 = time.perf_counter()
        if precision == "float32":
            float_bytes = path.read_bytes()
        ev = model.evaluate_tflite(path, test_set)
        result["seconds"][f"export {precision}"] = round(t1 - t0, 1)
        result["seconds"][f"evaluate {precision} .tflite"] = round(time.perf_counter() - t1, 1)
        result["accuracy"][f"{precision} .tflite"] = ev.top1
    return result


class TutorialCNN(nn.Module):
    """TensorFlow's "Image classification" tutorial network: 3x (conv 3x3 + ReLU + max-pool), dense 128."""

    def __init__(self, num_classes: int, channels: int = 1, size: int = 28) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((channels, 16), (16, 32), (32, 64)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        side = size // 8  # three 2x2 poolings (28 -> 14 -> 7 -> 3)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * side * side, 128), nn.ReLU(),
                                        nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def run_scratch(per_class: int, seed: int, epochs: int = 40, patience: int = 5) -> dict:
    """The tutorial CNN from scratch on the same 28x28 images (Adam 1e-3, batch 32, early stopping)."""
    images, labels = fashion_mnist.load("train")
    train_idx = fashion_mnist.balanced_indices(labels, per_class, seed=seed)
    val_idx = fashion_mnist.balanced_indices(labels, max(10, per_class // 10), seed=seed + 1000,
                                             exclude=train_idx)
    test_images, test_labels = fashion_mnist.load("test")

    def tensors(idx_images: np.ndarray, idx_labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(idx_images.astype(np.float32) / 255.0)[:, None]  # the tutorial's Rescaling
        return x, torch.from_numpy(idx_labels.astype(np.int64))

    x, y = tensors(images[train_idx], labels[train_idx])
    xv, yv = tensors(images[val_idx], labels[val_idx])
    xt, yt = tensors(test_images, test_labels)
    torch.manual_seed(seed)
    model = TutorialCNN(10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    best, best_state, bad, ran = math.inf, None, 0, 0
    for _epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y))
        for i in range(0, len(y), 32):
            index = order[i:i + 32]
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        ran += 1
        model.eval()
        with torch.no_grad():
            val_loss = float(nn.functional.cross_entropy(model(xv), yv))
        if val_loss < best:
            best, best_state, bad = val_loss, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            bad += 1
            if bad >= patience:
                break
    trained = time.perf_counter()
    model.load_state_dict(best_state)
    with torch.no_grad():
        accuracy = float(torch.cat([model(xt[i:i + 1000]).argmax(1) for i in range(0, len(yt), 1000)])
                         .eq(yt).float().mean())
    return {"epochs_run": ran, "accuracy": {"trained model": accuracy},
            "seconds": {"training": round(trained - started, 1),
                        "evaluation (10,000 test images)": round(time.perf_counter() - trained, 1)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench-out", help="folder for data, models and results")
    parser.add_argument("--cache-dir", help="model cache (default: the zoo's)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["head", "fine-tune", "scratch"])
    parser.add_argument("--fine-tune-epochs", type=int, help="default: the library's (6)")
    parser.add_argument("--fine-tune-size", type=int,
                        help="fine-tuning resolution (default: the backbone's, 224 px; the issue's "
                             "reference fine-tuned all layers at 112 px)")
    parser.add_argument("--fine-tune-layers", default="top", help="top (default), all, or a number")
    args = parser.parse_args()

    out = Path(args.out)
    results: dict = {"load average at start": load_avg(), "torch threads": torch.get_num_threads(),
                     "cpus": os.cpu_count(), "runs": {}}
    print(f"load average at start: {results['load average at start']}", file=sys.stderr)
    layers = args.fine_tune_layers if args.fine_tune_layers in ("top", "all") else int(args.fine_tune_layers)
    for per_class in args.per_class:
        folder = write_data(out / "data", per_class, args.seed)
        runs = results["runs"].setdefault(f"{per_class}/class", {})
        if "head" not in args.skip:
            runs["head-only (frozen Lite0, 224 px)"] = run_transfer(
                folder, out / f"head-{per_class}", args.cache_dir, fine_tune=False, seed=args.seed)
            print(json.dumps(runs, indent=1), file=sys.stderr)
        if "fine-tune" not in args.skip:
            runs[f"fine-tuned ({layers}, {args.fine_tune_size or 224} px)"] = run_transfer(
                folder, out / f"fine-tune-{per_class}", args.cache_dir, fine_tune=True, seed=args.seed,
                image_size=args.fine_tune_size, epochs=args.fine_tune_epochs, fine_tune_layers=layers)
            print(json.dumps(runs, indent=1), file=sys.stderr)
        if "scratch" not in args.skip:
            runs["scratch CNN (28 px)"] = run_scratch(per_class, args.seed)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    results["load average at end"] = load_avg()
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
