"""``litecls models list | build | info | report | choose``: the zoo from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from litecls.models.registry import PRECISIONS


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``models`` command group."""
    models = commands.add_parser("models", help="list, build and inspect zoo models")
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="table of every model x precision")
    listing.add_argument("--cache-dir", help="model cache (default: $LITECLS_CACHE or XDG cache)")
    listing.set_defaults(func=cmd_list)

    build = sub.add_parser("build", help="convert a zoo model to .tflite (cached)")
    build.add_argument("names", nargs="+", metavar="NAME", help="model name(s), or 'all'")
    build.add_argument("--precision", "-p", default="int8", choices=[*PRECISIONS, "all"])
    build.add_argument("--cache-dir", help="where to write (default: $LITECLS_CACHE or XDG cache)")
    build.add_argument("--task", default="classifier", choices=("classifier", "embedding", "all"),
                       help="the classifier, its image embedder (NAME-embedding-PRECISION.tflite), or both")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.add_argument("--verbose", "-v", action="store_true",
                       help="also show what the converters and the quantizer print")
    build.set_defaults(func=cmd_build)

    info = sub.add_parser("info", help="print a .tflite's metadata and tensors")
    info.add_argument("model", help="a .tflite file or a zoo name (NAME[:PRECISION])")
    info.add_argument("--cache-dir")
    info.set_defaults(func=cmd_info)

    report = sub.add_parser("report", help="size, latency, accuracy of every model x precision here",
                            description="Builds what is missing, times every file at 1 and all threads "
                                        "(interleaved), evaluates each on labelled images (default: the "
                                        "20 labelled ImageNet sample photos) and marks the Pareto front.")
    _measure_options(report)
    report.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    report.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    report.add_argument("--json", metavar="FILE", help="also write JSON (for choose --report)")
    report.add_argument("--plot", metavar="PNG", help="accuracy-vs-latency scatter with the Pareto front")
    report.set_defaults(func=cmd_report)

    choose = sub.add_parser("choose", help="the most accurate zoo model within a latency budget here")
    choose.add_argument("--budget-ms", type=float, required=True, help="p50 latency budget in ms")
    choose.add_argument("--max-size-mb", type=float, help="largest acceptable file size in MB")
    choose.add_argument("--threads", type=int, help="judge latency at this thread count "
                                                   "(default: all usable cores)")
    choose.add_argument("--report", metavar="JSON", help="use a 'models report --json' file instead of "
                                                         "measuring now")
    _measure_options(choose)
    choose.set_defaults(func=cmd_choose)


