"""Convolution with Numba kernels: the fast path (PLACEHOLDER being rewritten; see below)."""

from __future__ import annotations

import threading

import numpy as np

from convnet.layers.conv_naive import (
    ConvGeometry,
    check_cache,
    check_conv_inputs,
    check_dout,
    conv_geometry,
)

try:
    from numba import njit, prange

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba installed
    NUMBA_AVAILABLE = False

#: Elements of the per-chunk column buffer (C*HH*WW + 1 rows by chunk pixels). 2**20 float32
#: values are 4 MiB: big enough for efficient GEMMs, small enough to stay in the L2/L3 caches.
CHUNK_ELEMENTS = 1 << 20

#: Below this many elements a kernel runs on one thread: waking a thread pool costs more than
#: it saves (and on a busy machine a parallel region waits for a descheduled worker).
PARALLEL_MIN = 1 << 16

if NUMBA_AVAILABLE:

    @njit(cache=True, inline="always")
    def _valid_range(off: int, s: int, size: int, n_out: int) -> tuple[int, int]:
        """Output indices ``o`` in ``[lo, hi)`` read inside the image: ``0 <= o*s + off < size``."""
        lo = 0 if off >= 0 else (-off + s - 1) // s
        top = size - 1 - off
        hi = 0 if top < 0 else top // s + 1
        if hi > n_out:
            hi = n_out
        if lo > hi:
            lo = hi
        return lo, hi

    @njit(cache=True, inline="always")
    def _im2col_one(x, n0, k, c, y0, y1, HH, WW, s, p, d, W_out, cols):
        """Rows of channel ``c`` of image ``n0+k`` in ``cols[k]`` (see ``_im2col_chunk``)."""
        H, W = x.shape[2], x.shape[3]
        n = n0 + k
        for i in range(HH):
            for j in range(WW):
                r = (c * HH + i) * WW + j
                ix0 = j * d - p
                lo, hi = _valid_range(ix0, s, W, W_out)
                for y in range(y0, y1):
                    iy = y * s - p + i * d
                    base = (y - y0) * W_out
                    if iy < 0 or iy >= H:
                        for xo in range(W_out):
                            cols[k, r, base + xo] = 0
                    else:
                        for xo in range(lo):
                            cols[k, r, base + xo] = 0
                        if s == 1:  # the common case: a contiguous run LLVM vectorises
                            for xo in range(lo, hi):
                                cols[k, r, base + xo] = x[n, c, iy, xo + ix0]
                        else:
                            for xo in range(lo, hi):
                                cols[k, r, base + xo] = x[n, c, iy, xo * s + ix0]
                        for xo in range(hi, W_out):
                            cols[k, r, base + xo] = 0

    @njit(cache=True, inline="always")
    def _ones_rows(k, first, cols):
        for r in range(first, cols.shape[1]):
            for q in range(cols.shape[2]):
                cols[k, r, q] = 1

    @njit(cache=True)
    def _im2col_serial(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols):
        C = x.shape[1]
        for k in range(nb):
            for c in range(C):
                _im2col_one(x, n0, k, c, y0, y1, HH, WW, s, p, d, W_out, cols)
            _ones_rows(k, C * HH * WW, cols)

    @njit(cache=True, parallel=True)
    def _im2col_parallel(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols):
        C = x.shape[1]
        for t in prange(nb * C):
            k = t // C
            c = t - k * C
            _im2col_one(x, n0, k, c, y0, y1, HH, WW, s, p, d, W_out, cols)
            if c == 0:
                _ones_rows(k, C * HH * WW, cols)

    @njit(cache=True, inline="always")
    def _col2im_one(dcols, n0, k, c, y0, y1, HH, WW, s, p, d, W_out, dx):
        """``dx[n0+k, c] +=`` the adjoint of ``_im2col_one`` applied to ``dcols[k]``."""
        H, W = dx.shape[2], dx.shape[3]
        n = n0 + k
        for i in range(HH):
            for j in range(WW):
                r = (c * HH + i) * WW + j
                ix0 = j * d - p
                lo, hi = _valid_range(ix0, s, W, W_out)
                for y in range(y0, y1):
                    iy = y * s - p + i * d
                    if iy >= 0 and iy < H:
                        base = (y - y0) * W_out
                        if s == 1:
                            for xo in range(lo, hi):
                                dx[n, c, iy, xo + ix0] += dcols[k, r, base + xo]
                        else:
                            for xo in range(lo, hi):
                                dx[n, c, iy, xo * s + ix0] += dcols[k, r, base + xo]

    @njit(cache=True)
    def _col2im_serial(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx):
        for k in range(nb):
            for c in range(dx.shape[1]):
                _col2im_one(dcols, n0, k, c, y0, y1, HH, WW, s, p, d, W_out, dx)

    @njit(cache=True, parallel=True)
    def _col2im_parallel(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx):
        # Each (image, channel) pair owns its own slice of dx: no two iterations write alike.
        C = dx.shape[1]
        for t in prange(nb * C):
            k = t // C
            _col2im_one(dcols, n0, k, t - k * C, y0, y1, HH, WW, s, p, d, W_out, dx)

    def _im2col_chunk(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols):
        """Fill ``cols[k, (c*HH+i)*WW+j, (y-y0)*W'+xo]`` for images ``n0+k``, ``k < nb``.

        ``cols`` has shape (nb, R, (y1-y0)*W') with ``R >= C*HH*WW``; rows from ``C*HH*WW`` on
        are set to 1 (the bias row). Padding is fused: out-of-image taps write zeros, so ``x``
        is never padded in memory.
        """
        kernel = _im2col_parallel if cols.size >= PARALLEL_MIN else _im2col_serial
        kernel(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols)

    def _col2im_chunk(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx):
        """Adjoint of :func:`_im2col_chunk`: ``dx[n0+k] += col2im(dcols[k])`` for rows y0..y1."""
        kernel = _col2im_parallel if dcols.size >= PARALLEL_MIN else _col2im_serial
        kernel(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx)


