"""PNG figures: a confusion matrix, and accuracy against latency with the Pareto front."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (imported on first use: matplotlib is slow to load)."""
    from litecls.extras import require_extra

    require_extra("plots")
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(classes: Sequence[str], matrix: np.ndarray, out: str | os.PathLike,
                   title: str = "") -> Path:
    """Draw a confusion matrix to ``out``: rows true, columns predicted, shaded by share of the row.

    ``matrix`` is ``n x n``, or ``n x (n + 1)`` with a last column "other"
    (predictions outside ``classes``). Counts are written in up to 30 classes.
    """
    plt = pyplot()
    n = len(classes)
    columns = [*classes, "other"][:matrix.shape[1]]
    size = min(max(5.0, 0.38 * n + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(size + 0.6, size))
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("true label")
    if n <= 30:
        for i, j in zip(*np.nonzero(matrix), strict=True):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if shown[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.04, label="fraction of the row")
    return _save(fig, ax, title, out)


def _save(fig, ax, title: str, out: str | os.PathLike) -> Path:
    """Title, lay out, write ``out`` as PNG and free the figure."""
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=120)
    pyplot().close(fig)
    return out


def plot_pareto(points: Sequence[dict], out: str | os.PathLike, x_label: str, y_label: str,
                title: str = "") -> Path:
    """Scatter ``points`` (dicts: ``name`` "model:precision", ``x``, ``y``, ``pareto``), front joined.

    Colour says the model and the marker the precision, so overlapping
    points stay readable; only the Pareto points are labelled.
    """
    plt = pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    markers = {"float32": "o", "float16": "s", "dynamic": "^", "int8": "D"}
    models = list(dict.fromkeys(p["name"].partition(":")[0] for p in points))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    for point in points:
        model, _, precision = point["name"].partition(":")
        ax.scatter(point["x"], point["y"], marker=markers.get(precision, "o"), color=colours[model],
                   s=90 if point["pareto"] else 45, zorder=3, alpha=0.9,
                   edgecolors="black" if point["pareto"] else "none", linewidths=1.5)
        if point["pareto"]:
            ax.annotate(point["name"], (point["x"], point["y"]), textcoords="offset points",
                        xytext=(6, 6), fontsize=8)
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["x"])
    if front:
        ax.step([p["x"] for p in front], [p["y"] for p in front], where="post", color="black",
                linewidth=1, linestyle="--", zorder=2)
    handles = [Line2D([], [], color=colours[m], marker="o", linestyle="", label=m) for m in models]
    handles += [Line2D([], [], color="gray", marker=mk, linestyle="", label=pr)
                for pr, mk in markers.items()]
    handles.append(Line2D([], [], color="black", linestyle="--", marker="o", markerfacecolor="white",
                          label="Pareto front"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, ncol=2)
    ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost points
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, alpha=0.3)
    return _save(fig, ax, title, out)
