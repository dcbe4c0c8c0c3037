"""``litecls benchmark MODEL``: latency on this machine, like TFLite's ``benchmark_model``."""

from __future__ import annotations

import argparse
import json

from litecls.evaluation.benchmark import DEFAULT_RUNS, DEFAULT_WARMUP


def _threads(text: str) -> list[int]:
    from litecls.evaluation.benchmark import parse_threads

    try:
        return parse_threads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value
    return parse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``benchmark`` command."""
    p = commands.add_parser(
        "benchmark", help="latency of a .tflite model on this machine (like benchmark_model)",
        description="Init time, first inference, warm-up, then N timed runs (mean, std, min, p50, p90, "
                    "p99, throughput) of invoke() on a ready tensor, for each thread count (interleaved).")
    p.add_argument("model", help="a .tflite file or a zoo model NAME[:PRECISION]")
    p.add_argument("--threads", "-t", type=_threads, default=[1], metavar="N[,N...]",
                   help="thread counts to compare in one run, e.g. 1,2,4 (default 1)")
    p.add_argument("--warmup", type=_count(0), default=DEFAULT_WARMUP,
                   help=f"warm-up runs per thread count (default {DEFAULT_WARMUP})")
    p.add_argument("--runs", "-n", type=_count(1), default=DEFAULT_RUNS,
                   help=f"timed runs per thread count (default {DEFAULT_RUNS})")
    p.add_argument("--end-to-end", nargs="+", metavar="IMAGE_OR_DIR",
                   help="also time decode + preprocess + invoke + postprocess on these images")
    p.add_argument("--ops", action="store_true",
                   help="per-op profile: each op timed alone, and the ops XNNPACK does not run")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark and print the figures."""
    from litecls.cli.common import resolve_cli_model
    from litecls.errors import DatasetError
    from litecls.evaluation.benchmark import benchmark_model, format_benchmark
    from litecls.evaluation.dataset import image_files
    from litecls.progress import stamped

    images = None
    if args.end_to_end:
        images = image_files(args.end_to_end)
        if not images:
            raise DatasetError(f"--end-to-end: no images in {' '.join(args.end_to_end)}")
    model = resolve_cli_model(args.model, args.cache_dir)
    result = benchmark_model(model, threads=args.threads, warmup=args.warmup, runs=args.runs, images=images,
                             ops=args.ops, cache_dir=args.cache_dir, progress=stamped)
    print(json.dumps(result.to_dict(), indent=1) if args.json else format_benchmark(result))
    return 0