def _measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", help="comma-separated model names (default: every zoo model)")
    p.add_argument("--precisions", "-p", default=",".join(PRECISIONS),
                   help=f"comma-separated precisions (default: {','.join(PRECISIONS)})")
    p.add_argument("--data", help="labelled folder or path,label file (default: the sample photos)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per file and thread count (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up runs (default 5)")
    p.add_argument("--cache-dir", help="model cache (default: $LITECLS_CACHE or XDG cache)")


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    """Print every zoo model with size, parameters, MACs and built file sizes."""
    from litecls.models import create_model, get_config, list_models
    from litecls.models.complexity import count_params_and_macs
    from litecls.models.zoo import built_path, cached_file

    header = ["model", "input", "params (M)", "MACs (M)", *[f"{p} (MB)" for p in PRECISIONS]]
    rows = []
    for name in list_models():
        config = get_config(name)
        params, macs = count_params_and_macs(create_model(name, pretrained=False),
                                             (config.input_size, config.input_size))
        sizes = []
        for precision in PRECISIONS:
            path = built_path(name, precision, args.cache_dir)
            stale = path is None and cached_file(name, precision, args.cache_dir).is_file()
            sizes.append(f"{path.stat().st_size / 1e6:.1f}" if path else "old" if stale else "-")
        rows.append([name, f"{config.input_size}x{config.input_size}", f"{params / 1e6:.2f}",
                     f"{macs / 1e6:.0f}", *sizes])
    print(format_table(header, rows))
    print("\n'-' = not built yet, 'old' = built by an older litecls (rebuilt on next use): "
          "litecls models build NAME --precision P")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Build the requested models and print their paths."""
    from litecls.models import list_models
    from litecls.models.zoo import build, build_embedding

    names = list_models() if args.names == ["all"] else args.names
    precisions = list(PRECISIONS) if args.precision == "all" else [args.precision]
    builders = {"classifier": [build], "embedding": [build_embedding], "all": [build, build_embedding]}
    for name in names:
        for precision in precisions:
            for builder in builders[args.task]:
                print(builder(name, precision, args.cache_dir, force=args.force, progress=_progress))
    return 0


def _resize_text(settings: dict | None) -> str:
    if not settings:
        return "not recorded (classify uses the largest centre square, bilinear)"
    return ", ".join(f"{key}={settings[key]}" for key in ("resize_policy", "crop_pct", "interpolation")
                     if key in settings)


def cmd_info(args: argparse.Namespace) -> int:
    """Print the metadata and I/O tensors of a model."""
    from litecls.errors import ModelFileError
    from litecls.metadata import read_metadata
    from litecls.models.zoo import build, parse_model_ref
    from litecls.runtime.interpreter import load_interpreter

    path = Path(args.model)
    if not path.exists() and ("/" in args.model or args.model.endswith(".tflite")):
        raise ModelFileError(f"{args.model}: no such model file")
    if not path.exists():
        path = build(*parse_model_ref(args.model), cache=args.cache_dir, progress=_progress)
    # The interpreter first: it checks the file (checksum, structure, quantization, a trial run)
    # and names it in its error; only a model that loads has metadata worth reading.
    interpreter = load_interpreter(path)
    print(f"file: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    try:
        meta = read_metadata(path)
    except Exception as exc:  # damaged metadata: one line naming the file, not a flatbuffers trace
        detail = " ".join(str(exc).split())
        raise ModelFileError(f"{path}: cannot read the model's metadata: {detail}") from None
    if meta is None:
        print("metadata: none (pass labels and mean/std when classifying)")
    else:
        shown = ", ".join(meta.labels[:5]) + (", ..." if len(meta.labels) > 5 else "")
        print(f"name: {meta.name}\ndescription: {meta.description}\nversion: {meta.version}\n"
              f"author: {meta.author}\nlicense: {meta.license}\n"
              f"min parser version: {meta.min_parser_version}\n"
              f"input: {meta.color_space}, normalization mean={meta.mean} std={meta.std}\n"
              f"resize: {_resize_text(meta.processing)}\n"
              f"labels: {len(meta.labels)} ({shown})\n"
              f"display names: {', '.join(f'{k} ({len(v)})' for k, v in meta.display_names.items()) or '-'}\n"
              f"associated files: {', '.join(meta.associated_files) or '-'}")
        for i, head in enumerate(meta.heads):
            print(f"output head {i}: {head.name or '-'}, {len(head.labels)} labels")
    for kind, details in (("input", interpreter.get_input_details()),
                          ("output", interpreter.get_output_details())):
        for d in details:
            scale, zero_point = d["quantization"]
            quant = f" scale={float(scale):.6g} zero_point={int(zero_point)}" if scale else ""
            shape = [int(v) for v in d["shape"]]  # plain integers, not np.int32(224)
            print(f"{kind} tensor: {d['name']} {shape} {d['dtype'].__name__}{quant}")
    # Whether ImageClassifier would take it (a feature extractor or NaN outputs would be refused).
    from litecls.runtime.interpreter import check_scores, describe_classifier

    try:
        labelled = bool(meta and (meta.labels or meta.display_names))
        check_scores(interpreter, describe_classifier(interpreter, str(path)), str(path), labelled)
        print("image classifier: yes")
    except ModelFileError as exc:
        print(f"image classifier: no: {str(exc).removeprefix(f'{path}: ')}")
    return 0


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            text = str(cell)
            out.append(text.ljust(width) if i == 0 else text.rjust(width))
        return "  ".join(out)

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _measure(args: argparse.Namespace):
    """Run the zoo report for the models/precisions/data the arguments name."""
    from litecls.evaluation.dataset import load_labelled, sample_set
    from litecls.evaluation.report import build_report
    from litecls.models import get_config, list_models

    models = [get_config(m).name for m in args.models.split(",") if m.strip()] if args.models \
        else list_models()
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise ValueError(f"unknown precision {unknown[0] if unknown else '(none)'}; "
                         f"choose from {', '.join(PRECISIONS)}")
    if args.runs < 1 or args.warmup < 0:
        raise ValueError("--runs must be 1 or more and --warmup 0 or more")
    dataset = load_labelled(args.data) if args.data else sample_set()
    return build_report(models, precisions, dataset, args.cache_dir, runs=args.runs, warmup=args.warmup,
                        progress=_progress)


def cmd_report(args: argparse.Namespace) -> int:
    """Measure every model x precision and print/write the table."""
    from pathlib import Path

    from litecls.evaluation import report as rep

    if args.plot:  # before measuring for minutes: a missing plots extra is known now
        from litecls.extras import require_extra

        require_extra("plots", "--plot")
    try:
        result = _measure(args)
    except ValueError as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    header, rows = rep.table_rows(result)
    print(format_table(header, rows))
    print(f"\nmachine: {result.machine['cpu_model']}, {result.machine['usable_cores']} usable cores, "
          f"SIMD {' '.join(result.machine['simd'])}; latency: p50 of {result.runs} interleaved runs of "
          f"invoke() on a ready tensor; accuracy on {result.data}; Pareto at {result.threads[-1]} thread(s)")
    for note in result.notes:
        print(f"note: {note}")
    if args.markdown:
        Path(args.markdown).write_text(rep.to_markdown(result) + "\n", encoding="utf-8")
        print(f"markdown: {args.markdown}")
    if args.csv:
        Path(args.csv).write_text(rep.to_csv(result), encoding="utf-8")
        print(f"csv: {args.csv}")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    if args.plot:
        rep.plot_report(result, args.plot)
        print(f"plot: {args.plot}")
    return 0


def cmd_choose(args: argparse.Namespace) -> int:
    """Pick the most accurate model within the budget; exit 1 when none fits."""
    from litecls.evaluation import report as rep

    try:
        result = rep.load_report(args.report) if args.report else _measure(args)
        if args.threads is not None and args.threads not in result.threads:
            raise ValueError(f"--threads {args.threads}: latencies were measured at "
                             f"{', '.join(map(str, result.threads))} thread(s)")
        choice = rep.choose(result, args.budget_ms, args.max_size_mb, args.threads)
    except (ValueError, OSError, KeyError) as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    if choice.row is None:
        print("no model fits:")
    else:
        print(f"choose {choice.row.name}  ({choice.row.path})")
    for reason in choice.reasons:
        print(f"  {reason}")
    return 0 if choice.row is not None else 1
