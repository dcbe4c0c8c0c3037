"""``litecls bulk classify|embed``: a folder, bucket or list of photos through Ray Data into Parquet."""

from __future__ import annotations

import argparse
import sys

from litecls.cli.common import resolve_cli_model


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE",
                   help="a folder, a glob ('photos/**/*.jpg'), a text file of paths, or a Parquet/CSV file "
                        "with a path column; local or any URI pyarrow reads (s3://, gs://, hdfs://)")
    p.add_argument("--output", "-o", required=True, metavar="OUT",
                   help="output folder of Parquet parts; a rerun skips the inputs already in it")
    p.add_argument("--model", "-m", default="efficientnet_lite0",
                   help="a .tflite file or a zoo model NAME[:PRECISION] (default: efficientnet_lite0, int8)")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="run on this Ray cluster, from one of its nodes (default: start a local Ray on this "
                        "machine's cores); Ray Data does not run over Ray Client (ray://)")
    p.add_argument("--path-column", default="path", help="the path column of a Parquet/CSV SOURCE")
    p.add_argument("--actors", type=int, help="interpreters in the pool (default: one per CPU)")
    p.add_argument("--batch-size", type=int, default=8, help="images per invoke (default 8)")
    p.add_argument("--part-rows", type=int, default=1000, help="rows per Parquet part at most (default 1000)")
    p.add_argument("--cache-dir", help="zoo model cache (default: $LITECLS_CACHE or XDG cache)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also show Ray's log lines and Ray Data's progress bars")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``bulk`` command and its ``classify`` and ``embed`` sub-commands."""
    p = commands.add_parser("bulk", help="classify or embed many images on Ray (local or a cluster) "
                                         "into Parquet (extra litecls[ray])")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    classify = tasks.add_parser("classify", help="top-k categories of every image into Parquet")
    _add_common(classify)
    classify.add_argument("--max-results", "-k", type=int, default=5, help="categories per image (default 5)")
    classify.set_defaults(func=cmd_bulk)
    embed = tasks.add_parser("embed", help="an embedding vector of every image into Parquet")
    _add_common(embed)
    embed.add_argument("--l2-normalize", action="store_true", help="divide each vector by its L2 norm")
    embed.set_defaults(func=cmd_bulk)


def _adapter(args: argparse.Namespace, model: str):
    """The task adapter for ``args.task``."""
    from litecls.bulk.adapters import ClassifyAdapter, EmbedAdapter

    if args.task == "classify":
        from litecls.tasks import ImageClassifierOptions

        return ClassifyAdapter(ImageClassifierOptions(model_path=model, max_results=args.max_results,
                                                      num_threads=1, cache_dir=args.cache_dir))
    from litecls.tasks import ImageEmbedderOptions  # type: ignore[attr-defined]

    return EmbedAdapter(ImageEmbedderOptions(model_path=model, num_threads=1, cache_dir=args.cache_dir,
                                             l2_normalize=args.l2_normalize or None))


def cmd_bulk(args: argparse.Namespace) -> int:
    """Run the job; 0 when every input has its row (error rows included), 2 for a usage error."""
    from litecls.bulk.cluster import connect, terminal_kept_quiet
    from litecls.bulk.job import check_model, run_job
    from litecls.bulk.pipeline import PipelineSettings
    from litecls.extras import require_extra

    require_extra("ray", f"litecls bulk {args.task}")  # before a zoo model is built for nothing
    for name in ("actors", "batch_size", "part_rows"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"litecls: error: --{name.replace('_', '-')} must be at least 1, got {value}",
                  file=sys.stderr)
            return 2
    model = resolve_cli_model(args.model, args.cache_dir) if args.task == "classify" else args.model
    adapter = _adapter(args, model)  # a missing or unreadable model fails here, before Ray starts
    check_model(adapter)
    with terminal_kept_quiet(args.verbose) as terminal:
        where = connect(args.address, args.verbose)
        print(f"{_stamp()} bulk {args.task} on {where}: {args.source} -> {args.output}", file=terminal)
        settings = PipelineSettings(invoke_batch=args.batch_size, actors=args.actors)
        summary = run_job(args.source, args.output, adapter, settings, path_column=args.path_column,
                          part_rows=args.part_rows, progress=terminal)
        skipped = f"; {summary.skipped} done before, skipped" if summary.skipped else ""
        print(f"{summary.written} of {summary.inputs} files written in {summary.seconds:.1f} s "
              f"({summary.images_per_second:.1f}/s), {summary.errors} with errors{skipped}; "
              f"output: {args.output}", file=terminal)
    return 0


def _stamp() -> str:
    import time

    return f"[{time.strftime('%H:%M:%S')}]"
