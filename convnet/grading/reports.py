"""The reports: JSON document, Gradescope ``results.json``, CSV summary."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from convnet._io import atomic_write_text as write_text_atomic
from convnet.grading.verdicts import NOT_RUN


def report_document(reports: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    verdicts: dict[str, int] = {}
    for r in reports:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    return {"tool": "convnet grade", "settings": settings,
            "summary": {"submissions": len(reports), "verdicts": verdicts},
            "submissions": reports}


def _test_output(row: dict[str, Any]) -> str:
    err = row.get("error")
    err_s = f"max rel err {err:.2e} (tol {row['tol']:.0e})" if isinstance(err, float) else ""
    parts = [row["status"], err_s, row.get("note", "")]
    return "; ".join(p for p in parts if p)


def gradescope_results(report: dict[str, Any]) -> dict[str, Any]:
    """One submission in the Gradescope autograder ``results.json`` format: the total
    score, a general output line (verdict and message), and one test per check."""
    tests = [{"name": row["name"], "score": row["score"], "max_score": row["max_score"],
              "status": "passed" if row["status"] == "PASS" else "failed",
              "output": _test_output(row)} for row in report.get("checks", [])]
    return {"score": report.get("score", 0.0),
            "output": f"{report['verdict']}: {report.get('message', '')}",
            "execution_time": report.get("wall_s", 0.0), "tests": tests}


def _stem(submission: str) -> str:
    p = Path(submission)
    parts = [*p.parent.parts[-1:], p.stem] if p.parent.parts else [p.stem]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(x for x in parts if x not in ("", ".")))


def write_gradescope(path: str | os.PathLike, reports: list[dict[str, Any]]) -> list[Path]:
    """One submission: ``path`` is the results file (or a folder to hold results.json).
    Several: ``path`` is a folder with one ``<folder>__<stem>.json`` per submission."""
    path = Path(path)
    if len(reports) == 1 and not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        targets = [path]
    elif len(reports) == 1:
        targets = [path / "results.json"]
    else:
        path.mkdir(parents=True, exist_ok=True)
        seen: dict[str, int] = {}
        targets = []
        for r in reports:
            stem = _stem(r["submission"])
            seen[stem] = seen.get(stem, 0) + 1
            name = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
            targets.append(path / f"{name}.json")
    for t, r in zip(targets, reports, strict=True):
        write_text_atomic(t, json.dumps(gradescope_results(r), indent=1) + "\n")
    return targets


CSV_COLUMNS = ("submission", "exercise", "verdict", "score", "max_score", "percent", "passed",
               "failed", "not_implemented", "missing", "not_run", "wall_s", "message")


def csv_summary(reports: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in reports:
        c = r.get("counts", {})
        score, top = r.get("score", 0.0), r.get("max_score", 0.0)
        w.writerow([r["submission"], r.get("exercise") or "", r["verdict"], f"{score:g}",
                    f"{top:g}", f"{100 * score / top:.1f}" if top else "0.0",
                    c.get("PASS", 0), c.get("FAIL", 0), c.get("NOT_IMPLEMENTED", 0),
                    c.get("MISSING", 0), c.get(NOT_RUN, 0), r.get("wall_s", 0.0),
                    r.get("message", "")])
    return buf.getvalue()
