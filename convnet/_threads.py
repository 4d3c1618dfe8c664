"""Thread control for the two thread pools convnet's fast path uses: Numba's and BLAS's.

Both pools busy-wait for a while after finishing work. On a laptop with a few cores, a Numba
``prange`` kernel that runs right after a BLAS GEMM (and vice versa) then competes with the
other pool's spinning threads, which was measured to slow conv down by up to 2x. Giving both
pools the same, modest thread count (the number of physical cores) avoids most of it;
:func:`set_num_threads` does that in one call.

BLAS threads are set through ``threadpoolctl`` when it is installed, otherwise through the
``openblas_set_num_threads`` entry point (any of its symbol spellings: plain, ``64_``-suffixed,
``scipy_``-prefixed) of every OpenBLAS library loaded in this process, found via ctypes. Other
BLAS libraries are left alone without ``threadpoolctl``.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

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
    """Use ``n`` threads in Numba kernels and in BLAS (matrix products).

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
