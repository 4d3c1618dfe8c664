"""Shared helpers for the benchmarks: thread pinning, timing, subprocess workers, tables.

Every library is measured in its own subprocess so that thread pools (OpenBLAS, Numba, TF's
Eigen/oneDNN, PyTorch's OpenMP) never coexist and each gets exactly ``--threads`` threads.
A worker prints one JSON line on stdout; the parent collects and tabulates.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
)


def thread_env(threads: int) -> dict[str, str]:
    """Environment for a worker subprocess limited to ``threads`` threads in every pool."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def pin_threads_in_process(threads: int, lib: str) -> None:
    """Apply the thread count inside a worker, after its library is imported."""
    if lib == "tf":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised: the env vars did it
            pass
    elif lib == "torch":
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    else:
        try:
            import convnet

            convnet.set_num_threads(threads)
        except (ImportError, AttributeError, ValueError):
            pass


def time_fn(fn: Callable[[], Any], warmup: int = 2, repeat: int = 10,
            min_time: float = 0.0, max_time: float = 8.0) -> dict[str, float]:
    """Median/min wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls.

    Runs ``repeat`` timed calls, more (up to 10x) until ``min_time`` seconds have been spent
    so that sub-millisecond calls get a stable median, and fewer (but at least 3) when they
    would take longer than ``max_time`` seconds, so slow backends keep the script short.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if len(times) >= repeat and (elapsed >= min_time or len(times) >= 10 * repeat):
            break
        if len(times) >= 3 and elapsed >= max_time:
            break
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "n": len(times),
    }


def run_worker(module: str, args: Sequence[str], threads: int,
               timeout: float = 600, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` with pinned threads; return its last JSON line.

    ``extra_env`` adds or overrides environment variables of the worker (e.g. an opt-out
    switch, to measure a feature on and off side by side). A worker that fails returns
    ``{'error': message}`` instead of raising, so one missing library (TF, PyTorch) or one
    broken backend never stops the whole benchmark.
    """
    cmd = [sys.executable, "-m", module, *args]
    env = {**thread_env(threads), **(extra_env or {})}
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit code {proc.returncode}: {tail[:200]}"}


def emit(result: dict[str, Any]) -> None:
    """Worker side: print the result as the last JSON line on stdout."""
    sys.stdout.flush()
    print(json.dumps(result), flush=True)


def library_versions() -> dict[str, str | None]:
    """Versions of numpy/numba/TF/torch, without importing TF or torch (metadata only)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for pkg in ("numpy", "numba", "tensorflow", "torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def machine_description(threads: int) -> str:
    """One paragraph: CPU model, cores, load, library versions, threads used."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load unknown"
    vers = ", ".join(f"{k} {v or 'missing'}" for k, v in library_versions().items())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {load}; Python {platform.python_version()}; "
        f"{vers}; {threads} thread(s) per library"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats get 2-3 significant decimals."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            if v >= 100:
                return f"{v:.0f}"
            if v >= 10:
                return f"{v:.1f}"
            return f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``); None where unsupported."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the resident-set high-water mark (``VmHWM``) to the current RSS (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Competitors:
    """``n`` CPU-bound processes (``while True: pass``) for the duration of a ``with`` block.

    They stand for a second program sharing the cores (a browser, another training): how
    much a library slows down next to them is its fairness, measured side by side.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Competitors:
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.2 if self.n else 0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs.clear()
