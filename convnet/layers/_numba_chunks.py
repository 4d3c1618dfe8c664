"""Chunks, scratch buffers and worker threads shared by the Numba conv backends.

Both ``conv_numba`` (im2col + GEMM) and ``conv_winograd`` cut their work into chunks (groups
of whole images, or bands of rows of one image) small enough that a chunk's scratch buffer
stays in cache between the kernel that fills it and the GEMM that reads it, and spread the
chunks over convnet's worker threads. Each worker runs a GIL-free Numba kernel and a
single-threaded GEMM on its own chunk: Numba's ``prange`` plus a multithreaded BLAS would
alternate two thread pools that each busy-wait after their parallel region, measured to cost
up to 2x on a few cores (and far more on a loaded machine); see ``convnet._threads``.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from convnet._threads import single_threaded_blas, worker_threads

try:
    from numba import njit

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - only without numba: the kernels then run as Python
    NUMBA_AVAILABLE = False

    def njit(*args: Any, **kwargs: Any) -> Any:
        return (lambda f: f) if not args or not callable(args[0]) else args[0]


#: Below this many multiply-adds a convolution runs on the calling thread: handing chunks to
#: worker threads costs tens of microseconds.
PARALLEL_MIN_FLOPS = 1 << 21


class Workspace(threading.local):
    """Per-thread scratch buffers reused across calls (avoids page faults of fresh mmaps)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        # math.prod: np.prod on a tuple costs ~25 us, and a training step asks hundreds of times
        size = math.prod(shape)
        key = (name, np.dtype(dtype).str)
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.buffers[key] = buf
        return buf[:size].reshape(shape)


#: The scratch buffers of the calling thread (each backend uses its own buffer names).
WORKSPACE = Workspace()


def chunks(
    N: int, H: int, W: int, rows: int, budget: int, min_chunks: int = 1
) -> Iterator[tuple[int, int, int, int]]:
    """Split N images of H x W output positions into ``(n0, nb, y0, y1)`` blocks: images
    ``n0 .. n0+nb-1``, position rows ``y0 .. y1-1``, each block at most ``budget`` entries
    of a scratch buffer with ``rows`` entries per position.

    Whole images are grouped while ``rows * nb * H * W <= budget`` and while there are at
    least ``min_chunks`` blocks (so that every worker thread gets work). An image too large
    for the budget, or too few images for ``min_chunks`` blocks, is split into bands of rows
    (at least one row per band).
    """
    per_image = rows * H * W
    if per_image <= budget and N >= min_chunks:
        nb = max(1, min(budget // per_image, -(-N // min_chunks)))
        for n0 in range(0, N, nb):
            yield n0, min(nb, N - n0), 0, H
    else:
        band = max(1, budget // (rows * W))
        bands_per_image = -(-min_chunks // N)
        band = max(1, min(band, H // bands_per_image))
        for n in range(N):
            for y0 in range(0, H, band):
                yield n, 1, y0, min(H, y0 + band)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)


def executor(n: int) -> ThreadPoolExecutor:
    """A shared pool of ``n`` worker threads.

    Rebuilt when the thread count changes, and in a forked child process (whose copy of the
    pool has no threads behind it: submitting to it would wait forever).
    """
    global _pool, _pool_key
    key = (n, os.getpid())
    with _pool_lock:
        if _pool is None or _pool_key != key:
            if _pool is not None and _pool_key[1] == key[1]:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="convnet")
            _pool_key = key
        return _pool


def run_chunks(
    work: Callable[[tuple[int, int, int, int]], np.ndarray | None],
    N: int, H: int, W: int, rows: int, budget: int, flops: int,
) -> np.ndarray | None:
    """Apply ``work`` to every block of :func:`chunks`, on worker threads when the layer does
    at least ``PARALLEL_MIN_FLOPS`` multiply-adds; return the sum of the results (None when
    ``work`` returns None).

    Results are added up in chunk order as they arrive, not collected first: that keeps the
    sum deterministic whatever the thread count, and memory at a few partial sums instead of
    one per chunk. Each result must be a fresh array (it is added into).
    """
    n = worker_threads() if flops >= PARALLEL_MIN_FLOPS else 1
    blocks = list(chunks(N, H, W, rows, budget, 2 * n if n > 1 else 1))
    total = None
    # Single-threaded BLAS on the serial path too: small GEMMs gain little from threads, and
    # a busy-waiting BLAS pool on a loaded machine made them up to 100x slower.
    with single_threaded_blas() as reached:
        if n == 1 or len(blocks) == 1 or not reached:
            # (not reached: BLAS threads unknown, so let BLAS parallelise one chunk at a time)
            results = map(work, blocks)
        else:
            results = executor(n).map(work, blocks)
        for r in results:
            if r is not None:
                if total is None:
                    total = r
                else:
                    total += r
    return total
