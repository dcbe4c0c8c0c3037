"""The training report: curves and confusion matrix as PNG, confusion matrix as CSV, JSON and Markdown."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from litecls.evaluation import plots
from litecls.training.metrics import Evaluation
from litecls.training.trainer import EpochRecord


def plot_curves(history: list[EpochRecord], path: str | os.PathLike) -> Path:
    """Loss and accuracy per epoch (training and validation), one panel each; stages follow each other."""
    plt = plots.pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(1, len(history) + 1)
    for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(x, [getattr(r, key) for r in history], label=f"train {title}")
        val = [getattr(r, f"val_{key}") for r in history]
        if any(v is not None for v in val):
            ax.plot(x, [np.nan if v is None else v for v in val], label=f"validation {title}")
        boundaries = [i + 0.5 for i in range(1, len(history)) if history[i].stage != history[i - 1].stage]
        for b in boundaries:
            ax.axvline(b, color="grey", linestyle=":", label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion(evaluation: Evaluation, path: str | os.PathLike, title: str = "") -> Path:
    """The confusion matrix of ``evaluation`` as PNG (see :func:`litecls.evaluation.plots.plot_confusion`)."""
    return plots.plot_confusion(evaluation.classes, evaluation.confusion, path,
                                title or f"confusion matrix (top-1 {100 * evaluation.top1:.1f} %)")


def confusion_csv(evaluation: Evaluation) -> str:
    """The confusion matrix as CSV: a header of predicted classes, one row per true class."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["true \\ predicted", *evaluation.classes])
    for name, row in zip(evaluation.classes, evaluation.confusion, strict=True):
        writer.writerow([name, *row.tolist()])
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def markdown(report: dict) -> str:
    """The Markdown report (plots referenced by their file names beside it)."""
    lines = [f"# Training report: {report['model']['name']}", ""]
    data = report["data"]
    lines += ["## Data", "", "| class | " + " | ".join(data["counts"]) + " |",
              "|---|" + "---:|" * len(data["counts"])]
    for i, name in enumerate(data["classes"]):
        lines.append(f"| {name} | " + " | ".join(str(c[i]) for c in data["counts"].values()) + " |")
    lines.append("| **total** | " + " | ".join(str(sum(c)) for c in data["counts"].values()) + " |")
    if data.get("skipped") or data.get("corrupt"):
        lines += ["", f"Skipped {len(data.get('skipped', []))} non-image file(s) and "
                  f"{len(data.get('corrupt', []))} corrupt image(s):", ""]
        lines += [f"- {entry}" for entry in data.get("corrupt", [])]
    opts = report["options"]
    how = (f"fine-tuned: {opts['fine_tune_layers']} at learning rate {opts['fine_tune_lr']:g}"
           if opts["fine_tune"] else "frozen")
    lines += ["", "## Training", "",
              f"Backbone {opts['model']} ({how}), "
              f"{opts['image_size']} px, batch {opts['batch_size']}, learning rate {opts['lr']:g}, "
              f"dropout {opts['dropout']:g}, label smoothing {opts['label_smoothing']:g}, "
              f"class weights {'on' if opts['class_weights'] else 'off'}, seed {opts['seed']}.", ""]
    for name, stage in report.get("stages", {}).items():
        lines.append(f"- {name}: {stage['epochs_run']} epoch(s) run, best epoch {stage['best_epoch']}"
                     + (" (stopped early)" if stage["stopped_early"] else "")
                     + (f", resumed after epoch {stage['resumed_from']}" if stage["resumed_from"] else ""))
    timing = report.get("timings", {})
    if timing:
        lines += ["", "| phase | seconds |", "|---|---:|"]
        lines += [f"| {k.replace('_', ' ')} | {v:.1f} |" for k, v in timing.items()]
    lines += ["", "![training curves](training_curves.png)", ""]
    results = report.get("evaluation", {})
    if results:
        lines += ["## Test results", "", "| model | images | top-1 | top-5 | seconds |",
                  "|---|---:|---:|---:|---:|"]
        for name, ev in results.items():
            lines.append(f"| {name} | {ev['num_images']} | {_pct(ev['top1'])} | {_pct(ev['top5'])} | "
                         f"{ev['seconds']:.1f} |")
        main = next(iter(results.values()))
        lines += ["", "| class | precision | recall | F1 | images |", "|---|---:|---:|---:|---:|"]
        for name, m in main["per_class"].items():
            lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
                         f"| {m['support']} |")
        lines += ["", "![confusion matrix](confusion_matrix.png)", "",
                  "Confusion matrix counts: [confusion_matrix.csv](confusion_matrix.csv).", ""]
    files = report.get("files", {})
    if files:
        lines += ["## Files", ""] + [f"- `{Path(v).name}`: {k}" for k, v in files.items()] + [""]
    return "\n".join(lines)


def write_report(folder: str | os.PathLike, report: dict, history: list[EpochRecord],
                 evaluation: Evaluation | None) -> dict[str, Path]:
    """Write report.json, report.md, training_curves.png and (with an evaluation) the confusion matrix."""
    from litecls.training.files import write_file as atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {"training curves": plot_curves(history, folder / "training_curves.png")}
    if evaluation is not None:
        written["confusion matrix"] = plot_confusion(evaluation, folder / "confusion_matrix.png")
        atomic_write(folder / "confusion_matrix.csv", confusion_csv(evaluation).encode())
        written["confusion matrix counts"] = folder / "confusion_matrix.csv"
    written.update({"report (JSON)": folder / "report.json", "report (Markdown)": folder / "report.md"})
    report.setdefault("files", {}).update({k: str(v) for k, v in written.items()})
    atomic_write(folder / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write(folder / "report.md", markdown(report).encode())
    return written
