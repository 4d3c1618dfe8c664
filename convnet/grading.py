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

import csv
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from convnet.errors import ConvnetError

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


# ------------------------------------------------------------------------------- files


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (threads are
    running); otherwise set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and
    ``os.replace``: a reader sees the old file or the new one, never half of one.

    The final mode is what ``open(path, "w")`` would give (0o666 less the umask), not the
    private 0o600 of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ----------------------------------------------------------------------------- weights


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


# ----------------------------------------------------------------------------- sandbox


@dataclass(frozen=True)
class Limits:
    """Resources one submission may use. timeout_s bounds the whole run (interpreter
    start, import, every check) on the wall clock and in CPU seconds."""

    timeout_s: float = 120.0
    memory_mb: int = 2048
    output_bytes: int = 1_000_000  # of stdout, and again of stderr, kept
    file_mb: int = 64


@dataclass
class ChildRun:
    """What came back from one sandboxed process."""

    returncode: int
    timed_out: bool
    wall_s: float
    stdout: bytes
    stderr: bytes
    output_bytes: int  # everything printed, including what was discarded
    truncated: bool = False  # stdout or stderr went past the cap


class _CappedReader(threading.Thread):
    """Drain a pipe to its end, keeping the first ``cap`` bytes and counting the rest."""

    def __init__(self, stream: Any, cap: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.cap = stream, cap
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        fd = self.stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            self.total += len(chunk)
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]


_SECRET_HINTS = ("TOKEN", "SECRET", "KEY", "PASSW", "CREDENTIAL", "AUTH", "COOKIE")
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "NUMBA_CACHE_DIR")


def child_env(home: str) -> dict[str, str]:
    """The whole environment of a child: an allow-list, never the grader's own."""
    import convnet

    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update({k: v for k, v in os.environ.items()
                if k.startswith("CONVNET_") and not any(h in k.upper() for h in _SECRET_HINTS)})
    env.setdefault("PATH", os.defpath)
    one = "1"  # submissions run side by side (--jobs); each gets one core's worth
    env.update(
        HOME=home, TMPDIR=home, PYTHONPATH=str(Path(convnet.__file__).resolve().parents[1]),
        PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", PYTHONIOENCODING="utf-8",
        MPLBACKEND="Agg", OMP_NUM_THREADS=one, OPENBLAS_NUM_THREADS=one, MKL_NUM_THREADS=one,
        NUMBA_NUM_THREADS=one,
    )
    return env


def _limiter(limits: Limits) -> Callable[[], None]:
    """The ``preexec_fn`` setting the child's resource limits between fork and exec.

    Everything is computed here, in the parent: the function the child runs only calls
    ``setrlimit`` with prepared integers (no imports, no locks), which is what keeps a
    ``preexec_fn`` safe while the grader's other threads are running.
    """
    import resource  # POSIX only: grading needs it, the rest of convnet does not

    setrlimit = resource.setrlimit

    def capped(kind: int, want: int) -> tuple[int, int, int]:
        hard = resource.getrlimit(kind)[1]
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        return kind, want, want

    cpu = max(1, math.ceil(limits.timeout_s))
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    cpu_pair = (cpu, cpu + 5 if cpu_hard == resource.RLIM_INFINITY else min(cpu + 5, cpu_hard))
    settings = [capped(resource.RLIMIT_AS, limits.memory_mb * 2**20),
                capped(resource.RLIMIT_FSIZE, limits.file_mb * 2**20),
                capped(resource.RLIMIT_CORE, 0)]

    def apply() -> None:
        for kind, soft, hard in settings:
            setrlimit(kind, (soft, hard))
        setrlimit(resource.RLIMIT_CPU, cpu_pair)

    return apply


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def run_sandboxed(cmd: Sequence[str], limits: Limits, cwd: str,
                  env: dict[str, str]) -> ChildRun:
    """Run ``cmd`` under ``limits`` in its own session; kill its process group at the
    timeout (and after it exits, for anything it left behind)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
        preexec_fn=_limiter(limits),  # noqa: PLW1509 (see _limiter)
    )
    readers = [_CappedReader(proc.stdout, limits.output_bytes),
               _CappedReader(proc.stderr, limits.output_bytes)]
    for r in readers:
        r.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(proc.pid)
        proc.wait()
    wall = time.monotonic() - start
    for r in readers:
        r.join(timeout=5)  # a grandchild that escaped the group may hold the pipe open
    for r, stream in zip(readers, (proc.stdout, proc.stderr), strict=True):
        if not r.is_alive():
            stream.close()
    return ChildRun(proc.returncode, timed_out, wall, bytes(readers[0].kept),
                    bytes(readers[1].kept), readers[0].total + readers[1].total,
                    any(r.total > r.cap for r in readers))


# ----------------------------------------------------------------------------- verdicts


def _read_result(path: str) -> dict[str, Any] | None:
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


# ----------------------------------------------------------------------------- grading


def expected_checks(exercise: str | None, only: str | None) -> list:
    """The checks a submission is graded on: the exercise's (or every non-extended one),
    filtered by ``only``."""
    from convnet.checks import select_checks
    from convnet.exercises import get_exercise

    functions = get_exercise(exercise).functions if exercise else None
    return select_checks(only, extended=False, functions=functions)


def _rows(expected: list, doc: dict[str, Any] | None, weights: Weights,
          not_run_note: str) -> list[dict[str, Any]]:
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
    names the function, else the first failing check's."""
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


def _summary(rows: list[dict[str, Any]], status: dict[str, str],
             problems: dict[str, str]) -> str:
    """'9 of 11 checks passed; relu_forward failed (...); svm_loss missing'."""
    passed = sum(r["status"] == "PASS" for r in rows)
    parts = [f"{passed} of {len(rows)} checks passed"]
    for f, st in status.items():
        if st not in ("passed", "not run"):
            parts.append(f"{f} {st}" + (f" ({problems[f]})" if f in problems else ""))
    text = "; ".join(parts)
    return text if len(text) <= 1500 else text[:1497] + "..."


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
            doc = _read_result(result)
        finally:
            _remove_tree(scratch)
        verdict, message = judge(run, doc, limits)
    rows = _rows(expected, doc, weights, f"not run: {verdict}")
    functions = get_exercise(ex).functions if ex else \
        tuple(dict.fromkeys(f for c in expected for f in c.needs))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    status, problems = function_status(rows, functions)
    if verdict in (OK, OUTPUT_TOO_LARGE, MEMORY, TIMEOUT) and \
            any(r["status"] != NOT_RUN for r in rows):
        summary = _summary(rows, status, problems)
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


def _remove_tree(path: str) -> None:
    """Remove the scratch folder even if the submission made parts of it read-only."""
    def unlock(func: Callable, p: str, _exc: Any) -> None:
        try:
            os.chmod(p, 0o700)
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=unlock)


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


# ----------------------------------------------------------------------------- reports


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
