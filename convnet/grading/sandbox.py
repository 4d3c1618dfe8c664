"""Run one command under resource limits, in its own session, with a clean environment
and capped output (see the package docstring)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
                capped(resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, *cpu_pair)]

    def apply() -> None:
        for kind, soft, hard in settings:
            setrlimit(kind, (soft, hard))

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




def remove_tree(path: str) -> None:
    """Remove the scratch folder even if the submission made parts of it read-only."""
    def unlock(func: Callable, p: str, _exc: Any) -> None:
        try:
            os.chmod(p, 0o700)
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=unlock)
