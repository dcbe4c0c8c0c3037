"""The choice: the most accurate zoo file within a latency budget (and a size limit), with reasons.

"Most accurate" follows the report's ranking (:data:`litecls.evaluation.report.RANKINGS`): the
published ImageNet figures by default, or the user's own labelled data.
"""

from __future__ import annotations

from dataclasses import dataclass

from litecls.evaluation.report import ReportRow, ZooReport, percent, ranking_text


@dataclass
class Choice:
    """The model picked for a budget, or ``None``, and the reasons."""

    row: ReportRow | None
    reasons: list[str]


def _accuracy_text(row: ReportRow, rank_by: str, source: bool = False) -> str:
    """How accurate a row is, in the words of the ranking (the measured figures as a sanity check)."""
    measured = f"top-1 {percent(row.top1)}, top-5 {percent(row.top5)} on {row.images} images"
    if rank_by == "data":
        return measured
    if row.published_top1 is None:
        return f"no published ImageNet top-1; {measured}"
    agreement = "" if row.agreement is None else f", agrees with float32 on {percent(row.agreement)}"
    where = f", {row.published_source}" if source else ""
    return (f"published ImageNet top-1 {100 * row.published_top1:.1f}% ({row.published_for} model{where})"
            f"{agreement}; sanity check: {measured}")


def choose(report: ZooReport, budget_ms: float, max_size_mb: float | None = None,
           threads: int | None = None) -> Choice:
    """The most accurate file whose p50 latency at ``threads`` is within ``budget_ms`` (and size limit).

    "Accurate" follows ``report.rank_by`` (:meth:`ReportRow.accuracy_key`); ties go to the faster,
    then the smaller file.

    Args:
        report: A zoo report (measured here, or read back with :func:`load_report`).
        budget_ms: The p50 latency budget in milliseconds.
        max_size_mb: The largest acceptable file, in MB (``None``: no limit).
        threads: The thread count whose latency counts (default: the most the report measured).

    Returns:
        The choice (``row`` is ``None`` when nothing fits) and the reasons, one line each.

    Raises:
        ValueError: a non-positive budget or size limit, or a thread count the report lacks.
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
    rank = report.rank_by

    def key(row: ReportRow) -> tuple[float, ...]:
        first, second = row.accuracy_key(rank)
        return -first, -second, row.latency_ms[count], row.size_mb

    fits.sort(key=key)
    best = fits[0]
    ms = best.latency_ms[count]
    why = [f"{best.name}: {_accuracy_text(best, rank, source=True)}; {ms:.1f} ms p50 at {count} thread(s) "
           f"(budget {budget_ms:g} ms, {100 * ms / budget_ms:.0f}% of it), {best.size_mb:.1f} MB"
           + (f" (limit {max_size_mb:g} MB)" if max_size_mb else ""),
           f"the most accurate of the {len(fits)} file(s) that fit, {ranking_text(report)}; "
           "ties go to speed, then size"]
    for row in fits[1:]:
        if row.accuracy_key(rank) == best.accuracy_key(rank):
            why.append(f"{row.name}: as accurate, but {row.latency_ms[count]:.1f} ms / {row.size_mb:.1f} MB")
        else:
            why.append(f"{row.name}: fits, less accurate ({_accuracy_text(row, rank)})")
    return Choice(best, why + reasons + (report.notes if rank == "data" else []))
