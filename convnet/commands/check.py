"""``convnet check``: gradient and reference checks of every layer, for graders.

    convnet check                                  # convnet's own layers
    convnet check --impl student/layers.py         # a student's functions with our names
    convnet check --only conv_im2col,max_pool --json results.json

Exit status: 0 when every check that ran passed (MISSING ones do not count), 1 when any
failed, 2 on a usage error (e.g. a module that defines none of the layer functions).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from convnet._io import atomic_write_text
from convnet.commands._common import check_out_file
from convnet.errors import ConvnetError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="check every layer: forward vs reference, backward vs numerical gradients",
        description=(
            "Check layer functions: forward outputs against reference implementations on "
            "fixed seeded inputs, backward passes against numerical gradients in float64, "
            "fast backends on the same shapes (stride 2, padding, overlapping pooling). "
            "Prints a table; exits 0 only if every check that ran passed."
        ),
    )
    p.add_argument("--impl", metavar="PATH",
                   help="a Python file defining some of the layer functions (same names as "
                        "convnet.layers) to check instead of convnet's own")
    p.add_argument("--json", metavar="OUT", dest="json_out", help="write the results as JSON")
    p.add_argument("--only", metavar="PATTERN",
                   help="only checks matching PATTERN: a substring of 'layer: check' or a glob "
                        "on the layer name; comma-separated")
    p.add_argument("--extended", action=argparse.BooleanOptionalAction, default=None,
                   help="also check dilation, max-pool padding and ceil mode (default: on "
                        "for convnet's layers, off with --impl)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="one row per check even for layers that are entirely MISSING")
    p.set_defaults(func=run)


def _fmt_err(err: float | None) -> str:
    if err is None:
        return "-"
    if not math.isfinite(err):
        return "inf" if err > 0 else "nan"
    return f"{err:.1e}"


def _rows(results: list, verbose: bool) -> list[tuple[str, str, str, str, str, str]]:
    """Table rows; a layer whose checks are all MISSING collapses into one row."""
    from convnet.checks import MISSING

    rows = []
    by_layer: dict[str, list] = {}
    for r in results:
        by_layer.setdefault(r.layer, []).append(r)
    for layer, rs in by_layer.items():
        if not verbose and len(rs) > 1 and all(r.status == MISSING for r in rs):
            names: dict[str, None] = {}
            other: dict[str, None] = {}
            for r in rs:
                if r.note.startswith("not defined: "):
                    names.update(dict.fromkeys(r.note[len("not defined: "):].split(", ")))
                else:
                    other[r.note] = None
            notes = ([f"not defined: {', '.join(names)}"] if names else []) + list(other)
            rows.append((layer, f"({len(rs)} checks)", "-", "-", MISSING, "; ".join(notes)))
            continue
        for r in rs:
            rows.append((r.layer, r.check, _fmt_err(r.error), f"{r.tol:.0e}", r.status, r.note))
    return rows


def _print_table(results: list, verbose: bool, out: Any) -> None:
    rows = _rows(results, verbose)
    head = ("layer", "check", "max rel err", "tol", "status", "note")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(fmt.format(*head), file=out)
    print("  ".join("-" * w for w in widths) + "  ----", file=out)
    for r in rows:
        print(fmt.format(*r).rstrip(), file=out)


def run(args: argparse.Namespace) -> int:
    from convnet import checks

    if args.json_out:
        check_out_file(Path(args.json_out), "--json", "results.json")
    impl = None
    label = "convnet.layers"
    if args.impl:
        impl = checks.load_student_module(args.impl)
        label = str(args.impl)
        defined = checks.defined_functions(impl)
        if not defined:
            raise checks.NothingToCheckError(
                f"{args.impl} defines none of the layer functions convnet checks "
                f"(e.g. conv_forward_naive, max_pool_backward_naive, affine_forward)"
            )
    selected = checks.select_checks(args.only, extended=True)
    if not selected:
        raise ConvnetError(f"--only {args.only!r} matches no layer; layers: "
                           + ", ".join(dict.fromkeys(c.layer for c in checks.REGISTRY)))
    results = checks.run_checks(impl, only=args.only, extended=args.extended)
    _print_table(results, args.verbose, sys.stdout)
    counts = {s: sum(r.status == s for r in results)
              for s in (checks.PASS, checks.FAIL, checks.MISSING)}
    failed = counts[checks.FAIL] > 0
    print(f"\n{label}: {counts[checks.PASS]} passed, {counts[checks.FAIL]} failed, "
          f"{counts[checks.MISSING]} missing", file=sys.stdout)
    if args.json_out:
        doc = {
            "impl": label,
            "passed": not failed,
            "counts": counts,
            "results": [r.to_json() for r in results],
        }
        path = Path(args.json_out)
        atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return 1 if failed else 0