def _im2col_chunk_numpy(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols):
    """Pure-NumPy stand-in for ``_im2col_chunk`` (same contract; memory not bounded)."""
    from convnet.layers.conv_im2col import im2col

    CKK = x.shape[1] * HH * WW
    full = im2col(x[n0 : n0 + nb], HH, WW, s, p, d).reshape(CKK, nb, -1, W_out)
    cols[:, :CKK] = full[:, :, y0:y1].transpose(1, 0, 2, 3).reshape(nb, CKK, -1)
    cols[:, CKK:] = 1


def _col2im_chunk_numpy(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx):
    """Pure-NumPy stand-in for ``_col2im_chunk`` (same contract; memory not bounded)."""
    from convnet.layers.conv_im2col import col2im

    CKK = dcols.shape[1]
    H_out = (dx.shape[2] + 2 * p - d * (HH - 1) - 1) // s + 1
    full = np.zeros((CKK, nb, H_out, W_out), dtype=dcols.dtype)
    full[:, :, y0:y1] = dcols.reshape(nb, CKK, y1 - y0, W_out).transpose(1, 0, 2, 3)
    dx[n0 : n0 + nb] += col2im(full.reshape(CKK, -1), (nb,) + dx.shape[1:], HH, WW, s, p, d)


if not NUMBA_AVAILABLE:  # pragma: no cover - only without numba installed
    _im2col_chunk = _im2col_chunk_numpy
    _col2im_chunk = _col2im_chunk_numpy


