"""``convnet exercise``: list the exercise templates, or start one.

    convnet exercise list
    convnet exercise start fc_layers --dir work/      # writes work/fc_layers.py
    convnet check --impl work/fc_layers.py            # grades that exercise's functions

A template holds every function's signature and docstring (every shape) and a body that
raises ``NotImplementedError`` with a hint. An existing file is never replaced without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from convnet.commands._common import check_out_dir


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "exercise",
        help="exercise templates: list them, or start one in a folder",
        description="Student exercise templates: every function's signature and docstring, "
                    "bodies raising NotImplementedError; grade them with "
                    "`convnet check --impl FILE`.",
    )
    sub = p.add_subparsers(dest="exercise_command", metavar="ACTION")
    sub.add_parser("list", help="list the exercises").set_defaults(func=run_list)
    s = sub.add_parser("start", help="write an exercise template into a folder")
    s.add_argument("name", metavar="NAME", help="exercise name (see `convnet exercise list`)")
    s.add_argument("--dir", default=".", metavar="DIR",
                   help="folder to write NAME.py into (created; default: the current one)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace an existing DIR/NAME.py (it may hold your work)")
    s.set_defaults(func=run_start)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from convnet.exercises import EXERCISES

    width = max(len(n) for n in EXERCISES)
    for ex in EXERCISES.values():
        n_checks = len(ex.checks())
        print(f"{ex.name:<{width}}  {ex.title} ({len(ex.functions)} functions, "
              f"{n_checks} checks)")
        print(f"{'':<{width}}  {', '.join(ex.functions)}")
    return 0


def run_start(args: argparse.Namespace) -> int:
    from convnet.exercises import start

    check_out_dir(Path(args.dir), "--dir")
    path = start(args.name, args.dir, overwrite=args.overwrite)
    print(f"wrote {path}\ncheck it with: convnet check --impl {path}", file=sys.stdout)
    return 0
