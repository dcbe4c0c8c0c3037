"""``litecls evaluate MODEL DATA``: top-1..top-5 accuracy, per class, and the common confusions."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from litecls.errors import DatasetError


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    p = commands.add_parser(
        "evaluate", help="top-k accuracy of a classifier on labelled images",
        description="DATA is a folder with one sub-folder per label (folder name = label name) or a "
                    "CSV/text file of 'path,label' lines (paths relative to the file). Label names are "
                    "matched to the model's labels; names the model does not know are reported.")
    p.add_argument("model", help="a .tflite file or a zoo model NAME[:PRECISION]")
    p.add_argument("data", nargs="?", help="labelled folder or path,label file")
    p.add_argument("--samples", action="store_true",
                   help="evaluate on the 20 labelled ImageNet sample photos shipped with foolbox")
    p.add_argument("--write-csv", metavar="FILE",
                   help="also write the evaluated set as a path,label-name CSV (e.g. the samples)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--per-image", action="store_true", help="with --json: include every prediction")
    p.add_argument("--confusion", metavar="PNG", help="write a confusion-matrix image")
    p.add_argument("--confusions", type=int, default=10, metavar="N",
                   help="how many of the most common confusions to list (default 10)")
    p.add_argument("--labels", help="labels file (one per line) for models without metadata")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: LiteRT's)")
    p.add_argument("--workers", type=int, default=2, help="image decoding threads (default 2)")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate; exit 1 when some images were left out (unknown label, unreadable), 2 on errors."""
    from litecls.cli.common import resolve_cli_model
    from litecls.evaluation.accuracy import MAX_K, evaluate
    from litecls.evaluation.dataset import load_labelled, sample_set, write_csv
    from litecls.progress import ProgressBar
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    if args.confusion:  # before any work: a missing plots extra is known now, not after the evaluation
        from litecls.extras import require_extra

        require_extra("plots", "--confusion")
    for flag, value in (("--threads", args.threads), ("--workers", args.workers)):
        if value is not None and value < 1:
            print(f"litecls: error: {flag} must be a positive integer, got {value}", file=sys.stderr)
            return 2
    if bool(args.data) == bool(args.samples):
        print("litecls: error: give DATA (a labelled folder or a path,label file) or --samples, not both",
              file=sys.stderr)
        return 2
    dataset = sample_set() if args.samples else load_labelled(args.data)
    model = resolve_cli_model(args.model, args.cache_dir)
    options = ImageClassifierOptions(model_path=model, max_results=MAX_K, num_threads=args.threads,
                                     labels=args.labels, cache_dir=args.cache_dir)
    bar = ProgressBar()
    started = time.perf_counter()
    with ImageClassifier.create_from_options(options) as classifier:
        if args.write_csv:
            write_csv(dataset, args.write_csv, classifier.labels)
        try:
            result = evaluate(classifier, dataset, workers=args.workers, progress=bar.update)
        finally:
            bar.close()
    elapsed = time.perf_counter() - started
    if not result.evaluated:
        raise DatasetError(f"none of the {result.left_out} image(s) could be evaluated: "
                           + "; ".join(error for _f, error in result.unreadable[:3]))
    if args.confusion:
        from litecls.evaluation.plots import plot_confusion

        classes, matrix = result.confusion_matrix()
        plot_confusion(classes, matrix, args.confusion,
                       title=f"{Path(model).name} on {result.source}: top-1 {100 * result.top_k(1):.1f}%")
    if args.json:
        data = result.to_dict(per_image=args.per_image)
        data["seconds"] = round(elapsed, 3)
        print(json.dumps(data, indent=1))
    else:
        print(format_evaluation(result, args.confusions, elapsed))
        if args.confusion:
            print(f"confusion matrix: {args.confusion}")
    return 1 if result.left_out else 0


def format_evaluation(result, confusions: int = 10, seconds: float | None = None) -> str:
    """Human-readable accuracy, per-class table, confusions and what was left out."""
    from litecls.cli.models_cmd import format_table

    lines = [f"model: {result.model}", f"data: {result.source}",
             f"images: {result.evaluated} evaluated"
             + (f", {result.left_out} left out (see below)" if result.left_out else "")
             + (f" in {seconds:.1f} s" if seconds is not None else ""), ""]
    lines.append(format_table(["", *[f"top-{k}" for k in range(1, 6)]],
                              [["accuracy", *[f"{100 * result.top_k(k):.1f}%" for k in range(1, 6)]],
                               ["correct", *[str(result.correct(k)) for k in range(1, 6)]]]))
    per_class = result.per_class()
    lines += ["", "per class (worst first):"]
    lines.append(format_table(["label", "images", "top-1", "top-5"],
                              [[c.label, str(c.images), f"{100 * c.top1_accuracy:.0f}%",
                                f"{100 * c.top5 / c.images:.0f}%"] for c in per_class]))
    mistakes = result.confusions(confusions)
    if mistakes:
        lines += ["", "most common confusions (true -> predicted):"]
        lines += [f"  {count} x  {true} -> {predicted}" for true, predicted, count in mistakes]
    if result.unknown_labels:
        lines += ["", f"labels the model does not know ({sum(result.unknown_labels.values())} image(s) "
                      "left out of the accuracy):"]
        for name, count in sorted(result.unknown_labels.items()):
            close = result.suggestions.get(name)
            lines.append(f"  {name!r}: {count} image(s)"
                         + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""))
    if result.unreadable:
        lines += ["", f"unreadable images ({len(result.unreadable)}):"]
        lines += [f"  {error}" for _file, error in result.unreadable]
    if result.skipped:
        lines += ["", f"skipped ({len(result.skipped)}):"]
        lines += [f"  {item}: {reason}" for item, reason in result.skipped]
    return "\n".join(lines)
