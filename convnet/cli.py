"""The ``convnet`` command. Each subcommand lives in ``convnet/commands/<name>.py``.

A subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a callable ``run(args) -> int``. Errors a user can cause (bad paths, missing
data, wrong shapes) are printed as one line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from convnet.errors import ConvnetError

# Order is the order of `convnet --help`.
COMMANDS = (
    "check",
    "exercise",
    "grade",
    "train",
    "predict",
    "compare",
    "saliency",
    "explain",
    "activations",
    "classviz",
    "fool",
    "features",
    "dream",
    "style",
    "autoencoder",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convnet",
        description="convnet: a NumPy deep-learning framework for looking inside convnets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"convnet.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("convnet: interrupted", file=sys.stderr)
        return 130
    except (ConvnetError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"convnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
