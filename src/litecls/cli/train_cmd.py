"""``litecls train DATA --output OUT/``: retrain a zoo model on your own classes (transfer learning)."""

from __future__ import annotations

import argparse
import sys

from litecls.models.zoo import DEFAULT_MODEL


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) not in (2, 3) or abs(sum(values) - 1) > 1e-6 or min(values) < 0 or values[0] <= 0:
        raise argparse.ArgumentTypeError(f"2 or 3 fractions summing to 1 (train first), got {text!r}")
    return values


def _layers(text: str) -> str | int:
    if text in ("top", "all"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'top', 'all' or a number of stages, got {text!r}") from None


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    from litecls.models import list_models

    parser = commands.add_parser(
        "train", help="train a classifier for your own classes and export it as .tflite",
        description="Retrain a zoo model on a folder of images (one sub-folder per label), "
                    "a folder with train/ val/ test/ sub-folders, or a CSV of path,label rows. "
                    "Writes model-float32.tflite, model-int8.tflite, labels.txt, report.json, "
                    "report.md with plots, and checkpoint/ to OUT.")
    parser.add_argument("data", metavar="DATA", help="image folder, train/val/test folder, or CSV file")
    parser.add_argument("--output", "-o", required=True, metavar="OUT", help="folder for the results")
    parser.add_argument("--model", "-m", default=DEFAULT_MODEL, choices=list_models(),
                        help="backbone (default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="epochs (default: 40 head-only, 6 fine-tuning)")
    parser.add_argument("--fine-tune", action="store_true",
                        help="after the head, also train the top of the backbone (slower, more accurate)")
    parser.add_argument("--fine-tune-layers", type=_layers, default="top", metavar="top|all|N",
                        help="backbone stages to fine-tune (default: %(default)s = last third)")
    parser.add_argument("--batch-size", type=int, help="default: 64 head-only, 32 fine-tuning")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="peak learning rate of the head on frozen features (default: %(default)g)")
    parser.add_argument("--fine-tune-lr", type=float, default=3e-4,
                        help="peak learning rate of the fine-tuned backbone stages; the head gets ten "
                             "times it (default: %(default)g)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and training (default: 0)")
    parser.add_argument("--split", type=_fractions, default=(0.8, 0.1, 0.1), metavar="TRAIN,VAL,TEST",
                        help="fractions for a folder without train/ val/ test/ (default: 0.8,0.1,0.1)")
    parser.add_argument("--image-size", type=int, help="training/input size in pixels (default: the model's)")
    parser.add_argument("--no-augment", action="store_true", help="no augmentation when fine-tuning")
    parser.add_argument("--dropout", type=float, default=0.2, help="default: %(default)g")
    parser.add_argument("--label-smoothing", type=float, default=0.1, help="default: %(default)g")
    parser.add_argument("--patience", type=int, default=8,
                        help="stop after this many epochs without a better validation loss (default: 8)")
    parser.add_argument("--no-class-weights", action="store_true",
                        help="do not weight the loss by inverse class frequency")
    parser.add_argument("--precision", "-p", default="float32,int8",
                        help="exported precisions, comma-separated (default: %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUT/checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace a model already in OUT")
    parser.add_argument("--cache-dir", help="model cache (default: $LITECLS_CACHE or XDG cache)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also show what the converters and the quantizer print")
    parser.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Load the data, train, evaluate, export, report."""
    from litecls.models.registry import PRECISIONS
    from litecls.training.pipeline import load_data, train_to_folder

    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        print(f"litecls train: error: --precision takes {', '.join(PRECISIONS)}", file=sys.stderr)
        return 2
    from litecls.training.pipeline import check_output

    check_output(args.output, args.overwrite, args.resume)  # before spending time on the data
    data = load_data(args.data, args.split, args.seed)
    from litecls.training.data import split_summary

    print(split_summary(data), flush=True)  # before training, so a wrong folder shows at once
    report = train_to_folder(
        data, args.output, precisions=precisions, overwrite=args.overwrite, resume=args.resume,
        cache_dir=args.cache_dir, model=args.model, epochs=args.epochs, fine_tune=args.fine_tune,
        fine_tune_layers=args.fine_tune_layers, batch_size=args.batch_size, lr=args.lr,
        fine_tune_lr=args.fine_tune_lr, seed=args.seed,
        image_size=args.image_size, augment=False if args.no_augment else None, dropout=args.dropout,
        label_smoothing=args.label_smoothing, patience=args.patience,
        class_weights=not args.no_class_weights, show_progress=not args.quiet)
    for name, ev in report["evaluation"].items():
        top5 = f", top-5 {100 * ev['top5']:.2f} %" if ev["top5"] is not None else ""
        print(f"{name}: top-1 {100 * ev['top1']:.2f} %{top5} on {ev['num_images']} test images")
    for name, path in report["files"].items():
        print(f"{name}: {path}")
    return 0
