"""``convnet grade``: grade many submissions, each in a sandboxed ``convnet check --impl``.

    convnet grade subs/*/fc_layers.py --exercise fc_layers --jobs 2 --timeout 60 \\
        --memory 2048 --json report.json --csv summary.csv --gradescope results/

Every submission gets a verdict (ok, timeout, memory, crashed, import-error,
output-too-large, no-functions, not-found, grader-error) and a score: the points of the
checks it passed (1 per check, or from --weights). The reports are written atomically. See
docs/grading.md. Exit status 0 once the reports are written, whatever the verdicts; 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from convnet.commands._common import check_out_file
from convnet.errors import ConvnetError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "grade",
        help="grade student submissions in sandboxed processes (JSON, Gradescope, CSV)",
        description="Run `convnet check --impl` on every submission in its own process with "
                    "a timeout, memory and file-size limits, a scratch folder and a clean "
                    "environment; score each check; write JSON, Gradescope and CSV reports.",
    )
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="student Python files")
    p.add_argument("--exercise", metavar="NAME",
                   help="grade exercise NAME's functions (default: the exercise each file "
                        "declares; without one, every non-extended check)")
    p.add_argument("--only", metavar="PATTERN", help="only checks matching PATTERN "
                   "(as in `convnet check --only`)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="submissions graded at once (default 1)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="wall-clock and CPU seconds per submission, start-up and import "
                        "included (default 120)")
    p.add_argument("--memory", type=int, default=2048, metavar="MB",
                   help="address-space limit per submission in MiB (default 2048)")
    p.add_argument("--max-output", type=int, default=1_000_000, metavar="BYTES",
                   help="stdout and stderr bytes kept per submission (default 1000000)")
    p.add_argument("--weights", metavar="JSON",
                   help="points per check: {\"default\": 1, \"layer\": 2, \"layer: check\": 5, "
                        "\"glob*\": 3}")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="full report (JSON)")
    p.add_argument("--gradescope", metavar="PATH",
                   help="Gradescope results.json: a file for one submission, a folder of "
                        "one file per submission for several")
    p.add_argument("--csv", dest="csv_out", metavar="OUT", help="one row per submission")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> None:
    from convnet.exercises import get_exercise
    from convnet.grading import expected_checks

    if args.jobs < 1:
        raise ConvnetError(f"--jobs must be >= 1, got {args.jobs}")
    if not args.timeout > 0:
        raise ConvnetError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if args.memory < 64:
        raise ConvnetError(f"--memory must be at least 64 MB, got {args.memory}")
    if args.max_output < 1:
        raise ConvnetError(f"--max-output must be >= 1, got {args.max_output}")
    for option, path in (("--json", args.json_out), ("--csv", args.csv_out)):
        if path:  # refused before any submission is graded
            check_out_file(Path(path), option, "report" + Path(path).suffix)
    if args.gradescope and not Path(args.gradescope).is_dir():
        check_out_file(Path(args.gradescope), "--gradescope", "results.json")
    if args.exercise:
        get_exercise(args.exercise)
    if args.only and not expected_checks(args.exercise, args.only):
        raise ConvnetError(f"--only {args.only!r} matches no check"
                           + (f" of exercise {args.exercise}" if args.exercise else ""))


def run(args: argparse.Namespace) -> int:
    from convnet import grading

    _validate(args)
    weights = grading.Weights.from_file(args.weights) if args.weights else grading.Weights()
    limits = grading.Limits(timeout_s=args.timeout, memory_mb=args.memory,
                            output_bytes=args.max_output)
    reports = grading.grade_all(args.submissions, jobs=args.jobs, exercise=args.exercise,
                                only=args.only, limits=limits, weights=weights,
                                progress=not args.no_progress)
    width = max(len(r["submission"]) for r in reports)
    for r in reports:
        print(f"{r['submission']:<{width}}  {r['score']:g}/{r['max_score']:g}  "
              f"{r['verdict']}: {r['message']}", file=sys.stdout)
    settings = {"exercise": args.exercise, "only": args.only, "jobs": args.jobs,
                "timeout_s": args.timeout, "memory_mb": args.memory,
                "max_output_bytes": args.max_output, "weights": weights.to_json()}
    if args.json_out:
        doc = grading.report_document(reports, settings)
        grading.write_text_atomic(args.json_out, json.dumps(doc, indent=1) + "\n")
    if args.gradescope:
        grading.write_gradescope(args.gradescope, reports)
    if args.csv_out:
        grading.write_text_atomic(args.csv_out, grading.csv_summary(reports))
    return 0
