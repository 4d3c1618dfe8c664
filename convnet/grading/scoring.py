"""Points per check (:class:`Weights`), the rows of a report, and per-function verdicts."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from convnet.errors import ConvnetError
from convnet.grading.verdicts import NOT_RUN


class Weights:
    """Points per check, from a JSON object such as::

        {"default": 1, "conv_naive": 2, "conv_naive: backward 3x3 s=2 p=1 vs numerical": 5,
         "max_pool_*": 3}

    A key is a check's full name ``"layer: check"``, a layer (function family) name, or a
    glob on either; its value is the points of EACH matching check. The most specific key
    wins: the full name, then the layer name, then the first matching glob in file order,
    then ``"default"`` (1 when absent). A check earns its points when it passes.
    """

    def __init__(self, mapping: dict[str, float] | None = None) -> None:
        mapping = dict(mapping or {})
        for key, value in mapping.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ConvnetError(f"weights: {key!r} must be a number >= 0, got {value!r}")
        self.default = float(mapping.pop("default", 1.0))
        self.mapping = {k: float(v) for k, v in mapping.items()}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Weights:
        """Read and validate a weights file; a key that matches no check is an error
        (a typo would otherwise silently score with the default)."""
        from convnet.checks import REGISTRY

        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"--weights: no such file: {path}") from None
        except (OSError, ValueError) as exc:
            raise ConvnetError(f"--weights {path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ConvnetError(f"--weights {path}: must be a JSON object of name -> points")
        weights = cls(doc)
        unknown = [k for k in weights.mapping
                   if not any(weights._matches(k, c.layer, c.name) for c in REGISTRY)]
        if unknown:
            raise ConvnetError(f"--weights {path}: {', '.join(map(repr, unknown))} match no "
                               "check (keys are 'layer', 'layer: check' or globs of them)")
        return weights

    @staticmethod
    def _matches(key: str, layer: str, check: str) -> bool:
        full = f"{layer}: {check}"
        return key in (full, layer) or fnmatch(layer, key) or fnmatch(full, key)

    def points(self, layer: str, check: str) -> float:
        """Points of the check ``check`` of ``layer``."""
        full = f"{layer}: {check}"
        for exact in (full, layer):
            if exact in self.mapping:
                return self.mapping[exact]
        for key, value in self.mapping.items():
            if fnmatch(layer, key) or fnmatch(full, key):
                return value
        return self.default

    def to_json(self) -> dict[str, float]:
        return {"default": self.default, **self.mapping}



def expected_checks(exercise: str | None, only: str | None) -> list:
    """The checks a submission is graded on: the exercise's (or every non-extended one),
    filtered by ``only``."""
    from convnet.checks import select_checks
    from convnet.exercises import get_exercise

    functions = get_exercise(exercise).functions if exercise else None
    return select_checks(only, extended=False, functions=functions)


def score_rows(expected: list, doc: dict[str, Any] | None, weights: Weights,
               not_run_note: str) -> list[dict[str, Any]]:
    """One report row per expected check (its status and note from the child's result,
    ``NOT_RUN`` with ``not_run_note`` when the child never got to it) with its points."""
    from convnet.checks import PASS

    got: dict[tuple[str, str], dict[str, Any]] = {}
    for r in (doc or {}).get("results") or []:
        if isinstance(r, dict):
            got[(str(r.get("layer")), str(r.get("check")))] = r
    rows = []
    for c in expected:
        pts = weights.points(c.layer, c.name)
        r = got.get((c.layer, c.name))
        status = str(r.get("status")) if r else NOT_RUN
        err = r.get("error") if r else None
        rows.append({
            "name": f"{c.layer}: {c.name}", "layer": c.layer, "check": c.name,
            "functions": list(c.needs), "status": status,
            "score": pts if status == PASS else 0.0, "max_score": pts,
            "error": err if isinstance(err, (int, float)) else None, "tol": c.tol,
            "note": str(r.get("note", ""))[:500] if r else not_run_note,
        })
    return rows


def _names(f: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(f)}(?![A-Za-z0-9_])", text) is not None


def function_status(rows: list[dict[str, Any]], functions: Iterable[str]
                    ) -> tuple[dict[str, str], dict[str, str]]:
    """Per function: its status ('passed', 'failed', 'not implemented', 'missing',
    'not run') and, for a failed one, the problem: the first failing check's note that
    names the function; else, when the check also calls a function that is wrong by
    itself (relu_backward checked through a NaN-producing relu_forward), that one; else
    the first failing check's note."""
    from convnet.checks import FAIL, MISSING, NOT_IMPLEMENTED, PASS

    status, problems = {}, {}
    # Functions shown wrong by themselves: a failing check of theirs alone, or naming them.
    wrong = {g for r in rows if r["status"] == FAIL for g in r["functions"]
             if r["functions"] == [g] or _names(g, r["note"])}
    for f in functions:
        mine = [r for r in rows if f in r["functions"]]
        failed = [r for r in mine if r["status"] == FAIL]
        if any(r["status"] == MISSING and _names(f, r["note"]) for r in mine):
            status[f] = "missing"
        elif any(r["status"] == NOT_IMPLEMENTED and _names(f, r["note"]) for r in mine):
            status[f] = "not implemented"
        elif failed:
            status[f] = "failed"
            first = next((r for r in failed if _names(f, r["note"])), None)
            culprits = [g for g in failed[0]["functions"] if g != f and g in wrong]
            if first is None and f not in wrong and culprits:
                problems[f] = (f"{failed[0]['name']}: fails together with {culprits[0]}, "
                               "which is wrong by itself")
            else:
                first = first or failed[0]
                problems[f] = f"{first['name']}: {first['note'] or 'error above tolerance'}"
        elif mine and all(r["status"] == PASS for r in mine):
            status[f] = "passed"
        else:
            status[f] = "not run"
    return status, problems


def summarize(rows: list[dict[str, Any]], status: dict[str, str],
             problems: dict[str, str]) -> str:
    """'9 of 11 checks passed; relu_forward failed (...); svm_loss missing'."""
    passed = sum(r["status"] == "PASS" for r in rows)
    parts = [f"{passed} of {len(rows)} checks passed"]
    for f, st in status.items():
        if st not in ("passed", "not run"):
            parts.append(f"{f} {st}" + (f" ({problems[f]})" if f in problems else ""))
    text = "; ".join(parts)
    return text if len(text) <= 1500 else text[:1497] + "..."
