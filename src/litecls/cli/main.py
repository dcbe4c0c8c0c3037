"""litecls: classify images with any .tflite image classifier, build the model zoo, train your own
classes and measure accuracy, latency and size, on-device in the TensorFlow Lite (LiteRT) way."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence

from litecls import __version__
from litecls.errors import LiteclsError
from litecls.extras import extra_for_module


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands register themselves)."""
    from litecls.cli import (
        benchmark_cmd,
        bulk_cmd,
        classify_cmd,
        embed_cmd,
        evaluate_cmd,
        models_cmd,
        serve_cmd,
        train_cmd,
    )

    parser = argparse.ArgumentParser(prog="litecls", description=__doc__)
    parser.add_argument("--version", action="version", version=f"litecls {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models_cmd.register(commands)
    classify_cmd.register(commands)
    embed_cmd.register(commands)
    train_cmd.register(commands)
    evaluate_cmd.register(commands)
    benchmark_cmd.register(commands)
    serve_cmd.register(commands)
    bulk_cmd.register(commands)
    return parser


def configure_output(verbose: bool = False) -> None:
    """Keep library chatter off the terminal unless ``verbose``.

    Pillow warns about damaged files it still decodes ("Corrupt EXIF data",
    "Truncated File Read", palette transparency) and LiteRT logs "Created
    TensorFlow Lite XNNPACK delegate" (captured by
    :mod:`litecls.runtime.interpreter` and logged at INFO). Each bad image
    already gets its own error row; with ``verbose`` these are shown too.
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="litecls: %(name)s: %(message)s")
        warnings.filterwarnings("default", module=r"PIL(\.|$)")
    else:
        warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_output(getattr(args, "verbose", False))
    try:
        return int(args.func(args) or 0)
    except LiteclsError as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional package that a code path needs but did not check
        extra = extra_for_module(exc.name or "")
        if extra is None:
            raise
        print(f"litecls: error: this needs {exc.name}, not installed: pip install 'litecls[{extra}]'",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("litecls: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
