"""What became of one submission: its verdict and message, from the child's exit and
its JSON result."""

from __future__ import annotations

import json
import re
import signal
from typing import Any

from convnet.grading.sandbox import ChildRun, Limits

OK, TIMEOUT, MEMORY, CRASHED = "ok", "timeout", "memory", "crashed"
IMPORT_ERROR, OUTPUT_TOO_LARGE, NO_FUNCTIONS = "import-error", "output-too-large", "no-functions"
NOT_FOUND, GRADER_ERROR = "not-found", "grader-error"
VERDICTS = {
    OK: "the checks ran to the end; the score is what passed",
    TIMEOUT: "killed at the wall-clock or CPU time limit; finished checks keep their points",
    MEMORY: "ran out of the address-space limit (MemoryError), at import or in a check",
    CRASHED: "the process died (os._exit, sys.exit, a signal) before the checks finished",
    IMPORT_ERROR: "the file cannot be imported: syntax error, missing module, raised at import",
    OUTPUT_TOO_LARGE: "printed more than the output cap, or wrote a file over the size limit",
    NO_FUNCTIONS: "defines none of the functions convnet checks",
    NOT_FOUND: "the submission file does not exist",
    GRADER_ERROR: "the grader itself failed on this submission (a bug to report)",
}
NOT_RUN = "NOT_RUN"  # a check the child never reached (timeout, crash, import error)
_RESULT_CAP = 32 * 2**20  # bytes of the child's JSON result we are willing to parse


def read_result(path: str) -> dict[str, Any] | None:
    """The child's JSON result, or None when it is absent, too large or not a JSON object
    (the submission shares the folder and may have broken it)."""
    try:
        with open(path, "rb") as f:
            data = f.read(_RESULT_CAP + 1)
    except OSError:
        return None
    if len(data) > _RESULT_CAP:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _while(doc: dict[str, Any] | None) -> str:
    """' while running CHECK (functions)' from a partial result, or ''."""
    running = (doc or {}).get("running")
    if running == "import":
        return " while importing the submission"
    if isinstance(running, str) and running:
        fns = doc.get("running_functions") or []
        return f" while running {running!r}" + (f" ({', '.join(map(str, fns))})" if fns else "")
    return ""


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def _import_verdict(err: dict[str, Any], limits: Limits) -> tuple[str, str]:
    exc, msg = str(err.get("exception", "")), str(err.get("message", ""))
    msg = re.sub(r"^--impl: importing .* failed: ", "", msg)
    if exc == "MemoryError":
        return MEMORY, f"ran out of memory while importing (limit {limits.memory_mb} MB): {msg}"
    if exc in ("SyntaxError", "IndentationError", "TabError"):
        return IMPORT_ERROR, f"syntax error: {msg.removeprefix('SyntaxError: ')}"
    if exc == "ModuleNotFoundError":
        return IMPORT_ERROR, ("imports a module that does not exist: "
                              + msg.removeprefix("ModuleNotFoundError: "))
    return IMPORT_ERROR, f"raised at import: {msg}"


def judge(run: ChildRun, doc: dict[str, Any] | None, limits: Limits) -> tuple[str, str]:
    """(verdict, message) for one submission from its process and its JSON result."""
    where = _while(doc)
    if run.timed_out or run.returncode == -signal.SIGXCPU:
        return TIMEOUT, f"timed out after {limits.timeout_s:g} s{where}"
    if run.returncode == -signal.SIGXFSZ:
        return OUTPUT_TOO_LARGE, f"wrote a file over the {limits.file_mb} MB limit{where}"
    err = (doc or {}).get("error")
    if isinstance(err, dict):
        kind = err.get("kind")
        if kind == "import":
            return _import_verdict(err, limits)
        if kind == "nothing-to-check":
            return NO_FUNCTIONS, str(err.get("message", ""))
        return GRADER_ERROR, f"{kind}: {err.get('message', '')}"
    if doc is not None and doc.get("complete") is True:
        for r in doc.get("results") or []:
            note = str(r.get("note", "")) if isinstance(r, dict) else ""
            if "MemoryError" in note:
                return MEMORY, (f"{r.get('layer')}: {r.get('check')}: {note} "
                                f"(limit {limits.memory_mb} MB)")
            if "File too large" in note:  # EFBIG: Python ignores SIGXFSZ, the write fails
                return OUTPUT_TOO_LARGE, (f"wrote a file over the {limits.file_mb} MB limit "
                                          f"in {r.get('layer')}: {r.get('check')}: {note}")
        if run.truncated:
            return OUTPUT_TOO_LARGE, (
                f"printed {_size(run.output_bytes)} (kept {_size(limits.output_bytes)} of "
                "each of stdout and stderr, discarded the rest); the checks still ran and "
                "are scored")
        return OK, ""  # filled in with the per-function summary
    tail = run.stderr.decode("utf-8", "replace").strip()
    if any(s in tail for s in ("MemoryError", "bad_alloc", "Cannot allocate memory")):
        return MEMORY, f"ran out of memory{where} (limit {limits.memory_mb} MB)"
    rc = run.returncode
    if rc < 0:
        try:
            how = f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            how = f"was killed by signal {-rc}"
    else:
        how = f"exited with status {rc}"
    last = tail.splitlines()[-1][:300] if tail else ""
    return CRASHED, f"{how}{where} before finishing the checks" + (
        f"; last error line: {last}" if last else "")
