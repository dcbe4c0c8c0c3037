"""``litecls classify``: classify image files, folders or the sample photos."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from litecls.errors import ImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
#: Up to this many images get a full table each; more get one line each and a progress bar.
TABLE_LIMIT = 12


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``classify`` command."""
    p = commands.add_parser("classify", help="classify images with a .tflite classifier")
    p.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR",
                   help="image files and folders (searched recursively)")
    p.add_argument("--samples", action="store_true",
                   help="also classify the sample photos (scikit-image and matplotlib classics)")
    p.add_argument("--model", "-m", default="efficientnet_lite0",
                   help="a .tflite file or a zoo model NAME[:PRECISION] (default: efficientnet_lite0, int8)")
    p.add_argument("--top-k", "-k", type=int, default=5, help="categories per image (default 5)")
    p.add_argument("--threshold", type=float, default=0.0, help="hide categories scoring below this")
    p.add_argument("--labels", help="labels file (one per line) for models without metadata")
    p.add_argument("--mean", type=float, nargs="+", help="input normalisation mean (models without metadata)")
    p.add_argument("--std", type=float, nargs="+", help="input normalisation std (models without metadata)")
    p.add_argument("--allow", nargs="+", metavar="LABEL", help="only report these categories")
    p.add_argument("--deny", nargs="+", metavar="LABEL", help="never report these categories")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: LiteRT's)")
    p.add_argument("--workers", type=int, default=2, help="image decoding threads (default 2)")
    p.add_argument("--json", action="store_true", help="one JSON object per image (JSON Lines)")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    p.set_defaults(func=cmd_classify)


def expand_inputs(inputs: list[str]) -> Iterator[Path]:
    """Files as given; folders walked recursively for image files, in sorted order."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        yield Path(root) / name
        else:
            yield path  # missing or odd files are reported by the classifier, not skipped


def _bar(score: float, width: int = 24) -> str:
    filled = score * width
    full = int(filled)
    return "█" * full + ("▌" if filled - full >= 0.5 else "")


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify every input; exit 1 if any input could not be classified."""
    from litecls.models.zoo import build, parse_model_ref
    from litecls.samples import demo_photos
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    paths = list(expand_inputs(args.inputs))
    if args.samples:
        paths += demo_photos()
    if not paths:
        print("litecls: nothing to classify: give image files or folders, or --samples", file=sys.stderr)
        return 2
    model = args.model
    if not Path(model).exists() and not model.endswith(".tflite"):
        model = str(build(*parse_model_ref(model), cache=args.cache_dir, progress=_progress))
    try:
        options = ImageClassifierOptions(
            model_path=model, max_results=args.top_k, score_threshold=args.threshold,
            category_allowlist=args.allow, category_denylist=args.deny, num_threads=args.threads,
            labels=args.labels, mean=tuple(args.mean) if args.mean else None,
            std=tuple(args.std) if args.std else None, cache_dir=args.cache_dir)
    except ValueError as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    started = time.perf_counter()
    table = len(paths) <= TABLE_LIMIT and not args.json
    with ImageClassifier.create_from_options(options) as classifier:
        if table:
            print(f"model: {model}")
        for done, (path, result) in enumerate(classifier.classify_many(paths, workers=args.workers), 1):
            if isinstance(result, ImageError):
                failures += 1
                if args.json:
                    print(json.dumps({"file": str(path), "error": str(result)}), flush=True)
                else:
                    print(f"litecls: cannot classify: {result}", file=sys.stderr)
                continue
            if args.json:
                print(json.dumps({"file": str(path), "ambiguous": result.ambiguous, "categories": [
                    {"index": c.index, "score": round(c.score, 6), "category_name": c.category_name,
                     "display_name": c.display_name} for c in result.categories]}), flush=True)
            elif table:
                flag = "  (ambiguous: no label is clearly ahead)" if result.ambiguous else ""
                print(f"\n{path}{flag}")
                for c in result.categories:
                    if c.score <= 0.0:  # a quantized score of exactly 0 says nothing
                        continue
                    print(f"  {c.score:7.2%}  {_bar(c.score):<24}  {c.category_name}")
            else:
                top = result.top
                name = f"{top.category_name} {top.score:.2%}" if top else "-"
                print(f"{path}\t{name}{'  (ambiguous)' if result.ambiguous else ''}")
                if sys.stderr.isatty():
                    print(f"\r{done}/{len(paths)} images", end="", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    if not args.json:
        good = len(paths) - failures
        print(f"\n{good} of {len(paths)} images classified in {elapsed:.2f} s"
              f"{f'; {failures} could not be read' if failures else ''}", file=sys.stderr)
    return 1 if failures else 0
