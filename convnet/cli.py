"""The ``convnet`` command. Each subcommand lives in ``convnet/commands/<name>.py``.

A subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` to a callable ``run(args) -> int``. Errors a user can cause (bad options, bad paths,
missing or corrupt files, too little memory) are printed as one line on stderr and exit with
status 2, never as a traceback; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from convnet.errors import ConvnetError

# Errors a user can cause; anything else is a bug and keeps its traceback.
USER_ERRORS = (ConvnetError, ValueError, OSError, MemoryError)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``prog: error: ... (see prog --help)``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

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
    parser = OneLineParser(
        prog="convnet",
        description="convnet: a NumPy deep-learning framework for looking inside convnets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"convnet.commands.{name}").register(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (a MemoryError may carry none)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) and not isinstance(exc, ConvnetError):
        return "out of memory" + (f" ({text})" if text else "") + ": lower the image size, " \
            "the batch or the grid (--max-memory MB sets the limit the estimate checks)"
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2) and --help (0), as a status for callers
        return int(e.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    action = getattr(args, "action", None) or getattr(args, "exercise_command", None)
    name = " ".join(filter(None, [args.command, action]))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"convnet {name}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"convnet {name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
