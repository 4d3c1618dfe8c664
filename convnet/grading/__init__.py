"""Grade many student submissions: ``convnet check --impl`` on each, in a sandboxed process.

Student code is untrusted: it may loop forever, allocate 50 GB, call ``os._exit``, print
megabytes, or fail to import. Each submission therefore runs in its own process
(``python -m convnet.cli check --impl FILE --json RESULT --partial``) with

- a wall-clock timeout that kills the whole process group (the child is started in a new
  session, so whatever it spawns goes too), and RLIMIT_CPU at the same number of seconds;
- RLIMIT_AS (address space) from ``memory_mb``: a huge allocation fails with MemoryError
  inside the child instead of taking the machine down;
- RLIMIT_FSIZE, so no file it writes can grow past ``file_mb``; no core dumps;
- a fresh scratch folder as working directory and HOME, removed afterwards;
- an environment reduced to an allow-list (PATH, locale, PYTHONPATH to find convnet,
  ``CONVNET_*`` data settings, one thread per numeric library): no tokens or secrets;
- stdout/stderr read by threads, keeping at most ``output_bytes`` of each and discarding
  the rest (the child never blocks on a full pipe).

With ``--partial`` the child rewrites its JSON result atomically before and after every
check, so a submission killed half-way keeps the checks it finished, and the verdict names
the check (hence the functions) that was running. Every submission gets a verdict
(:data:`VERDICTS`) and a message; an error of the grader itself on one submission becomes
that submission's ``grader-error`` verdict, never the end of the batch.

This isolates resources, not integrity: the student's code runs in the same process as the
checks and could, deliberately, tamper with them. Resource limits and clean verdicts for
broken code are the goal, as for any autograder that imports the student's module.

Scoring: each check is worth points (1 by default; see :class:`Weights`), earned when it
PASSes. Reports: a JSON document, the Gradescope autograder ``results.json`` format, and a
CSV summary, each written atomically (:func:`write_text_atomic`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from convnet._io import atomic_write_text as write_text_atomic
from convnet.grading.reports import (
    CSV_COLUMNS,
    csv_summary,
    gradescope_results,
    report_document,
    write_gradescope,
)
from convnet.grading.sandbox import ChildRun, Limits, child_env, remove_tree, run_sandboxed
from convnet.grading.scoring import (
    Weights,
    expected_checks,
    function_status,
    score_rows,
    summarize,
)
from convnet.grading.verdicts import (
    CRASHED,
    GRADER_ERROR,
    IMPORT_ERROR,
    MEMORY,
    NO_FUNCTIONS,
    NOT_FOUND,
    NOT_RUN,
    OK,
    OUTPUT_TOO_LARGE,
    TIMEOUT,
    VERDICTS,
    judge,
    read_result,
)

__all__ = [
    "CRASHED", "CSV_COLUMNS", "GRADER_ERROR", "IMPORT_ERROR", "MEMORY", "NO_FUNCTIONS",
    "NOT_FOUND", "NOT_RUN", "OK", "OUTPUT_TOO_LARGE", "TIMEOUT", "VERDICTS", "ChildRun",
    "Limits", "Weights", "child_env", "csv_summary", "expected_checks", "function_status",
    "grade_all", "grade_submission", "gradescope_results", "judge", "report_document",
    "run_sandboxed", "score_rows", "write_gradescope", "write_text_atomic",
]


def grade_submission(path: str | os.PathLike, exercise: str | None = None,
                     only: str | None = None, limits: Limits | None = None,
                     weights: Weights | None = None) -> dict[str, Any]:
    """Grade one file in a sandboxed child; returns its report (see docs/grading.md)."""
    from convnet.exercises import exercise_of_file, get_exercise

    limits = limits or Limits()
    weights = weights or Weights()
    path = Path(path)
    ex = exercise or exercise_of_file(path)
    expected = expected_checks(ex, only)
    report: dict[str, Any] = {"submission": str(path), "exercise": ex}
    run, doc = None, None
    if not path.is_file():
        verdict, message = NOT_FOUND, f"no such file: {path}"
    else:
        scratch = tempfile.mkdtemp(prefix="convnet-grade-")
        try:
            work = os.path.join(scratch, "work")
            os.mkdir(work)
            result = os.path.join(scratch, "result.json")
            cmd = [sys.executable, "-P", "-m", "convnet.cli", "check", "--impl",
                   str(path.resolve()), "--json", result, "--partial"]
            cmd += ["--exercise", ex] if ex else []
            cmd += ["--only", only] if only else []
            run = run_sandboxed(cmd, limits, cwd=work, env=child_env(work))
            doc = read_result(result)
        finally:
            remove_tree(scratch)
        verdict, message = judge(run, doc, limits)
    rows = score_rows(expected, doc, weights, f"not run: {verdict}")
    functions = get_exercise(ex).functions if ex else \
        tuple(dict.fromkeys(f for c in expected for f in c.needs))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    status, problems = function_status(rows, functions)
    if verdict in (OK, OUTPUT_TOO_LARGE, MEMORY, TIMEOUT) and \
            any(r["status"] != NOT_RUN for r in rows):
        summary = summarize(rows, status, problems)
        message = f"{message}; {summary}" if message else summary
    report.update(
        verdict=verdict, message=message,
        score=sum(r["score"] for r in rows), max_score=sum(r["max_score"] for r in rows),
        counts=counts, functions=status, problems=problems, checks=rows,
        returncode=run.returncode if run else None,
        wall_s=round(run.wall_s, 3) if run else 0.0,
        output_bytes=run.output_bytes if run else 0,
        stderr_tail=run.stderr.decode("utf-8", "replace")[-2000:] if run else "",
    )
    return report




def _grade_safely(path: str, **kw: Any) -> dict[str, Any]:
    try:
        return grade_submission(path, **kw)
    except Exception as exc:  # a bug of ours must not end the batch
        return {"submission": str(path), "exercise": kw.get("exercise"),
                "verdict": GRADER_ERROR, "message": f"{type(exc).__name__}: {exc}",
                "score": 0.0, "max_score": 0.0, "counts": {}, "functions": {}, "problems": {},
                "checks": []}


def grade_all(paths: Sequence[str | os.PathLike], jobs: int = 1, exercise: str | None = None,
              only: str | None = None, limits: Limits | None = None,
              weights: Weights | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Grade every path, ``jobs`` at a time; reports in the order of ``paths``.

    A progress bar over submissions goes to stderr when it is a terminal.
    """
    from tqdm import tqdm

    reports: list[dict[str, Any] | None] = [None] * len(paths)
    kw = {"exercise": exercise, "only": only, "limits": limits, "weights": weights}
    bar = tqdm(total=len(paths), file=sys.stderr, unit="submission", desc="grading",
               disable=not (progress and sys.stderr.isatty()))
    with bar, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_grade_safely, str(p), **kw): i for i, p in enumerate(paths)}
        for fut in as_completed(futures):
            rep = fut.result()
            reports[futures[fut]] = rep
            bar.set_postfix_str(f"{Path(rep['submission']).name}: {rep['verdict']}")
            bar.update(1)
    return [r for r in reports if r is not None]
