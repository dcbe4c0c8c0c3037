"""Data folder in, deployable model folder out: what ``litecls train`` does, callable from Python.

The output folder gets ``model-float32.tflite``, ``model-int8.tflite``
(each with metadata and labels), ``labels.txt``, ``report.json``,
``report.md`` with ``training_curves.png`` and ``confusion_matrix.png`` /
``.csv``, and ``checkpoint/`` (the per-epoch checkpoint and cached features).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from litecls.errors import DatasetError, TrainingError
from litecls.progress import say
from litecls.training.api import train
from litecls.training.checkpoint import CHECKPOINT_NAME
from litecls.training.data import Dataset
from litecls.training.folders import ImageFolder, is_split_root, load_splits
from litecls.training.metrics import Evaluation
from litecls.training.model import TrainedModel
from litecls.training.report import write_report
from litecls.training.trainer import EpochRecord

#: The precisions ``litecls train`` exports unless told otherwise (any of the zoo's PRECISIONS).
EXPORT_PRECISIONS = ("float32", "int8")
CHECKPOINT_DIR = "checkpoint"


def load_data(source: str | os.PathLike, fractions: Sequence[float] = (0.8, 0.1, 0.1),
              seed: int = 0) -> dict[str, Dataset | None]:
    """``{"train", "val", "test"}`` from a folder of class folders (split by ``fractions``),
    a folder with ``train/`` + ``val/`` and/or ``test/``, or a CSV of ``path,label`` rows.

    Explicit folders without ``val/`` take a stratified tenth of ``train/`` for validation.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        parts = Dataset.from_csv(source).split(fractions, seed)
    elif is_split_root(source):
        train_set, val, test = load_splits(source)
        if val is None:
            train_set, val = train_set.split((0.9, 0.1), seed)
            train_set.name = "train"
        parts = (train_set, val, test)
    elif source.is_dir():
        parts = ImageFolder(source).split(fractions, seed)
    elif source.exists():
        raise DatasetError(f"{source}: expected a folder of images or a .csv file of path,label rows")
    else:
        raise DatasetError(f"{source}: no such folder or file")
    named = dict(zip(("train", "val", "test"), parts, strict=False))
    return {key: named.get(key) for key in ("train", "val", "test")}


def check_output(folder: str | os.PathLike, overwrite: bool, resume: bool) -> None:
    """Refuse to replace a model, or to silently start over on an interrupted run's checkpoint."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TrainingError(f"{folder} exists and is not a folder")
    models = sorted(folder.glob("*.tflite")) if folder.is_dir() else []
    if models and not overwrite:
        raise TrainingError(f"{folder} already holds a model ({', '.join(m.name for m in models)}); "
                            "pass --overwrite to replace it, or choose another --output folder")
    checkpoint = folder / CHECKPOINT_DIR / CHECKPOINT_NAME
    if resume and not checkpoint.is_file():
        raise TrainingError(f"nothing to resume: {checkpoint} does not exist")
    if checkpoint.is_file() and not (resume or overwrite):
        raise TrainingError(f"{checkpoint} is the checkpoint of an earlier run; pass --resume to "
                            "continue it, or --overwrite to start over")


def training_report(model: TrainedModel, data: dict[str, Dataset | None],
                 evaluations: dict[str, Evaluation], files: dict[str, str]) -> dict:
    """The JSON report: data, settings, stages, timings, test results, files."""
    present = {k: v for k, v in data.items() if v is not None}
    train_set = present["train"]
    return {
        "model": {"name": model.export_spec().name, "backbone": model.backbone_name,
                  "image_size": model.image_size, "fine_tuned": model.fine_tuned,
                  "classes": model.classes},
        "data": {"classes": list(train_set.classes),
                 "counts": {k: v.counts().tolist() for k, v in present.items()},
                 "skipped": sorted({str(p) for d in present.values() for p in d.skipped}),
                 "corrupt": sorted({reason for d in present.values() for _, reason in d.corrupt})},
        "options": model.options,
        "stages": {name: {"epochs_run": s.epochs_run, "best_epoch": s.best_epoch,
                          "best_val_loss": s.best_val_loss, "stopped_early": s.stopped_early,
                          "resumed_from": s.resumed_from, "seconds": round(s.seconds, 2)}
                   for name, s in model.stages.items()},
        "history": [vars(r) for r in model.history],
        "timings": {k: round(v, 2) for k, v in model.timings.items()},
        "evaluation": {name: ev.to_dict() for name, ev in evaluations.items()},
        "files": files,
    }


def train_to_folder(data: dict[str, Dataset | None], output: str | os.PathLike,
                    precisions: Sequence[str] = EXPORT_PRECISIONS, overwrite: bool = False,
                    resume: bool = False, cache_dir: str | os.PathLike | None = None,
                    on_epoch_end: Iterable[Callable[[EpochRecord], None]] = (), **options) -> dict:
    """Train, evaluate on the test split, export and evaluate the exports; write everything to ``output``.

    ``options`` are :class:`litecls.training.TrainOptions` fields. Returns the report.
    """
    output = Path(output)
    check_output(output, overwrite, resume)
    show = options.get("show_progress", True)
    train_set, val, test = data["train"], data["val"], data["test"]
    if train_set is None:
        raise DatasetError("no training images")
    model = train(train_set, val, checkpoint_dir=output / CHECKPOINT_DIR, resume=resume,
                  cache_dir=cache_dir, on_epoch_end=on_epoch_end, **options)
    evaluations: dict[str, Evaluation] = {}
    if test is not None:
        say(f"evaluating on {len(test)} test images", show)
        evaluations["trained model (LiteRT backbone + head)"] = model.evaluate(test, show_progress=show)
    files = {"labels": str(model.save_labels(output / "labels.txt"))}
    float_bytes = None
    for precision in precisions:
        started = time.perf_counter()
        say(f"exporting {precision}", show)
        path = model.export(output / f"model-{precision}.tflite", precision,
                            float_model=float_bytes if precision != "float32" else None)
        model.timings[f"export_{precision}"] = time.perf_counter() - started
        if precision == "float32":
            float_bytes = path.read_bytes()
        files[f"{precision} model"] = str(path)
        if test is not None:
            evaluations[f"{precision} .tflite"] = model.evaluate_tflite(path, test, show_progress=show)
    report = training_report(model, data, evaluations, files)
    write_report(output, report, model.history, next(iter(evaluations.values()), None))
    return report
