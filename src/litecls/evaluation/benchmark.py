"""Latency of a .tflite model on this machine, the way TFLite's ``benchmark_model`` measures it.

For each thread count: the init time (read the file, build the interpreter
with XNNPACK applied, allocate tensors), the first inference (XNNPACK sets up
its workspace there), warm-up runs, then N timed runs of ``invoke()`` on a
ready random input tensor. Optionally the same for the whole path on real
images (decode, resize, normalise, invoke, rank) through
:class:`~litecls.tasks.ImageClassifier`.

Thread counts are timed *interleaved* (a few runs of each in turn), so a
burst of load from another process hits every setting alike instead of
skewing whichever ran at that moment.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litecls.evaluation.machine import MachineInfo, machine_info, peak_rss_mb, reset_peak_rss, rss_mb
from litecls.evaluation.ops import DelegationReport, analyse_delegation, profile_ops
from litecls.evaluation.stats import LatencyStats, summarize
from litecls.runtime.interpreter import interpreter_from_bytes, read_model_bytes

DEFAULT_WARMUP = 10
DEFAULT_RUNS = 50
#: Runs of one setting before switching to the next when interleaving.
CHUNK = 5

Progress = Callable[[str], None]


@dataclass
class ThreadResult:
    """Figures for one thread count."""

    threads: int
    init_ms: float
    first_inference_ms: float
    warmup: LatencyStats | None
    latency: LatencyStats
    end_to_end: LatencyStats | None = None
    #: Median of the interpreter's share of the end-to-end runs.
    end_to_end_invoke_p50_ms: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"threads": self.threads, "init_ms": round(self.init_ms, 3),
                "first_inference_ms": round(self.first_inference_ms, 3),
                "warmup": self.warmup.to_dict() if self.warmup else None,
                "latency": self.latency.to_dict(),
                "end_to_end": self.end_to_end.to_dict() if self.end_to_end else None,
                "end_to_end_invoke_p50_ms": (round(self.end_to_end_invoke_p50_ms, 4)
                                             if self.end_to_end_invoke_p50_ms is not None else None)}


@dataclass
class BenchmarkResult:
    """Everything :func:`benchmark_model` measured, with the machine it ran on.

    Attributes:
        model: the file measured.
        file_size_bytes: its size.
        input: the input tensor (shape, dtype, quantization).
        output: the score output tensor.
        warmup_runs: untimed runs before each thread count.
        runs: timed runs per thread count.
        results: one :class:`ThreadResult` per thread count.
        machine: what it ran on.
        rss_before_mb: the process's resident memory before loading, if known.
        peak_rss_mb: peak resident memory while loading and running one interpreter.
        peak_rss_since_start: True when the peak could not be reset (it includes earlier work).
        delegation: which ops XNNPACK runs.
        end_to_end_images: images timed end to end (0: none).
        ops: the per-op profile, when asked for.
        notes: caveats worth printing with the figures.
    """

    model: str
    file_size_bytes: int
    input: dict
    output: dict
    warmup_runs: int
    runs: int
    results: list[ThreadResult]
    machine: MachineInfo
    rss_before_mb: float | None
    #: Process peak RSS while loading and running one interpreter (the first thread count).
    peak_rss_mb: float
    peak_rss_since_start: bool  #: True when the peak could not be reset (includes earlier work)
    delegation: DelegationReport
    end_to_end_images: int = 0
    ops: DelegationReport | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def file_size_mb(self) -> float:
        """File size in MB (10^6 bytes)."""
        return self.file_size_bytes / 1e6

    @property
    def model_memory_mb(self) -> float | None:
        """Peak RSS growth caused by loading and running the model."""
        if self.rss_before_mb is None or self.peak_rss_since_start:
            return None
        return max(0.0, self.peak_rss_mb - self.rss_before_mb)

    def for_threads(self, threads: int) -> ThreadResult:
        """The result for one thread count.

        Args:
            threads: a thread count that was measured.

        Returns:
            Its :class:`ThreadResult`.

        Raises:
            KeyError: that count was not measured.
        """
        for result in self.results:
            if result.threads == threads:
                return result
        raise KeyError(f"no result for {threads} threads")

    def to_dict(self) -> dict:
        """JSON-ready dict (the ``--json`` output).

        Returns:
            Plain types only.
        """
        delegation = self.delegation
        return {
            "model": self.model, "file_size_bytes": self.file_size_bytes,
            "file_size_mb": round(self.file_size_mb, 3), "input": self.input, "output": self.output,
            "warmup_runs": self.warmup_runs, "runs": self.runs,
            "results": [r.to_dict() for r in self.results],
            "memory": {"rss_before_mb": _round(self.rss_before_mb), "peak_rss_mb": _round(self.peak_rss_mb),
                       "model_mb": _round(self.model_memory_mb),
                       "peak_includes_earlier_work": self.peak_rss_since_start},
            "delegation": {"xnnpack_subgraphs": delegation.partitions,
                           "fully_delegated": delegation.fully_delegated,
                           "ops": len(delegation.ops),
                           "not_delegated": [f"{op.op}#{op.index}" for op in delegation.not_delegated]},
            "end_to_end_images": self.end_to_end_images,
            "ops": self.ops.to_dict() if self.ops else None,
            "machine": self.machine.to_dict(), "notes": self.notes,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def parse_threads(text: str | Sequence[int]) -> list[int]:
    """``"1,2,4"`` (or a list) -> ``[1, 2, 4]``.

    Args:
        text: comma-separated counts, or a sequence of ints.

    Returns:
        The thread counts, in the order given.

    Raises:
        ValueError: empty, or not all positive integers.
    """
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"thread counts must be positive integers separated by commas, "
                             f"got {text!r}") from None
    else:
        values = list(text)
    if not values:
        raise ValueError("give at least one thread count")
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise ValueError(f"thread counts must be positive integers (1 or more), got {bad[0]!r}")
    return list(dict.fromkeys(values))  # drop repeats, keep order


def random_inputs(interpreter, seed: int = 0) -> None:
    """Fill every input with seeded random values of its dtype, as ``benchmark_model`` does."""
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = tuple(int(d) for d in detail["shape"])
        if dtype.kind == "f":
            value = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def interleaved(runners: Sequence[Callable[[], object]], runs: int, chunk: int = CHUNK) -> list[list[float]]:
    """Time each runner ``runs`` times, ``chunk`` runs of one before the next; ms per run."""
    times: list[list[float]] = [[] for _ in runners]
    while any(len(t) < runs for t in times):
        for runner, samples in zip(runners, times, strict=True):
            for _ in range(min(chunk, runs - len(samples))):
                samples.append(_timed(runner))
    return times


def _tensor_info(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {"name": str(detail["name"]), "shape": [int(d) for d in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}


def _resolve(model: str | os.PathLike, cache_dir: str | os.PathLike | None) -> Path:
    from litecls.tasks.image_classifier import resolve_model

    return resolve_model(model, cache_dir)[0]


def benchmark_model(model: str | os.PathLike, threads: Sequence[int] | str = (1,),
                    warmup: int = DEFAULT_WARMUP, runs: int = DEFAULT_RUNS,
                    images: Sequence[str | os.PathLike] | None = None, ops: bool = False,
                    cache_dir: str | os.PathLike | None = None,
                    progress: Progress | None = None) -> BenchmarkResult:
    """Benchmark ``model`` (a .tflite path or a zoo name) at each thread count.

    Args:
        model: a .tflite path or a zoo ``NAME[:PRECISION]`` (built into the cache).
        threads: thread counts, a sequence or ``"1,2,4"``.
        warmup: untimed runs before each count.
        runs: timed runs per count.
        images: files for the end-to-end timing (one per run, cycling).
        ops: add the per-op profile at the first thread count.
        cache_dir: the zoo cache.
        progress: receives one line per step.

    Returns:
        Latency per thread count, memory, delegation and the machine.

    Raises:
        ValueError: negative warm-up or fewer than one run, or bad thread counts.
        ModelFileError: the file is not a loadable TFLite model.
    """
    say = progress or (lambda _msg: None)
    counts = parse_threads(threads)
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warm-up runs must be 0 or more, got {warmup!r}")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be 1 or more, got {runs!r}")
    path = _resolve(model, cache_dir)
    image_list = [Path(p) for p in images] if images else []

    rss_before = rss_mb()
    reset_ok = reset_peak_rss()
    interpreters, inits, firsts, warmups = [], [], [], []
    peak = 0.0
    for i, count in enumerate(counts):
        start = time.perf_counter()
        data, name = read_model_bytes(path)
        interpreter = interpreter_from_bytes(data, name, count)
        inits.append((time.perf_counter() - start) * 1000)
        random_inputs(interpreter)
        firsts.append(_timed(interpreter.invoke))
        warm = [_timed(interpreter.invoke) for _ in range(warmup)]
        warmups.append(summarize(warm) if warm else None)
        interpreters.append(interpreter)
        if i == 0:
            peak = peak_rss_mb()
        say(f"{count} thread(s): init {inits[-1]:.1f} ms, first inference {firsts[-1]:.1f} ms")
    delegation = analyse_delegation(interpreters[0], str(path), counts[0])
    inp, out = interpreters[0].get_input_details()[0], interpreters[0].get_output_details()[0]
    say(f"timing {runs} runs at {', '.join(map(str, counts))} thread(s), interleaved")
    tensor_times = interleaved([it.invoke for it in interpreters], runs)
    results = [ThreadResult(threads=c, init_ms=init, first_inference_ms=first, warmup=warm,
                            latency=summarize(times))
               for c, init, first, warm, times in zip(counts, inits, firsts, warmups, tensor_times,
                                                      strict=True)]
    del interpreters

    notes: list[str] = []
    if image_list:
        _end_to_end(path, counts, image_list, warmup, runs, results, say)
    cores = machine_info().usable_cores
    if max(counts) > cores:
        notes.append(f"{max(counts)} threads on {cores} usable cores: threads share cores, "
                     "so figures above that count measure oversubscription")
    profile = None
    if ops:
        say(f"profiling each op alone at {counts[0]} thread(s)")
        profile = profile_ops(path, counts[0], warmup=min(max(warmup, 1), 5), runs=max(5, min(runs, 30)))
    return BenchmarkResult(
        model=str(path), file_size_bytes=path.stat().st_size, input=_tensor_info(inp),
        output=_tensor_info(out), warmup_runs=warmup, runs=runs, results=results, machine=machine_info(),
        rss_before_mb=rss_before, peak_rss_mb=peak, peak_rss_since_start=not reset_ok,
        delegation=delegation, end_to_end_images=len(image_list), ops=profile, notes=notes)


def _end_to_end(path: Path, counts: list[int], images: list[Path], warmup: int, runs: int,
                results: list[ThreadResult], say: Progress) -> None:
    """Time ``classify(path)`` (decode, preprocess, invoke, rank) per thread count, interleaved."""
    from litecls.tasks import ImageClassifier, ImageClassifierOptions

    classifiers = [ImageClassifier.create_from_options(ImageClassifierOptions(model_path=path, num_threads=c))
                   for c in counts]
    invoke_ms: list[list[float]] = [[] for _ in counts]
    try:
        def runner(k: int) -> Callable[[], object]:
            position = itertools.count()

            def run() -> None:
                result = classifiers[k].classify(images[next(position) % len(images)])
                invoke_ms[k].append(result.inference_ms)
            return run

        runners = [runner(k) for k in range(len(counts))]
        say(f"end to end on {len(images)} image(s): warm-up")
        for run in runners:  # each image once, so files are in the page cache and decoders warm
            for _ in range(max(min(warmup, len(images)), 1)):
                run()
        for samples in invoke_ms:
            samples.clear()
        say(f"end to end: timing {runs} runs per thread count")
        times = interleaved(runners, runs)
    finally:
        for classifier in classifiers:
            classifier.close()
    for result, samples, invokes in zip(results, times, invoke_ms, strict=True):
        result.end_to_end = summarize(samples)
        result.end_to_end_invoke_p50_ms = float(np.median(invokes))


def format_benchmark(result: BenchmarkResult) -> str:
    """The human-readable report of a benchmark."""
    inp, out = result.input, result.output
    lines = [f"model: {result.model}",
             f"file size: {result.file_size_mb:.2f} MB; input {inp['dtype']} {inp['shape']}, "
             f"output {out['dtype']} {out['shape']}",
             f"machine: {result.machine.summary()}"]
    d = result.delegation
    left_out = ", ".join(f"{o.op}#{o.index}" for o in d.not_delegated) or "several subgraphs"
    verdict = "all ops delegated" if d.fully_delegated else f"NOT fully delegated: {left_out}"
    lines.append(f"XNNPACK: {d.partitions} subgraph(s) for {len(d.ops)} ops; {verdict}")
    memory = f"memory: peak RSS {result.peak_rss_mb:.1f} MB"
    if result.model_memory_mb is not None:
        memory += f" ({result.model_memory_mb:.1f} MB above the {result.rss_before_mb:.1f} MB before loading)"
    elif result.peak_rss_since_start:
        memory += " (process peak since start; could not reset)"
    lines.append(memory)
    lines.append(f"warm-up runs: {result.warmup_runs}, timed runs: {result.runs}")
    for r in result.results:
        lines.append(f"\n{r.threads} thread(s)")
        lines.append(f"  init {r.init_ms:.1f} ms, first inference {r.first_inference_ms:.2f} ms"
                     + (f", warm-up mean {r.warmup.mean_ms:.2f} ms" if r.warmup else ""))
        lines.append(f"  invoke     {r.latency.line()}")
        if r.end_to_end is not None:
            lines.append(f"  end to end {r.end_to_end.line()}")
            lines.append(f"             of which invoke p50 {r.end_to_end_invoke_p50_ms:.2f} ms "
                         f"(decode, resize and ranking: the rest), {result.end_to_end_images} image(s)")
    lines.extend(f"note: {n}" for n in result.notes)
    if result.ops is not None:
        from litecls.evaluation.ops import format_profile

        lines.append("")
        lines.append(format_profile(result.ops))
    return "\n".join(lines)
