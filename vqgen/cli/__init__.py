"""The ``vqgen`` command line: one module per command, each a thin layer that parses, calls the library and
prints (``vqgen.media`` holds what differs between media, ``vqgen.pipelines`` what chains the stages).

Errors vqgen raises on purpose (``VqgenError``) print as one line and exit with status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vqgen.errors import VqgenError

__all__ = ["COMMANDS", "build_parser", "main"]

#: The command modules, in the order ``vqgen --help`` lists them.
COMMANDS = (
    "train_tokenizer",
    "evaluate_tokenizer",
    "encode",
    "train_prior",
    "generate",
    "reconstruct",
    "score",
    "fit_background",
    "compress",
    "decompress",
    "data",
    "info",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqgen", description="Generative media with discrete tokens.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"vqgen.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "required_output", False) and not args.output:
        parser.error("--output is required")
    try:
        args.func(args)
    except VqgenError as error:
        if args.debug:
            raise
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vqgen info DIR | head`: the reader left early; no traceback for it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        return 1
    return 0
