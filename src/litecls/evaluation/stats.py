"""Latency statistics in the shape TFLite's ``benchmark_model`` reports them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds over ``runs`` timed runs.

    Attributes:
        runs: timed runs.
        mean_ms: mean time.
        std_ms: standard deviation.
        min_ms: fastest run.
        max_ms: slowest run.
        p50_ms: median.
        p90_ms: 90th percentile.
        p99_ms: 99th percentile.
        throughput_per_s: runs per second at the mean.
    """

    runs: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput_per_s: float

    def to_dict(self) -> dict:
        """JSON-ready dict, rounded to microseconds.

        Returns:
            The fields by name.
        """
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def line(self) -> str:
        """One line of text.

        Returns:
            ``p50 12.3 ms (mean 12.5 ± 0.4, min 11.9, p90 13.1, p99 14.0), 80.1/s``.
        """
        return (f"p50 {self.p50_ms:.2f} ms (mean {self.mean_ms:.2f} ± {self.std_ms:.2f}, "
                f"min {self.min_ms:.2f}, p90 {self.p90_ms:.2f}, p99 {self.p99_ms:.2f}), "
                f"{self.throughput_per_s:.1f}/s")


def summarize(times_ms: Sequence[float]) -> LatencyStats:
    """Statistics of a list of run times in milliseconds.

    Args:
        times_ms: at least one run time.

    Returns:
        Mean, spread, percentiles and throughput.

    Raises:
        ValueError: no times.
    """
    if len(times_ms) == 0:
        raise ValueError("no timings to summarise")
    t = np.asarray(times_ms, dtype=np.float64)
    # Linear interpolation between order statistics (numpy's default), so
    # p50 <= p90 <= p99 holds for any sample.
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    mean = float(t.mean())
    return LatencyStats(runs=int(t.size), mean_ms=mean, std_ms=float(t.std()), min_ms=float(t.min()),
                        max_ms=float(t.max()), p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99),
                        throughput_per_s=1000.0 / mean if mean > 0 else float("inf"))
