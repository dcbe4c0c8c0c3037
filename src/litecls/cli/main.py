"""``litecls`` entry point: one sub-command module per job, errors printed plainly."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from litecls import __version__
from litecls.errors import LiteclsError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands register themselves)."""
    from litecls.cli import benchmark_cmd, classify_cmd, evaluate_cmd, models_cmd, serve_cmd, train_cmd

    parser = argparse.ArgumentParser(prog="litecls", description=__doc__)
    parser.add_argument("--version", action="version", version=f"litecls {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    models_cmd.register(commands)
    classify_cmd.register(commands)
    train_cmd.register(commands)
    evaluate_cmd.register(commands)
    benchmark_cmd.register(commands)
    serve_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LiteclsError as exc:
        print(f"litecls: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("litecls: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