class _Workspace(threading.local):
    """Per-thread scratch buffers reused across calls (avoids page faults of fresh mmaps)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        size = int(np.prod(shape))
        key = (name, np.dtype(dtype).str)
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.buffers[key] = buf
        return buf[:size].reshape(shape)


_WS = _Workspace()


def _chunks(N: int, H_out: int, W_out: int, rows: int, budget: int):
    """Split the output into ``(n0, nb, y0, y1)`` blocks of at most ``budget`` column entries.

    Whole images are grouped while ``rows * nb * H'*W' <= budget``; an image too large for the
    budget is split into bands of output rows (at least one row per band).
    """
    per_image = rows * H_out * W_out
    if per_image <= budget:
        nb = max(1, budget // per_image)
        for n0 in range(0, N, nb):
            yield n0, min(nb, N - n0), 0, H_out
    else:
        band = max(1, budget // (rows * W_out))
        for n in range(N):
            for y0 in range(0, H_out, band):
                yield n, 1, y0, min(H_out, y0 + band)


def conv_apply(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry) -> np.ndarray:
    """``out = conv(x, w) + b`` for validated, C-contiguous inputs of one dtype.

    Shapes as in :func:`conv_forward_numba`; ``b`` may be None (no bias). Extra memory: one
    column chunk of at most ``max(CHUNK_ELEMENTS, (C*HH*WW+1)*W')`` entries besides ``out``.
    """
    CKK = g.C * g.HH * g.WW
    w2 = np.empty((g.F, CKK + 1), dtype=x.dtype)
    w2[:, :CKK] = w.reshape(g.F, CKK)
    w2[:, CKK] = 0 if b is None else b
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    out3 = out.reshape(g.N, g.F, g.H_out * g.W_out)
    P = g.W_out
    for n0, nb, y0, y1 in _chunks(g.N, g.H_out, g.W_out, CKK + 1, CHUNK_ELEMENTS):
        cols = _WS.get("cols", (nb, CKK + 1, (y1 - y0) * P), x.dtype)
        _im2col_chunk(x, n0, nb, y0, y1, g.HH, g.WW, g.stride, g.pad, g.dilation, P, cols)
        # The ones row of cols times the last column of w2 adds the bias inside the GEMM.
        np.matmul(w2, cols, out=out3[n0 : n0 + nb, :, y0 * P : y1 * P])
    return out


def conv_data_grad(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Gradient of ``conv(x, w)`` with respect to ``x``: the adjoint of :func:`conv_apply`.

    Inputs: dout (N, F, H', W') C-contiguous; w (F, C, HH, WW). Returns dx (N, C, H, W).
    Extra memory: one chunk of at most ``max(CHUNK_ELEMENTS, C*HH*WW*W')`` entries.
    """
    CKK = g.C * g.HH * g.WW
    dout3 = dout.reshape(g.N, g.F, g.H_out * g.W_out)
    wT = np.ascontiguousarray(w.reshape(g.F, CKK).T)
    dx = np.zeros((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    P = g.W_out
    for n0, nb, y0, y1 in _chunks(g.N, g.H_out, g.W_out, CKK, CHUNK_ELEMENTS):
        dcols = _WS.get("dcols", (nb, CKK, (y1 - y0) * P), dout.dtype)
        np.matmul(wT, dout3[n0 : n0 + nb, :, y0 * P : y1 * P], out=dcols)
        _col2im_chunk(dcols, n0, nb, y0, y1, g.HH, g.WW, g.stride, g.pad, g.dilation, P, dx)
    return dx


def conv_weight_grad(
    x: np.ndarray, dout: np.ndarray, g: ConvGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``conv(x, w) + b`` with respect to ``w`` (F, C, HH, WW) and ``b`` (F,).

    Inputs: x (N, C, H, W) and dout (N, F, H', W'), both C-contiguous.
    Extra memory: one column chunk, as in :func:`conv_apply`.
    """
    CKK = g.C * g.HH * g.WW
    dout3 = dout.reshape(g.N, g.F, g.H_out * g.W_out)
    dw2 = np.zeros((g.F, CKK + 1), dtype=x.dtype)
    P = g.W_out
    for n0, nb, y0, y1 in _chunks(g.N, g.H_out, g.W_out, CKK + 1, CHUNK_ELEMENTS):
        cols = _WS.get("cols", (nb, CKK + 1, (y1 - y0) * P), x.dtype)
        _im2col_chunk(x, n0, nb, y0, y1, g.HH, g.WW, g.stride, g.pad, g.dilation, P, cols)
        d = dout3[n0 : n0 + nb, :, y0 * P : y1 * P]
        # The ones row of cols makes the last column of dw2 the bias gradient.
        dw2 += np.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0)
    return dw2[:, :CKK].reshape(g.F, g.C, g.HH, g.WW).copy(), dw2[:, CKK].copy()


def conv_forward_numba(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a convolutional layer with Numba kernels.

    Inputs:
    - x: input data of shape (N, C, H, W).
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: {'stride': s, 'pad': p, 'dilation': d (optional, default 1)}.

    Returns a tuple of:
    - out: output of shape (N, F, H', W'), same dtype as the inputs.
    - cache: ('numba', x, w, b, conv_param) for :func:`conv_backward_numba`.
    """
    if not NUMBA_AVAILABLE:
        from convnet.layers.conv_im2col import conv_forward_im2col

        return conv_forward_im2col(x, w, b, conv_param)
    x, w, b, g = check_conv_inputs("conv_forward_numba", x, w, b, conv_param)
    x = np.ascontiguousarray(x)
    return conv_apply(x, w, b, g), ("numba", x, w, b, dict(conv_param))


def conv_backward_numba(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_numba`.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: from :func:`conv_forward_numba`.

    Returns a tuple of:
    - dx: shape (N, C, H, W); dw: shape (F, C, HH, WW); db: shape (F,).
    """
    if not NUMBA_AVAILABLE:
        from convnet.layers.conv_im2col import conv_backward_im2col

        return conv_backward_im2col(dout, cache)
    _, x, w, b, conv_param = check_cache("conv_backward_numba", cache, "numba", 5)
    g = conv_geometry("conv_backward_numba", x, w, b, conv_param)
    dout = check_dout("conv_backward_numba", dout, (g.N, g.F, g.H_out, g.W_out), x.dtype)
    dout = np.ascontiguousarray(dout)
    dw, db = conv_weight_grad(x, dout, g)
    return conv_data_grad(dout, w, g), dw, db
