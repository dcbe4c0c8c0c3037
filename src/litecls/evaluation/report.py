"""The zoo on this machine: size, latency, accuracy and int8-vs-float agreement of every model file,
the Pareto front of accuracy against latency, and the most accurate model within a latency budget.

Accuracy means ImageNet top-1 as the models' authors published it (the registry records each
figure and its source), unless the report was measured on the user's own labelled data
(``rank_by="data"``): a handful of sample photos cannot rank models whose published top-1 differ
by a few points, so their figures are shown only as a sanity check.

All files are timed *interleaved* (a few runs of each in turn, every file
and thread count kept loaded), so load from other processes spreads over
all of them instead of skewing whichever ran at that moment; figures are
medians (p50).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from litecls.evaluation.accuracy import EvaluationResult, evaluate_model
from litecls.evaluation.benchmark import interleaved, random_inputs
from litecls.evaluation.dataset import LabelledSet
from litecls.evaluation.machine import machine_info, usable_cores
from litecls.evaluation.stats import summarize
from litecls.runtime.interpreter import interpreter_from_bytes, read_model_bytes

Progress = Callable[[str], None]


@dataclass
class ReportRow:
    """One zoo file measured on this machine."""

    model: str
    precision: str
    path: str
    size_mb: float
    latency_ms: dict[int, float]  #: thread count -> p50 ms of invoke() on a ready tensor
    top1: float
    top5: float
    images: int
    #: Fraction of images where the top-1 class equals the float32 file's (None for float32 itself).
    agreement: float | None
    pareto: bool = False
    #: Published ImageNet top-1/top-5 (fractions) that apply to this file, what kind of file they
    #: were published for ("float" or "int8"; see ModelConfig.published_accuracy) and where.
    published_top1: float | None = None
    published_top5: float | None = None
    published_for: str | None = None
    published_source: str | None = None

    @property
    def name(self) -> str:
        """``model:precision``."""
        return f"{self.model}:{self.precision}"

    def accuracy_key(self, rank_by: str) -> tuple[float, float]:
        """What ranks this row, higher first: see :data:`RANKINGS`.

        Args:
            rank_by: ``"published"`` (published top-1, then agreement with the float32 file on
                the measured images: float32 itself counts as agreeing fully) or ``"data"``
                (measured top-1, then top-5).

        Returns:
            A pair to compare between rows; a row without a published figure ranks last.

        Raises:
            ValueError: ``rank_by`` is not one of :data:`RANKINGS`.
        """
        if rank_by == "published":
            top1 = -1.0 if self.published_top1 is None else self.published_top1
            return top1, 1.0 if self.agreement is None else self.agreement
        if rank_by == "data":
            return self.top1, self.top5
        raise ValueError(f"unknown ranking {rank_by!r}; choose one of {', '.join(RANKINGS)}")


#: How a report ranks accuracy: by the published ImageNet figures or by the measured data.
RANKINGS = ("published", "data")


def published_fields(model: str, precision: str) -> dict:
    """The ``published_*`` fields of a :class:`ReportRow` for a zoo file, from the registry.

    Args:
        model: A registered model name.
        precision: One of the zoo's precisions.

    Returns:
        Keyword arguments for :class:`ReportRow` (all ``None`` when nothing is published).

    Raises:
        litecls.errors.UnknownModelError: ``model`` is not registered.
    """
    from litecls.models.registry import get_config

    figure, kind = get_config(model).published_accuracy(precision)
    if figure is None:
        return {"published_top1": None, "published_top5": None, "published_for": None,
                "published_source": None}
    return {"published_top1": figure.top1 / 100,
            "published_top5": None if figure.top5 is None else figure.top5 / 100,
            "published_for": kind, "published_source": figure.source}


@dataclass
class ZooReport:
    """Rows plus what they were measured on and how.

    Attributes:
        rows: one :class:`ReportRow` per model file.
        threads: the thread counts timed.
        data: the images accuracy was measured on.
        runs: timed runs per file and thread count.
        warmup: untimed runs first.
        machine: :meth:`MachineInfo.to_dict` of the machine.
        notes: caveats worth printing with the table.
    """

    rows: list[ReportRow]
    threads: list[int]
    data: str
    runs: int
    warmup: int
    machine: dict
    notes: list[str] = field(default_factory=list)
    #: One of :data:`RANKINGS`: what "most accurate" means in the Pareto front and in choose.
    rank_by: str = "published"

    def to_dict(self) -> dict:
        """JSON-ready dict (``litecls models report --json``; read back by :func:`load_report`).

        Returns:
            Plain types only.
        """
        data = asdict(self)
        for row in data["rows"]:
            row["latency_ms"] = {str(k): round(v, 3) for k, v in row["latency_ms"].items()}
        return data


def load_report(path: str | os.PathLike) -> ZooReport:
    """Read a report written by ``litecls models report --json``.

    Args:
        path: the JSON file.

    Returns:
        The report.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not such a report (bad JSON).
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = []
    for row in data["rows"]:
        row = dict(row)
        row["latency_ms"] = {int(k): float(v) for k, v in row["latency_ms"].items()}
        if "published_top1" not in row:  # written before the registry held published figures
            row.update(published_fields(row["model"], row["precision"]))
        rows.append(ReportRow(**row))
    return ZooReport(rows=rows, threads=[int(t) for t in data["threads"]], data=data["data"],
                     runs=data["runs"], warmup=data["warmup"], machine=data["machine"],
                     notes=data.get("notes", []), rank_by=data.get("rank_by", "published"))


