"""``convnet check``: gradient and reference checks of every layer, for graders.

    convnet check                                  # convnet's own layers
    convnet check --impl student/layers.py         # a student's functions with our names
    convnet check --only conv_im2col,max_pool --json results.json
    convnet check --impl work/fc_layers.py         # an exercise template: its functions only

A module started from an exercise template (``convnet exercise start``) says which exercise
it is (``__convnet_exercise__``); then only the checks of that exercise run, and a function
still raising ``NotImplementedError`` is NOT_IMPLEMENTED. ``--exercise NAME`` chooses the
exercise explicitly (the batch grader does).

Exit status: 0 when every check that ran passed (MISSING and NOT_IMPLEMENTED ones do not
count), 1 when any failed, 2 on a usage error (e.g. a module that defines none of the layer
functions, or that cannot be imported).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

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
    p.add_argument("--exercise", metavar="NAME",
                   help="grade the functions of exercise NAME only (see `convnet exercise "
                        "list`); default: the exercise the --impl file declares, if any")
    p.add_argument("--partial", action="store_true",
                   help="with --json: rewrite the JSON before and after every check, so that "
                        "a run killed half-way leaves the finished checks and the one running")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="one row per check even for layers that are entirely MISSING or "
                        "NOT_IMPLEMENTED")
    p.set_defaults(func=run)


def _fmt_err(err: float | None) -> str:
    if err is None:
        return "-"
    if not math.isfinite(err):
        return "inf" if err > 0 else "nan"
    return f"{err:.1e}"


def _rows(results: list, verbose: bool) -> list[tuple[str, str, str, str, str, str]]:
    """Table rows; a layer whose checks are all MISSING (or all NOT_IMPLEMENTED) collapses
    into one row."""
    from convnet.checks import MISSING, NOT_IMPLEMENTED

    rows = []
    by_layer: dict[str, list] = {}
    for r in results:
        by_layer.setdefault(r.layer, []).append(r)
    for layer, rs in by_layer.items():
        status = rs[0].status
        if (not verbose and len(rs) > 1 and status in (MISSING, NOT_IMPLEMENTED)
                and all(r.status == status for r in rs)):
            rows.append((layer, f"({len(rs)} checks)", "-", "-", status, _merged_notes(rs)))
            continue
        for r in rs:
            rows.append((r.layer, r.check, _fmt_err(r.error), f"{r.tol:.0e}", r.status, r.note))
    return rows


def _merged_notes(rs: list) -> str:
    """One note for many rows: 'not defined: a, b' / 'not implemented: a, b' merged."""
    named: dict[str, dict[str, None]] = {}
    other: dict[str, None] = {}
    for r in rs:
        for prefix in ("not defined: ", "not implemented: "):
            if r.note.startswith(prefix) and "(" not in r.note:
                named.setdefault(prefix, {}).update(
                    dict.fromkeys(r.note[len(prefix):].split(", ")))
                break
        else:
            other[r.note] = None
    return "; ".join([f"{p}{', '.join(n)}" for p, n in named.items()] + list(other))


def _print_table(results: list, verbose: bool, out: Any) -> None:
    rows = _rows(results, verbose)
    head = ("layer", "check", "max rel err", "tol", "status", "note")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(fmt.format(*head), file=out)
    print("  ".join("-" * w for w in widths) + "  ----", file=out)
    for r in rows:
        print(fmt.format(*r).rstrip(), file=out)


class _JsonDoc:
    """The --json document; with --partial it is rewritten (atomically) at every step."""

    def __init__(self, path: str | None, partial: bool, impl: str) -> None:
        self.path, self.partial = path, partial
        self.doc: dict[str, Any] = {"impl": impl, "exercise": None, "complete": False,
                                    "running": None, "results": []}

    def update(self, final: bool = False, **fields: Any) -> None:
        self.doc.update(fields)
        if self.path and (final or self.partial):
            from convnet._io import atomic_write_text as write_text_atomic

            write_text_atomic(self.path, json.dumps(self.doc, indent=1) + "\n")

    def error(self, kind: str, exc: BaseException) -> None:
        cause = exc.__cause__ or exc
        self.update(final=True, running=None, error={
            "kind": kind, "exception": type(cause).__name__, "message": str(exc)})


def _load(args: argparse.Namespace, out: _JsonDoc) -> tuple[Any, Any]:
    """(student module, exercise) for --impl/--exercise; errors also go to the JSON."""
    from convnet import checks
    from convnet.exercises import EXERCISES, MARKER, get_exercise

    try:
        exercise = get_exercise(args.exercise) if args.exercise else None
    except ConvnetError as exc:
        out.error("usage", exc)
        raise
    if not args.impl:
        return None, exercise
    out.update(running="import")
    try:
        impl = checks.load_student_module(args.impl)
    except FileNotFoundError as exc:
        out.error("not-found", exc)
        raise
    except ConvnetError as exc:
        out.error("import", exc)
        raise
    declared = getattr(impl, MARKER, None)
    if exercise is None and isinstance(declared, str) and declared in EXERCISES:
        exercise = EXERCISES[declared]
    if exercise is None and not checks.defined_functions(impl):
        exc = checks.NothingToCheckError(
            f"{args.impl} defines none of the layer functions convnet checks "
            f"(e.g. conv_forward_naive, max_pool_backward_naive, affine_forward)"
        )
        out.error("nothing-to-check", exc)
        raise exc
    return impl, exercise


def run(args: argparse.Namespace) -> int:
    from convnet import checks

    if args.json_out:  # refused before any check runs (the results could not be kept)
        check_out_file(Path(args.json_out), "--json", "results.json")
    label = str(args.impl) if args.impl else "convnet.layers"
    out = _JsonDoc(args.json_out, args.partial, label)
    impl, exercise = _load(args, out)
    functions = exercise.functions if exercise is not None else None
    if exercise is not None:
        out.update(exercise=exercise.name)
        label += f" (exercise {exercise.name})"
    selected = checks.select_checks(args.only, extended=True, functions=functions)
    if not selected:
        exc = ConvnetError(f"--only {args.only!r} matches no layer; layers: "
                           + ", ".join(dict.fromkeys(c.layer for c in checks.REGISTRY)))
        out.error("usage", exc)
        raise exc
    results: list = []

    def starting(c: checks.Check) -> None:
        out.update(running=f"{c.layer}: {c.name}", running_functions=list(c.needs))

    def finished(r: checks.CheckResult) -> None:
        results.append(r)
        out.update(running=None, results=[x.to_json() for x in results])

    checks.run_checks(impl, only=args.only, extended=args.extended, functions=functions,
                      progress=finished, starting=starting if args.partial else None)
    counts = {s: sum(r.status == s for r in results) for s in checks.STATUSES}
    failed = counts[checks.FAIL] > 0
    # The JSON first: the module under test may have broken stdout.
    out.update(final=True, complete=True, running=None, passed=not failed, counts=counts,
               results=[r.to_json() for r in results])
    _print_table(results, args.verbose, sys.stdout)
    print(f"\n{label}: {counts[checks.PASS]} passed, {counts[checks.FAIL]} failed, "
          f"{counts[checks.NOT_IMPLEMENTED]} not implemented, "
          f"{counts[checks.MISSING]} missing", file=sys.stdout)
    return 1 if failed else 0
