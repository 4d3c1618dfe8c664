"""Thread control: Numba's thread pool, BLAS's thread pool and convnet's own conv workers.

Numba's ``prange`` pool and a multithreaded BLAS both busy-wait for a while after a parallel
region. Code that alternates them (im2col in Numba, then a GEMM, then col2im, ...) makes each
pool's workers compete with the other's spinning threads: on a few cores that was measured to
slow conv down by up to 2x, and far more on a loaded machine. So convnet's convolution does not
alternate pools: it runs chunks on its own worker threads (GIL-free Numba kernels plus a GEMM
each) with BLAS limited to the calling thread for the duration (:func:`single_threaded_blas`).

:func:`set_num_threads` sets all three counts at once. BLAS threads are set through
``threadpoolctl`` when it is installed, otherwise through the ``openblas_set_num_threads`` entry
point (any of its symbol spellings: plain, ``64_``-suffixed, ``scipy_``-prefixed) of every
OpenBLAS library loaded in this process, found via ctypes. Other BLAS libraries are left alone
without ``threadpoolctl``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from functools import cache

#: Worker threads of convnet's own chunked kernels (conv); None: one per available CPU.
_num_threads: int | None = None

_SET_NAMES = (
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
)
_GET_NAMES = tuple(n.replace("_set_", "_get_") for n in _SET_NAMES)


def _loaded_openblas_paths() -> list[str]:
    """Paths of the OpenBLAS shared libraries mapped into this process (Linux only)."""
    import numpy  # noqa: F401  (loads numpy's OpenBLAS, so that it shows in the maps)

    paths: list[str] = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and "openblas" in parts[-1].lower():
                    if parts[-1] not in paths:
                        paths.append(parts[-1])
    except OSError:  # not Linux: no /proc; threadpoolctl is the portable route there
        pass
    return paths


@cache
def _openblas_functions() -> list[tuple[ctypes._CFuncPtr, ctypes._CFuncPtr | None]]:
    """``(set_num_threads, get_num_threads)`` ctypes functions of every loaded OpenBLAS."""
    funcs = []
    for path in _loaded_openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SET_NAMES if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GET_NAMES if hasattr(lib, n)), None)
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            setter.restype = None
            if getter is not None:
                getter.argtypes = []
                getter.restype = ctypes.c_int
            funcs.append((setter, getter))
    return funcs


def _set_blas_threads(n: int) -> bool:
    """Limit BLAS to ``n`` threads; return whether some BLAS library was reached."""
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        # Without a ``with`` block the limit stays in place, which is what we want here.
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
        return True
    funcs = _openblas_functions()
    for setter, _ in funcs:
        setter(n)
    return bool(funcs)


def _get_blas_threads() -> int | None:
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        return int(infos[0]["num_threads"]) if infos else None
    for _, getter in _openblas_functions():
        if getter is not None:
            return int(getter())
    return None


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba kernels, in BLAS (matrix products) and in convnet's workers.

    Inputs:
    - n: number of threads, ``1 <= n``; Numba's share is capped at its pool size
      (``numba.config.NUMBA_NUM_THREADS``, by default the number of CPUs).

    Raises ``ValueError`` for ``n < 1`` or a non-int. A BLAS that cannot be reached (neither
    ``threadpoolctl`` installed nor OpenBLAS loaded) is left as it is.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    try:
        import numba
    except ImportError:
        numba = None
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _set_blas_threads(n)
    global _num_threads
    _num_threads = n


def worker_threads() -> int:
    """Threads convnet's chunked kernels use: the last :func:`set_num_threads`, else #CPUs."""
    return _num_threads if _num_threads is not None else default_num_threads()


_blas_lock = threading.Lock()
_blas_depth = 0
_blas_saved: list[int] = []


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """Run BLAS on the calling thread only inside the block; restore the old count after.

    Yields whether BLAS could be reached. Convolution runs its own worker threads, each
    calling BLAS on one chunk: a multithreaded BLAS underneath would oversubscribe the cores.
    Uses the OpenBLAS entry points directly (a few microseconds), else ``threadpoolctl``.
    Nested or concurrent blocks (conv called from several threads) are counted, so the
    original count is saved by the first to enter and restored by the last to leave.
    """
    global _blas_depth, _blas_saved
    funcs = [(s, g) for s, g in _openblas_functions() if g is not None]
    if funcs:
        with _blas_lock:
            if _blas_depth == 0:
                _blas_saved = [g() for _, g in funcs]
                for setter, _ in funcs:
                    setter(1)
            _blas_depth += 1
        try:
            yield True
        finally:
            with _blas_lock:
                _blas_depth -= 1
                if _blas_depth == 0:
                    for (setter, _), n in zip(funcs, _blas_saved, strict=True):
                        setter(n)
        return
    try:
        import threadpoolctl
    except ImportError:
        yield False
        return
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield any(i.get("user_api") == "blas" for i in threadpoolctl.threadpool_info())


def get_num_threads() -> dict[str, int | None]:
    """Current thread counts: ``{'numba': int | None, 'blas': int | None}`` (None: unknown)."""
    try:
        import numba

        nb: int | None = int(numba.get_num_threads())
    except ImportError:
        nb = None
    return {"numba": nb, "blas": _get_blas_threads()}


def default_num_threads() -> int:
    """The number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