def default_threads() -> list[int]:
    """1 thread and all usable cores (just 1 on a one-core machine)."""
    cores = usable_cores()
    return [1] if cores == 1 else [1, cores]


def time_files(paths: Sequence[Path], threads: Sequence[int], warmup: int, runs: int,
               progress: Progress | None = None) -> dict[tuple[Path, int], float]:
    """p50 ms of ``invoke()`` for every file at every thread count, all interleaved."""
    say = progress or (lambda _msg: None)
    keys, runners = [], []
    for path in paths:
        data, name = read_model_bytes(path)
        for count in threads:
            interpreter = interpreter_from_bytes(data, name, count)
            random_inputs(interpreter)
            for _ in range(warmup + 1):
                interpreter.invoke()
            keys.append((path, count))
            runners.append(interpreter.invoke)
    say(f"timing {len(paths)} file(s) x {len(threads)} thread setting(s), {runs} runs each, interleaved")
    times = interleaved(runners, runs)
    return {key: summarize(samples).p50_ms for key, samples in zip(keys, times, strict=True)}


def pareto_flags(rows: Sequence[ReportRow], threads: int, rank_by: str = "published") -> None:
    """Mark rows that no other row beats on both latency and accuracy.

    Args:
        rows: The rows to flag (their ``pareto`` is set in place).
        threads: The thread count whose latency counts.
        rank_by: What accuracy means (:meth:`ReportRow.accuracy_key`).

    Raises:
        KeyError: a row has no latency at ``threads``.
        ValueError: unknown ``rank_by``.
    """
    def point(row: ReportRow) -> tuple[float, ...]:
        first, second = row.accuracy_key(rank_by)
        return row.latency_ms[threads], -first, -second

    points = [point(row) for row in rows]
    for row, mine in zip(rows, points, strict=True):
        row.pareto = not any(
            other is not row and all(a <= b for a, b in zip(o, mine, strict=True)) and o != mine
            for other, o in zip(rows, points, strict=True))


def _agreement(result: EvaluationResult, reference: EvaluationResult) -> float | None:
    ref = {p.path: p.top[0] for p in reference.predictions}
    shared = [p for p in result.predictions if p.path in ref]
    return sum(p.top[0] == ref[p.path] for p in shared) / len(shared) if shared else None


def build_report(models: Sequence[str], precisions: Sequence[str], dataset: LabelledSet,
                 cache_dir: str | os.PathLike | None = None, threads: Sequence[int] | None = None,
                 warmup: int = 5, runs: int = 30, progress: Progress | None = None,
                 rank_by: str = "published") -> ZooReport:
    """Build (if needed), time and evaluate every ``model`` x ``precision`` of the zoo.

    Args:
        models: Registered model names.
        precisions: Zoo precisions to report (float32 is also built, as the agreement reference).
        dataset: Labelled images to measure top-1/top-5 and agreement on.
        cache_dir: The zoo cache (default: :func:`litecls.cache.cache_dir`).
        threads: Thread counts to time (default: 1 and all usable cores).
        warmup: Untimed runs per file and thread count.
        runs: Timed, interleaved runs per file and thread count.
        progress: Called with one line per step.
        rank_by: ``"published"`` (ImageNet figures from the registry; ``dataset`` is a sanity
            check) or ``"data"`` (``dataset`` is the user's own labelled data and ranks).

    Returns:
        The report, with its Pareto front flagged.

    Raises:
        ValueError: unknown ``rank_by``.
        litecls.errors.LiteclsError: a model cannot be built or loaded.
    """
    if rank_by not in RANKINGS:
        raise ValueError(f"unknown ranking {rank_by!r}; choose one of {', '.join(RANKINGS)}")
    from litecls.models.zoo import build

    say = progress or (lambda _msg: None)
    counts = list(threads or default_threads())
    files: dict[tuple[str, str], Path] = {}
    for name in models:
        for precision in dict.fromkeys([*precisions, "float32"]):  # float32: agreement reference
            files[(name, precision)] = build(name, precision, cache_dir, progress=say)
    timed = [files[(n, p)] for n in models for p in precisions]
    latency = time_files(timed, counts, warmup, runs, say)
    evaluations: dict[tuple[str, str], EvaluationResult] = {}
    for key, path in files.items():
        say(f"evaluating {key[0]}:{key[1]} on {len(dataset)} image(s)")
        evaluations[key] = evaluate_model(str(path), dataset)
    rows = []
    for name in models:
        for precision in precisions:
            path, result = files[(name, precision)], evaluations[(name, precision)]
            reference = evaluations[(name, "float32")]
            rows.append(ReportRow(
                model=name, precision=precision, path=str(path), size_mb=path.stat().st_size / 1e6,
                latency_ms={c: latency[(path, c)] for c in counts}, top1=result.top_k(1),
                top5=result.top_k(5), images=result.evaluated,
                agreement=None if precision == "float32" else _agreement(result, reference),
                **published_fields(name, precision)))
    pareto_flags(rows, counts[-1], rank_by)
    notes = []
    if rows and rows[0].images < 200:
        notes.append(f"accuracy on {rows[0].images} images moves in steps of {100 / rows[0].images:.0f} "
                     f"points: treat small differences as ties")
    return ZooReport(rows=rows, threads=counts, data=dataset.source, runs=runs, warmup=warmup,
                     machine=machine_info().to_dict(), notes=notes, rank_by=rank_by)


