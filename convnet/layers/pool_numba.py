"""Max pooling with Numba kernels: one pass over the input that stores the argmax.

Same semantics as ``pool_naive`` (``pool_param``, output sizes, first-maximum tie rule,
accumulation over overlapping windows). The forward kernel keeps, for every window, the
running maximum over its cells in row-major order with a strict ``>`` (so the first maximum
wins) and stores the flat index ``h * W + w`` of the winner in an int32 array. The backward kernel
scatters ``dout`` into a zeroed ``dx`` through those indices with ``+=``.

Both kernels are parallel over the N*C feature planes (planes are independent, so the
backward scatter needs no atomics even when windows overlap). Small inputs run on the
calling thread only; large ones on whichever of the two has measured faster in this process
(see ``_LaunchChooser``: on oversubscribed cores the parallel launch can be 10x slower).
Kernels are compiled for float32 and float64 on first use and cached on disk
(``cache=True``); float16 inputs are pooled in float32 (the maximum is exact) and the
results cast back.

Without Numba installed, both functions fall back to the NumPy (im2col) implementation.
"""

from __future__ import annotations

import time

import numpy as np

from convnet.layers._validate import check_dout, check_max_pool_inputs
from convnet.layers.pool_im2col import max_pool_backward_im2col, max_pool_forward_im2col

try:
    import numba
    from numba import njit, prange

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba
    NUMBA_AVAILABLE = False

#: Below these sizes (elements of x) a kernel always runs on the calling thread: waking the
#: thread team costs more than the serial kernel takes (well under a millisecond here). The
#: scatter of the backward pass does ~1/9 of the forward's work, hence its higher threshold.
PARALLEL_MIN_FORWARD = 1 << 19
PARALLEL_MIN_BACKWARD = 1 << 22
#: Above the thresholds, re-measure the slower launch mode every this many calls.
EXPLORE_EVERY = 64


class _LaunchChooser:
    """Run a large kernel in parallel or on one thread, whichever has measured faster.

    Pooling is memory-bound and short (about a millisecond), so its parallel speed-up on an
    idle machine is modest (~2x), while on oversubscribed cores (a laptop busy with other
    work, a shared CI box) every parallel region waits for a descheduled team thread: measured
    here, 24-30 ms instead of 0.3-2 ms serial. Results are identical either way (planes are
    independent), so we keep an exponential moving average of seconds per element for each
    mode and pick the faster, re-trying the other every EXPLORE_EVERY calls. Calls that
    compile a new signature are not recorded.
    """

    def __init__(self) -> None:
        self.ema: dict[bool, float | None] = {True: None, False: None}
        self.calls = 0

    def choose(self) -> bool:
        self.calls += 1
        for mode in (True, False):
            if self.ema[mode] is None:
                return mode
        best = self.ema[True] <= self.ema[False]  # type: ignore[operator]
        return (not best) if self.calls % EXPLORE_EVERY == 0 else best

    def record(self, mode: bool, seconds: float, size: int) -> None:
        v = seconds / max(size, 1)
        e = self.ema[mode]
        self.ema[mode] = v if e is None else 0.7 * e + 0.3 * v


_choosers: dict[str, _LaunchChooser] = {}


def _launch(kernel, size: int, threshold: int, *args) -> None:
    """Call a ``parallel=True`` kernel on the thread team or on the calling thread only."""
    n = numba.get_num_threads()
    if n == 1:
        kernel(*args)
        return
    if size < threshold:
        parallel = False
        chooser = None
    else:
        chooser = _choosers.setdefault(kernel.__name__, _LaunchChooser())
        parallel = chooser.choose()
    n_sigs = len(kernel.signatures)
    t0 = time.perf_counter()
    if parallel:
        kernel(*args)
    else:
        numba.set_num_threads(1)
        try:
            kernel(*args)
        finally:
            numba.set_num_threads(n)
    if chooser is not None and len(kernel.signatures) == n_sigs:
        chooser.record(parallel, time.perf_counter() - t0, size)


