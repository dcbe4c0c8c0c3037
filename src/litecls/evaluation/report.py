"""The zoo on this machine: size, latency, accuracy and int8-vs-float agreement of every model file,
the Pareto front of accuracy against latency, and the most accurate model within a latency budget.

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

    @property
    def name(self) -> str:
        """``model:precision``."""
        return f"{self.model}:{self.precision}"


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
        rows.append(ReportRow(**row))
    return ZooReport(rows=rows, threads=[int(t) for t in data["threads"]], data=data["data"],
                     runs=data["runs"], warmup=data["warmup"], machine=data["machine"],
                     notes=data.get("notes", []))


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


def pareto_flags(rows: Sequence[ReportRow], threads: int) -> None:
    """Mark rows that no other row beats on both latency (at ``threads``) and top-1 (ties: top-5)."""
    for row in rows:
        mine = (row.latency_ms[threads], -row.top1, -row.top5)
        row.pareto = not any(
            other is not row and all(a <= b for a, b in zip(o, mine, strict=True)) and o != mine
            for other in rows
            for o in [(other.latency_ms[threads], -other.top1, -other.top5)])


def _agreement(result: EvaluationResult, reference: EvaluationResult) -> float | None:
    ref = {p.path: p.top[0] for p in reference.predictions}
    shared = [p for p in result.predictions if p.path in ref]
    return sum(p.top[0] == ref[p.path] for p in shared) / len(shared) if shared else None


def build_report(models: Sequence[str], precisions: Sequence[str], dataset: LabelledSet,
                 cache_dir: str | os.PathLike | None = None, threads: Sequence[int] | None = None,
                 warmup: int = 5, runs: int = 30, progress: Progress | None = None) -> ZooReport:
    """Build (if needed), time and evaluate every ``model`` x ``precision`` of the zoo.

    Args:
        models: zoo model names.
        precisions: precisions of each (float32 is built anyway: the agreement reference).
        dataset: the labelled images for accuracy and agreement.
        cache_dir: the zoo cache.
        threads: thread counts to time (default: 1 up to the usable cores).
        warmup: untimed runs first.
        runs: timed runs per file and thread count.
        progress: receives one line per step.

    Returns:
        The report, Pareto front marked.

    Raises:
        ExportError: a build that fails.
        LabelsError: no dataset label names a model class.
    """
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
                agreement=None if precision == "float32" else _agreement(result, reference)))
    pareto_flags(rows, counts[-1])
    notes = []
    if rows and rows[0].images < 200:
        notes.append(f"accuracy on {rows[0].images} images moves in steps of {100 / rows[0].images:.0f} "
                     f"points: treat small differences as ties")
    return ZooReport(rows=rows, threads=counts, data=dataset.source, runs=runs, warmup=warmup,
                     machine=machine_info().to_dict(), notes=notes)


# -- output ------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table_rows(report: ZooReport) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the report table."""
    header = ["model", "precision", "size (MB)",
              *[f"{c} thread{'s' if c > 1 else ''} (ms)" for c in report.threads],
              "top-1", "top-5", "agrees with float32", "Pareto"]
    rows = [[r.model, r.precision, f"{r.size_mb:.1f}", *[f"{r.latency_ms[c]:.1f}" for c in report.threads],
             _pct(r.top1), _pct(r.top5), _pct(r.agreement), "yes" if r.pareto else ""]
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
                     "top1", "top5", "images", "agreement_with_float32", "pareto", "path"])
    for r in report.rows:
        latencies = [f"{r.latency_ms[c]:.4f}" for c in report.threads]
        writer.writerow([r.model, r.precision, f"{r.size_mb:.4f}", *latencies,
                         f"{r.top1:.4f}", f"{r.top5:.4f}", r.images,
                         "" if r.agreement is None else f"{r.agreement:.4f}", int(r.pareto), r.path])
    return out.getvalue()


def plot_report(report: ZooReport, out: str | os.PathLike, threads: int | None = None) -> Path:
    """Accuracy (top-1) against latency at ``threads`` (default: the most measured), front marked."""
    from litecls.evaluation.plots import plot_pareto

    count = threads or report.threads[-1]
    pareto_flags(report.rows, count)
    points = [{"name": r.name, "x": r.latency_ms[count], "y": 100 * r.top1, "pareto": r.pareto}
              for r in report.rows]
    cpu = report.machine.get("cpu_model", "this machine")
    return plot_pareto(points, out, x_label=f"latency p50 at {count} thread(s), ms (lower is better)",
                       y_label=f"top-1 accuracy on {report.rows[0].images if report.rows else 0} images, %",
                       title=f"litecls zoo on {cpu}: accuracy vs latency ({report.data})")


# -- choice ------------------------------------------------------------------------------------------


@dataclass
class Choice:
    """The model picked for a budget, or ``None``, and the reasons."""

    row: ReportRow | None
    reasons: list[str]


def choose(report: ZooReport, budget_ms: float, max_size_mb: float | None = None,
           threads: int | None = None) -> Choice:
    """The most accurate file whose p50 latency at ``threads`` is within ``budget_ms`` (and size limit).

    Ties on top-1 go to the better top-5, then the faster, then the smaller file.
    """
    if budget_ms <= 0:
        raise ValueError(f"the latency budget must be positive, got {budget_ms} ms")
    if max_size_mb is not None and max_size_mb <= 0:
        raise ValueError(f"the size limit must be positive, got {max_size_mb} MB")
    count = threads or report.threads[-1]
    if count not in report.threads:
        raise ValueError(f"the report has latencies at {report.threads} thread(s), not {count}")
    fits, reasons = [], []
    for row in report.rows:
        ms = row.latency_ms[count]
        if ms > budget_ms:
            reasons.append(f"{row.name}: too slow, {ms:.1f} ms > {budget_ms:g} ms")
        elif max_size_mb is not None and row.size_mb > max_size_mb:
            reasons.append(f"{row.name}: too big, {row.size_mb:.1f} MB > {max_size_mb:g} MB")
        else:
            fits.append(row)
    if not fits:
        fastest = min(report.rows, key=lambda r: r.latency_ms[count])
        return Choice(None, [f"no model meets {budget_ms:g} ms at {count} thread(s)"
                             + (f" and {max_size_mb:g} MB" if max_size_mb else "")
                             + f"; the fastest is {fastest.name} at {fastest.latency_ms[count]:.1f} ms",
                             *reasons])
    fits.sort(key=lambda r: (-r.top1, -r.top5, r.latency_ms[count], r.size_mb))
    best = fits[0]
    why = [f"{best.name}: top-1 {_pct(best.top1)}, top-5 {_pct(best.top5)} on {best.images} images, "
           f"{best.latency_ms[count]:.1f} ms p50 at {count} thread(s) (budget {budget_ms:g} ms, "
           f"{100 * best.latency_ms[count] / budget_ms:.0f}% of it), {best.size_mb:.1f} MB"
           + (f" (limit {max_size_mb:g} MB)" if max_size_mb else ""),
           f"the most accurate of the {len(fits)} file(s) that fit; ties go to top-5, then speed, then size"]
    for row in fits[1:]:
        if (row.top1, row.top5) == (best.top1, best.top5):
            why.append(f"{row.name}: as accurate, but {row.latency_ms[count]:.1f} ms / {row.size_mb:.1f} MB")
        else:
            why.append(f"{row.name}: fits, less accurate (top-1 {_pct(row.top1)}, top-5 {_pct(row.top5)})")
    return Choice(best, why + reasons + report.notes)
