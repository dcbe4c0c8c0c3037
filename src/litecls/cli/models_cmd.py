"""``litecls models list | build | info``: the zoo from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from litecls.export.quantize import PRECISIONS


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
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.set_defaults(func=cmd_build)

    info = sub.add_parser("info", help="print a .tflite's metadata and tensors")
    info.add_argument("model", help="a .tflite file or a zoo name (NAME[:PRECISION])")
    info.add_argument("--cache-dir")
    info.set_defaults(func=cmd_info)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    """Print every zoo model with size, parameters, MACs and built file sizes."""
    from litecls.models import create_model, get_config, list_models
    from litecls.models.complexity import count_params_and_macs
    from litecls.models.zoo import built_path

    header = ["model", "input", "params (M)", "MACs (M)", *[f"{p} (MB)" for p in PRECISIONS]]
    rows = []
    for name in list_models():
        config = get_config(name)
        params, macs = count_params_and_macs(create_model(name, pretrained=False),
                                             (config.input_size, config.input_size))
        sizes = []
        for precision in PRECISIONS:
            path = built_path(name, precision, args.cache_dir)
            sizes.append(f"{path.stat().st_size / 1e6:.1f}" if path else "-")
        rows.append([name, f"{config.input_size}x{config.input_size}", f"{params / 1e6:.2f}",
                     f"{macs / 1e6:.0f}", *sizes])
    print(format_table(header, rows))
    print("\n'-' = not built yet: litecls models build NAME --precision P")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Build the requested models and print their paths."""
    from litecls.models import list_models
    from litecls.models.zoo import build

    names = list_models() if args.names == ["all"] else args.names
    precisions = list(PRECISIONS) if args.precision == "all" else [args.precision]
    for name in names:
        for precision in precisions:
            path = build(name, precision, args.cache_dir, force=args.force, progress=_progress)
            print(path)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the metadata and I/O tensors of a model."""
    from litecls.export.metadata import read_metadata
    from litecls.models.zoo import build, parse_model_ref
    from litecls.runtime.interpreter import load_interpreter

    path = Path(args.model)
    if not path.exists():
        path = build(*parse_model_ref(args.model), cache=args.cache_dir, progress=_progress)
    print(f"file: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    meta = read_metadata(path)
    if meta is None:
        print("metadata: none (pass labels and mean/std when classifying)")
    else:
        shown = ", ".join(meta.labels[:5]) + (", ..." if len(meta.labels) > 5 else "")
        print(f"name: {meta.name}\ndescription: {meta.description}\nversion: {meta.version}\n"
              f"author: {meta.author}\nlicense: {meta.license}\n"
              f"min parser version: {meta.min_parser_version}\n"
              f"input: {meta.color_space}, normalization mean={meta.mean} std={meta.std}\n"
              f"labels: {len(meta.labels)} ({shown})\n"
              f"display names: {', '.join(f'{k} ({len(v)})' for k, v in meta.display_names.items()) or '-'}\n"
              f"associated files: {', '.join(meta.associated_files) or '-'}")
    interpreter = load_interpreter(path)
    for kind, details in (("input", interpreter.get_input_details()),
                          ("output", interpreter.get_output_details())):
        for d in details:
            scale, zero_point = d["quantization"]
            quant = f" scale={scale:.6g} zero_point={zero_point}" if scale else ""
            print(f"{kind} tensor: {d['name']} {list(d['shape'])} {d['dtype'].__name__}{quant}")
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