if NUMBA_AVAILABLE:

    @njit(cache=True, parallel=True, fastmath=False)
    def _pool_fwd_kernel(x, out, arg, ph, pw, s, p):  # pragma: no cover - compiled
        # Any window/stride/pad/ceil: one window at a time, clipped to the real pixels, started
        # on its first real pixel. (Sweeping window offsets along whole output rows instead
        # was measured 2-3x slower: the conditional stores to out/arg defeat vectorisation.)
        NC, H, W = x.shape
        Ho, Wo = out.shape[1], out.shape[2]
        for nc in prange(NC):
            for i in range(Ho):
                h0 = i * s - p
                h1 = min(h0 + ph, H)
                h0 = max(h0, 0)
                for j in range(Wo):
                    w0 = j * s - p
                    w1 = min(w0 + pw, W)
                    w0 = max(w0, 0)
                    best = x[nc, h0, w0]
                    bi = h0 * W + w0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            v = x[nc, h, w]
                            if v > best:
                                best = v
                                bi = h * W + w
                    out[nc, i, j] = best
                    arg[nc, i, j] = bi

    @njit(cache=True, parallel=True, fastmath=False)
    def _pool_fwd_2x2_kernel(x, out, arg):  # pragma: no cover - compiled
        # 2x2 stride 2, no padding, windows inside x: the common case, fully unrolled.
        NC, H, W = x.shape
        Ho, Wo = out.shape[1], out.shape[2]
        for nc in prange(NC):
            for i in range(Ho):
                h = 2 * i
                for j in range(Wo):
                    w = 2 * j
                    best = x[nc, h, w]
                    bi = h * W + w
                    v = x[nc, h, w + 1]
                    if v > best:
                        best = v
                        bi = h * W + w + 1
                    v = x[nc, h + 1, w]
                    if v > best:
                        best = v
                        bi = (h + 1) * W + w
                    v = x[nc, h + 1, w + 1]
                    if v > best:
                        best = v
                        bi = (h + 1) * W + w + 1
                    out[nc, i, j] = best
                    arg[nc, i, j] = bi

    @njit(cache=True, parallel=True, fastmath=False)
    def _pool_bwd_kernel(dout, arg, dx):  # pragma: no cover - compiled
        NC, K = dout.shape
        HW = dx.shape[1]
        for nc in prange(NC):
            # Zero one plane right before scattering into it, while it is in cache.
            for q in range(HW):
                dx[nc, q] = 0
            for k in range(K):
                dx[nc, arg[nc, k]] += dout[nc, k]


def _work_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def max_pool_forward_numba(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling forward pass (Numba kernel, parallel over the N*C planes).

    Inputs:
    - x: input of shape (N, C, H, W), float dtype
    - pool_param: {'pool_height', 'pool_width', 'stride', 'pad': 0, 'ceil_mode': False}

    Returns a tuple of:
    - out: (N, C, H', W'), dtype of x
    - cache: (geometry, flat argmax indices (N*C, H'*W') int32, dtype) for the backward pass
    """
    if not NUMBA_AVAILABLE:  # pragma: no cover
        out, cache = max_pool_forward_im2col(x, pool_param)
        return out, ("im2col", cache)
    x, g = check_max_pool_inputs("max_pool_forward_numba", x, pool_param)
    wd = _work_dtype(x.dtype)
    xw = np.ascontiguousarray(x, dtype=wd).reshape(g.N * g.C, g.H, g.W)
    out = np.empty((g.N * g.C, g.H_out, g.W_out), dtype=wd)
    arg = np.empty((g.N * g.C, g.H_out, g.W_out), dtype=np.int32)
    if (
        g.ph == 2
        and g.pw == 2
        and g.stride == 2
        and g.pad == 0
        and 2 * g.H_out <= g.H
        and 2 * g.W_out <= g.W
    ):
        _launch(_pool_fwd_2x2_kernel, x.size, PARALLEL_MIN_FORWARD, xw, out, arg)
    else:
        _launch(_pool_fwd_kernel, x.size, PARALLEL_MIN_FORWARD, xw, out, arg,
                g.ph, g.pw, g.stride, g.pad)
    out = out.reshape(g.N, g.C, g.H_out, g.W_out).astype(x.dtype, copy=False)
    return out, (g, arg, x.dtype)


def max_pool_backward_numba(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling backward pass (Numba scatter-add through the stored argmax).

    Inputs:
    - dout: upstream gradient (N, C, H', W')
    - cache: from max_pool_forward_numba

    Returns:
    - dx: (N, C, H, W), dtype of the forward input; overlapping windows accumulate.
    """
    if cache and isinstance(cache[0], str):  # pragma: no cover - numba missing
        return max_pool_backward_im2col(dout, cache[1])
    g, arg, dtype = cache
    dout = check_dout("max_pool_backward_numba", dout, (g.N, g.C, g.H_out, g.W_out),
                      "(N, C, H', W')")
    wd = _work_dtype(dtype)
    NC = g.N * g.C
    d = np.ascontiguousarray(dout, dtype=wd).reshape(NC, g.H_out * g.W_out)
    # The kernel zeroes each plane itself: in parallel, and without a separate memset pass.
    dx = np.empty((NC, g.H * g.W), dtype=wd)
    _launch(_pool_bwd_kernel, dx.size, PARALLEL_MIN_BACKWARD, d,
            arg.reshape(NC, g.H_out * g.W_out), dx)
    return dx.reshape(g.N, g.C, g.H, g.W).astype(dtype, copy=False)