def ranking_text(report: ZooReport) -> str:
    """One line saying what "accurate" means in ``report`` (printed by report and choose).

    Args:
        report: A zoo report.

    Returns:
        The sentence.
    """
    if report.rank_by == "data":
        return f"ranked by top-1 (then top-5) measured on {report.data}"
    count = report.rows[0].images if report.rows else 0
    return ("ranked by published ImageNet top-1 (the models' authors' figures, sources in "
            f"'litecls models report --json'), then by agreement with float32; top-1 on {count} "
            f"image(s) of {report.data} is a sanity check only (pass --data to rank by your own "
            "labelled images)")


# -- output ------------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    """A fraction as a whole percentage (``"-"`` for ``None``)."""
    return "-" if value is None else f"{100 * value:.0f}%"


def _published(row: ReportRow) -> str:
    """The published top-1 of a row, marked where an int8 file borrows the float model's figure."""
    if row.published_top1 is None:
        return "-"
    borrowed = row.precision == "int8" and row.published_for == "float"
    return f"{100 * row.published_top1:.1f}%" + (" (float)" if borrowed else "")


def table_rows(report: ZooReport) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the report table.

    Args:
        report: A zoo report.

    Returns:
        ``(header, rows)``, every cell a string.
    """
    images = report.rows[0].images if report.rows else 0
    header = ["model", "precision", "size (MB)",
              *[f"{c} thread{'s' if c > 1 else ''} (ms)" for c in report.threads],
              "ImageNet top-1 (published)", f"top-1 ({images} img)", f"top-5 ({images} img)",
              "agrees with float32", "Pareto"]
    rows = [[r.model, r.precision, f"{r.size_mb:.1f}", *[f"{r.latency_ms[c]:.1f}" for c in report.threads],
             _published(r), percent(r.top1), percent(r.top5), percent(r.agreement), "yes" if r.pareto else ""]
            for r in report.rows]
    return header, rows


def to_markdown(report: ZooReport) -> str:
    """A Markdown table of the report."""
    header, rows = table_rows(report)
    right = {i for i, h in enumerate(header) if i >= 2}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_csv(report: ZooReport) -> str:
    """CSV text of the report (numbers unrounded)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["model", "precision", "size_mb", *[f"latency_ms_{c}_threads" for c in report.threads],
                     "published_top1", "published_top5", "published_for", "top1", "top5", "images",
                     "agreement_with_float32", "pareto", "path"])
    for r in report.rows:
        latencies = [f"{r.latency_ms[c]:.4f}" for c in report.threads]
        published = ["" if v is None else f"{v:.4f}" for v in (r.published_top1, r.published_top5)]
        writer.writerow([r.model, r.precision, f"{r.size_mb:.4f}", *latencies, *published,
                         r.published_for or "", f"{r.top1:.4f}", f"{r.top5:.4f}", r.images,
                         "" if r.agreement is None else f"{r.agreement:.4f}", int(r.pareto), r.path])
    return out.getvalue()


def plot_report(report: ZooReport, out: str | os.PathLike, threads: int | None = None) -> Path:
    """Accuracy (top-1) against latency at ``threads`` (default: the most measured), front marked."""
    from litecls.evaluation.plots import plot_pareto

    count = threads or report.threads[-1]
    pareto_flags(report.rows, count, report.rank_by)
    published = report.rank_by == "published"
    points = [{"name": r.name, "x": r.latency_ms[count],
               "y": 100 * r.accuracy_key(report.rank_by)[0], "pareto": r.pareto}
              for r in report.rows if not published or r.published_top1 is not None]
    cpu = report.machine.get("cpu_model", "this machine")
    y_label = ("published ImageNet top-1, %" if published else
               f"top-1 accuracy on {report.rows[0].images if report.rows else 0} images, %")
    return plot_pareto(points, out, x_label=f"latency p50 at {count} thread(s), ms (lower is better)",
                       y_label=y_label, title=f"litecls zoo on {cpu}: accuracy vs latency")
