"""Convolution with Numba kernels: the fast path.

Design (float32 training speed on a few CPU cores, bounded memory):

* **Chunked im2col + GEMM.** The output is cut into chunks (``_numba_chunks.chunks``): groups
  of whole images, or bands of output rows of one image when an image alone is too big. Per chunk a
  Numba kernel writes the columns (``cols[k, (c*HH+i)*WW+j, pixel]``, the layout of
  ``conv_im2col``, one block per image) with the zero padding fused in, and one GEMM per image
  consumes them while they are still in cache: ``out[n] = [w | b] @ [cols; 1]`` writes straight
  into the NCHW output (the bias rides along as a row of ones, so no extra pass). Short,
  wide columns (few input channels, large images) go to the GEMM in bands of about 128
  output pixels, which OpenBLAS runs faster (``BAND_PIXELS``).
* **Few filters** (at most ``DIRECT_MAX_FILTERS``, stride 1): forward, ``dw`` and ``dx`` are
  direct stencils instead (one scaled row added per filter tap): a GEMM with so few rows is
  memory-bound, and im2col would move ``C*HH*WW`` entries per pixel for F multiply-adds.
* **Backward** recomputes the columns chunk by chunk rather than keeping them from the forward
  pass (that would cost ``HH*WW`` times the input): ``[dw | db] += dout[n] @ [cols; 1]^T`` and
  ``dcols = w^T @ dout[n]`` followed by the ``col2im`` kernel (its exact adjoint).
* **Memory bound.** Besides the inputs, outputs and gradients themselves, each worker thread
  keeps one im2col and one col2im buffer (reused across calls), each of at most
  ``max(CHUNK_ELEMENTS, (C*HH*WW + 1) * W')`` elements (2 MiB of float32 by default; the
  second term is one output row, the smallest band). A batch-1 1000x1000x3 image with 64 3x3
  filters (256 MB float32 output) thus needs at most 4 buffers of 2 MiB extra on 2 threads,
  whatever the image size.
* **Threads.** Chunks are spread over ``convnet.set_num_threads(n)`` worker threads; each runs a
  GIL-free Numba kernel and a single-threaded GEMM. No ``prange``: alternating Numba's thread
  pool with BLAS's was measured to oversubscribe the cores (see ``convnet._threads``). Small
  convolutions (< ``_numba_chunks.PARALLEL_MIN_FLOPS`` multiply-adds) stay on the calling
  thread.
* **Kernels** index flat views with unsigned integers, so Numba emits no negative-index checks
  and LLVM vectorises the row copies; stride, padding and dilation are all supported.
* **Compilation** is cached on disk (``cache=True``): the first call after installing compiles
  the two kernels per dtype (a few seconds), later processes load them in milliseconds.

Without Numba, the same code runs with pure-NumPy stand-ins of the two kernels (slower, and
without the memory bound); ``conv_forward`` then prefers the ``im2col`` backend anyway.
"""

from __future__ import annotations

import threading

import numpy as np

from convnet.layers._geometry import ConvGeometry, out_size
from convnet.layers._numba_chunks import NUMBA_AVAILABLE, WORKSPACE, njit, run_chunks
from convnet.layers._validate import check_cache, check_conv_inputs, check_dout, conv_geometry

if NUMBA_AVAILABLE:
    from numba import uint64

#: Elements of the per-chunk column buffer (C*HH*WW + 1 rows by chunk pixels). 2**19 float32
#: values are 2 MiB: big enough for efficient GEMMs, small enough to stay in the L2/L3 caches
#: between im2col and the GEMM (2**18..2**19 measured best on the five benchmark shapes).
CHUNK_ELEMENTS = 1 << 19

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

    # The kernels index flat views with unsigned integers: Numba then emits no negative-index
    # wraparound checks, and LLVM vectorises the row copies (measured 7x faster than 4-D
    # indexing, and faster than NumPy's strided copy).

    @njit(cache=True, nogil=True, inline="always")
    def _copy_row(xf, s0, s, cf, d0, lo, hi, W_out):
        """One row of columns: zeros, ``xf[s0 + t*s]`` for output ``lo <= t < hi``, zeros."""
        zero = cf.dtype.type(0)
        for t in range(lo):
            cf[d0 + uint64(t)] = zero
        dd = d0 + uint64(lo)
        if s == 1:
            for t in range(hi - lo):
                cf[dd + uint64(t)] = xf[s0 + uint64(t)]
        else:
            us = uint64(s)
            for t in range(hi - lo):
                cf[dd + uint64(t)] = xf[s0 + uint64(t) * us]
        for t in range(hi, W_out):
            cf[d0 + uint64(t)] = zero

    @njit(cache=True, nogil=True)
    def _im2col_chunk(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols):
        """Fill the columns of output rows y0..y1 of images ``n0+k``, ``k < nb``.

        ``cols`` (nb * nbands, R, band_rows * W') is C-contiguous, ``R >= C*HH*WW``: the rows
        are cut into ``nbands = (y1-y0) / band_rows`` bands and block ``k * nbands + band``
        holds ``cols[., (c*HH+i)*WW+j, (y-y0-band*band_rows)*W'+xo]`` (one band of
        ``(y1-y0)`` rows is the plain layout ``(nb, R, (y1-y0)*W')``). Rows from ``C*HH*WW``
        on are set to 1 (the bias row). Padding is fused: out-of-image taps write zeros, so
        ``x`` is never padded in memory. Runs without the GIL.
        """
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        R, L = cols.shape[1], cols.shape[2]
        band_rows = L // W_out
        nbands = (y1 - y0) // band_rows
        xf = x.reshape(-1)
        cf = cols.reshape(-1)
        zero = cols.dtype.type(0)
        for k in range(nb):
            n = n0 + k
            for c in range(C):
                for i in range(HH):
                    for j in range(WW):
                        ix0 = j * d - p
                        lo, hi = _valid_range(ix0, s, W, W_out)
                        row = (c * HH + i) * WW + j
                        for band in range(nbands):
                            b0 = ((k * nbands + band) * R + row) * L
                            for r in range(band_rows):
                                y = y0 + band * band_rows + r
                                d0 = uint64(b0 + r * W_out)
                                iy = y * s - p + i * d
                                if iy < 0 or iy >= H:
                                    for t in range(W_out):
                                        cf[d0 + uint64(t)] = zero
                                    continue
                                _copy_row(xf, uint64(((n * C + c) * H + iy) * W + ix0 + lo * s),
                                          s, cf, d0, lo, hi, W_out)
        _fill_rows(cols, C * HH * WW, 1)

    @njit(cache=True, nogil=True, inline="always")
    def _fill_rows(cols, first, value):
        """``cols[:, first:, :] = value`` for a C-contiguous 3-D ``cols`` (the bias rows)."""
        blocks, R, L = cols.shape
        cf = cols.reshape(-1)
        v = cols.dtype.type(value)
        for blk in range(blocks):
            for q in range(uint64((blk * R + first) * L), uint64((blk + 1) * R * L)):
                cf[q] = v

    @njit(cache=True, nogil=True)
    def _col2im_chunk(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx):
        """Adjoint of :func:`_im2col_chunk`: ``dx[n0+k] += col2im(dcols[k])`` for rows y0..y1.

        ``dcols`` (nb, R, (y1-y0)*W') with ``R >= C*HH*WW`` (extra rows ignored) and ``dx``
        (N, C, H, W) are C-contiguous.
        """
        C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
        R, L = dcols.shape[1], dcols.shape[2]
        xf = dx.reshape(-1)
        cf = dcols.reshape(-1)
        us = uint64(s)
        for k in range(nb):
            n = n0 + k
            for c in range(C):
                for i in range(HH):
                    for j in range(WW):
                        ix0 = j * d - p
                        lo, hi = _valid_range(ix0, s, W, W_out)
                        if lo == hi:
                            continue
                        dbase = ((k * R + (c * HH + i) * WW + j) * L) - y0 * W_out + lo
                        for y in range(y0, y1):
                            iy = y * s - p + i * d
                            if iy < 0 or iy >= H:
                                continue
                            dd = uint64(dbase + y * W_out)
                            s0 = uint64(((n * C + c) * H + iy) * W + ix0 + lo * s)
                            if s == 1:
                                for t in range(hi - lo):
                                    xf[s0 + uint64(t)] += cf[dd + uint64(t)]
                            else:
                                for t in range(hi - lo):
                                    xf[s0 + uint64(t) * us] += cf[dd + uint64(t)]


def _im2col_chunk_numpy(x, n0, nb, y0, y1, HH, WW, s, p, d, W_out, cols):
    """Pure-NumPy stand-in for ``_im2col_chunk`` (same contract; memory not bounded)."""
    from convnet.layers.conv_im2col import im2col

    CKK = x.shape[1] * HH * WW
    band_rows = cols.shape[2] // W_out
    nbands = (y1 - y0) // band_rows
    full = im2col(x[n0 : n0 + nb], HH, WW, s, p, d).reshape(CKK, nb, -1, W_out)[:, :, y0:y1]
    banded = full.reshape(CKK, nb, nbands, band_rows * W_out).transpose(1, 2, 0, 3)
    cols[:, :CKK] = banded.reshape(nb * nbands, CKK, band_rows * W_out)
    cols[:, CKK:] = 1


def _col2im_chunk_numpy(dcols, n0, nb, y0, y1, HH, WW, s, p, d, W_out, dx):
    """Pure-NumPy stand-in for ``_col2im_chunk`` (same contract; memory not bounded)."""
    from convnet.layers.conv_im2col import col2im

    CKK = dcols.shape[1]
    H_out = out_size(dx.shape[2], HH, s, p, d)
    full = np.zeros((CKK, nb, H_out, W_out), dtype=dcols.dtype)
    full[:, :, y0:y1] = dcols.reshape(nb, CKK, y1 - y0, W_out).transpose(1, 0, 2, 3)
    dx[n0 : n0 + nb] += col2im(full.reshape(CKK, -1), (nb,) + dx.shape[1:], HH, WW, s, p, d)


if not NUMBA_AVAILABLE:  # pragma: no cover - only without numba installed
    _im2col_chunk = _im2col_chunk_numpy
    _col2im_chunk = _col2im_chunk_numpy


#: An image's forward GEMM is cut into bands of output rows of about ``BAND_PIXELS`` pixels
#: when its columns have few rows (``C*HH*WW + 1 <= BAND_MAX_ROWS``) but many pixels (more
#: than ``BAND_MIN_BYTES``). OpenBLAS then packs the right-hand side in panels that stay in
#: the L2 cache. Measured (float32, 1 thread, CPU time, 32 filters): C3 7x7 on 32x32 (the
#: CIFAR-10 net's first layer, N50) 9.5-10.0 -> 6.7 ms; C3 5x5 on 64x64 and C16 3x3 on 32x32
#: about 30% less; with taller columns (C32 3x3, C64 3x3) bands were 2-5% slower, so those
#: stay whole.
BAND_PIXELS = 128
BAND_MAX_ROWS = 256
BAND_MIN_BYTES = 1 << 18


def _band_rows(n_rows: int, W_out: int, col_rows: int, itemsize: int) -> int:
    """Output rows per GEMM band for a chunk of ``n_rows`` rows: a divisor of ``n_rows``."""
    if col_rows > BAND_MAX_ROWS or n_rows * W_out * col_rows * itemsize <= BAND_MIN_BYTES:
        return n_rows
    best = 1
    for r in range(1, n_rows + 1):
        if n_rows % r == 0 and r * W_out <= BAND_PIXELS:
            best = r
    return best


def _run(work, g: ConvGeometry, rows: int) -> np.ndarray | None:
    """Run ``work`` on every chunk of the output (``rows`` column-buffer entries per output
    pixel), on worker threads when it pays; return the sum of its results."""
    flops = g.N * g.F * rows * g.H_out * g.W_out
    return run_chunks(work, g.N, g.H_out, g.W_out, rows, CHUNK_ELEMENTS, flops)


def conv_apply(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry) -> np.ndarray:
    """``out = conv(x, w) + b`` for validated, C-contiguous inputs of one dtype.

    Shapes as in :func:`conv_forward_numba`; ``b`` may be None (no bias). Extra memory: one
    column chunk per worker thread, each at most ``max(CHUNK_ELEMENTS, (C*HH*WW+1)*W')``
    entries, besides ``out``.
    """
    if _direct_applies(g):
        return _conv_apply_direct(x, w, b, g)
    CKK = g.C * g.HH * g.WW
    w2 = np.empty((g.F, CKK + 1), dtype=x.dtype)
    w2[:, :CKK] = w.reshape(g.F, CKK)
    w2[:, CKK] = 0 if b is None else b
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    out3 = out.reshape(g.N, g.F, g.H_out * g.W_out)
    P = g.W_out

    def work(chunk: tuple) -> None:
        n0, nb, y0, y1 = chunk
        rows = _band_rows(y1 - y0, P, CKK + 1, x.itemsize)
        nbands = (y1 - y0) // rows
        cols = WORKSPACE.get("cols", (nb * nbands, CKK + 1, rows * P), x.dtype)
        _im2col_chunk(x, n0, nb, y0, y1, g.HH, g.WW, g.stride, g.pad, g.dilation, P, cols)
        # One GEMM per band: out[n, :, band] = w2 @ cols[n, band]; the ones row of cols
        # times the last column of w2 adds the bias inside the GEMM.
        bands = out3[n0 : n0 + nb, :, y0 * P : y1 * P].reshape(nb, g.F, nbands, rows * P)
        np.matmul(w2, cols.reshape(nb, nbands, CKK + 1, rows * P),
                  out=bands.transpose(0, 2, 1, 3))

    _run(work, g, CKK + 1)
    return out


#: Up to this many filters, a stride-1 convolution is computed directly (a stencil per filter
#: tap: forward, ``dw`` and ``dx``) instead of through im2col and a GEMM with F rows: with F
#: this small the GEMM is memory-bound, and im2col/col2im move C*HH*WW entries per output
#: pixel for F multiply-adds each. Measured (1 thread, float32, N128 C32 28x28 F1 3x3 pad 1,
#: a decoder's last layer): dx GEMM + col2im ~25 ms -> direct ~3 ms; forward 7.8 -> 4.5 ms;
#: dw 8.3 -> 5.7 ms.
DIRECT_MAX_FILTERS = 4

if NUMBA_AVAILABLE:

    @njit(cache=True, nogil=True, inline="always")
    def _add_shifted(dst, dbase, Hd, Wd, src, sbase, Hs, Ws, dy, dx, wv):
        """``dst[y, x] += wv * src[y + dy, x + dx]`` over the positions inside both planes.

        The planes start at ``dbase`` (Hd x Wd) and ``sbase`` (Hs x Ws) of flat arrays; the
        innermost loop runs along a row of both, with unsigned indices, so it vectorises.
        """
        y_lo, y_hi = max(0, -dy), min(Hd, Hs - dy)
        x_lo, x_hi = max(0, -dx), min(Wd, Ws - dx)
        for y in range(y_lo, y_hi):
            o = uint64(dbase + y * Wd + x_lo)
            s = uint64(sbase + (y + dy) * Ws + x_lo + dx)
            for k in range(x_hi - x_lo):
                dst[o + uint64(k)] += wv * src[s + uint64(k)]

    @njit(cache=True, nogil=True)
    def _data_grad_direct(dout, w, n0, nb, pad, dx):
        """dx[n] for images n0..n0+nb-1 of a stride-1, dilation-1 convolution, written whole.

        ``dx[n, c, y, x] = sum_{f, i, j} w[f, c, i, j] * dout[n, f, y + pad - i, x + pad - j]``
        over the output positions inside ``dout``: per filter tap, one scaled plane of
        ``dout`` is added to a plane of ``dx`` (:func:`_add_shifted`).
        """
        F, Ho, Wo = dout.shape[1], dout.shape[2], dout.shape[3]
        C, HH, WW = w.shape[1], w.shape[2], w.shape[3]
        H, W = dx.shape[2], dx.shape[3]
        src = dout.reshape(-1)
        dst = dx.reshape(-1)
        wf = w.reshape(-1)
        for n in range(n0, n0 + nb):
            for c in range(C):
                base = (n * C + c) * H * W
                for k in range(H * W):
                    dst[uint64(base + k)] = 0
                for f in range(F):
                    sbase = (n * F + f) * Ho * Wo
                    for i in range(HH):
                        for j in range(WW):
                            _add_shifted(dst, base, H, W, src, sbase, Ho, Wo, pad - i, pad - j,
                                         wf[((f * C + c) * HH + i) * WW + j])

    @njit(cache=True, nogil=True)
    def _apply_direct(x, w, b, n0, nb, pad, out):
        """out[n] for images n0..n0+nb-1 of a stride-1, dilation-1 convolution, written whole.

        ``out[n, f, y, x] = b[f] + sum_{c, i, j} w[f, c, i, j] * x[n, c, y - pad + i, x - pad + j]``
        over the taps inside ``x``: per filter tap, one scaled plane of ``x`` is added to a
        plane of ``out`` (the loop of :func:`_data_grad_direct` with the roles swapped).
        """
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        F, HH, WW = w.shape[0], w.shape[2], w.shape[3]
        Ho, Wo = out.shape[2], out.shape[3]
        src = x.reshape(-1)
        dst = out.reshape(-1)
        wf = w.reshape(-1)
        for n in range(n0, n0 + nb):
            for f in range(F):
                base = (n * F + f) * Ho * Wo
                for k in range(Ho * Wo):
                    dst[uint64(base + k)] = b[f]
                for c in range(C):
                    sbase = (n * C + c) * H * W
                    for i in range(HH):
                        for j in range(WW):
                            _add_shifted(dst, base, Ho, Wo, src, sbase, H, W, i - pad, j - pad,
                                         wf[((f * C + c) * HH + i) * WW + j])

    @njit(cache=True, nogil=True)
    def _weight_grad_direct(x, dout, n0, nb, pad, dw, db, acc):
        """Add the images n0..n0+nb-1's share of dw (F, C, HH, WW) and db (F,) of a stride-1,
        dilation-1 convolution: ``dw[f, c, i, j] += sum_{y, x} dout[n, f, y, x] *
        x[n, c, y - pad + i, x - pad + j]``.

        Each sum runs elementwise into the row buffer ``acc`` (at least W' entries) and is
        reduced once at the end: a running scalar sum would not vectorise.
        """
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        F, HH, WW = dw.shape[0], dw.shape[2], dw.shape[3]
        Ho, Wo = dout.shape[2], dout.shape[3]
        src = x.reshape(-1)
        grad = dout.reshape(-1)
        for f in range(F):
            for k in range(Wo):
                acc[k] = 0
            for n in range(n0, n0 + nb):
                gbase = (n * F + f) * Ho * Wo
                for y in range(Ho):
                    g0 = uint64(gbase + y * Wo)
                    for k in range(Wo):
                        acc[k] += grad[g0 + uint64(k)]
            db[f] += acc[:Wo].sum()
            for c in range(C):
                for i in range(HH):
                    y_lo = max(0, pad - i)
                    y_hi = min(Ho, H + pad - i)
                    for j in range(WW):
                        x_lo = max(0, pad - j)
                        x_hi = min(Wo, W + pad - j)
                        for k in range(x_hi - x_lo):
                            acc[k] = 0
                        for n in range(n0, n0 + nb):
                            gbase = (n * F + f) * Ho * Wo
                            sbase = (n * C + c) * H * W
                            for y in range(y_lo, y_hi):
                                g0 = uint64(gbase + y * Wo + x_lo)
                                s0 = uint64(sbase + (y - pad + i) * W + x_lo - pad + j)
                                for k in range(x_hi - x_lo):
                                    acc[k] += grad[g0 + uint64(k)] * src[s0 + uint64(k)]
                        dw[f, c, i, j] += acc[: x_hi - x_lo].sum()


def _direct_applies(g: ConvGeometry) -> bool:
    """Few filters at stride 1: the direct kernels replace im2col + GEMM (forward, dw, dx)."""
    return (NUMBA_AVAILABLE and g.F <= DIRECT_MAX_FILTERS and g.stride == 1
            and g.dilation == 1)


def _run_whole_images(work, g: ConvGeometry, per_image: int) -> np.ndarray | None:
    """Run ``work(n0, nb)`` on chunks of whole images (``per_image`` entries of memory
    traffic each) on worker threads when it pays; return the sum of its results."""

    def on_chunk(chunk: tuple):
        n0, nb, y0, _ = chunk
        # With fewer images than chunks an image comes in bands of rows: the band starting
        # at row 0 computes the whole image, the others have nothing left to do.
        return work(n0, nb) if y0 == 0 else None

    per_position = -(-per_image // max(1, g.H_out * g.W_out))
    flops = g.N * g.F * g.C * g.HH * g.WW * g.H_out * g.W_out
    return run_chunks(on_chunk, g.N, g.H_out, g.W_out, per_position,
                      per_position * g.H_out * g.W_out * 4, flops)


def _conv_apply_direct(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                       g: ConvGeometry) -> np.ndarray:
    """:func:`conv_apply` for few filters at stride 1: whole images per chunk, no buffers."""
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    wc = np.ascontiguousarray(w, dtype=x.dtype)
    bc = np.zeros(g.F, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)

    def work(n0: int, nb: int) -> None:
        _apply_direct(x, wc, bc, n0, nb, g.pad, out)

    _run_whole_images(work, g, g.C * g.H * g.W)
    return out


def _conv_weight_grad_direct(x: np.ndarray, dout: np.ndarray,
                             g: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    """:func:`conv_weight_grad` for few filters at stride 1: per-chunk partial sums."""

    def work(n0: int, nb: int) -> np.ndarray:
        dwb = np.zeros(g.F * g.C * g.HH * g.WW + g.F, dtype=x.dtype)
        dw = dwb[: g.F * g.C * g.HH * g.WW].reshape(g.F, g.C, g.HH, g.WW)
        acc = np.empty(g.W_out, dtype=x.dtype)
        _weight_grad_direct(x, dout, n0, nb, g.pad, dw, dwb[dw.size :], acc)
        return dwb

    dwb = _run_whole_images(work, g, g.C * g.H * g.W)
    n_w = g.F * g.C * g.HH * g.WW
    return dwb[:n_w].reshape(g.F, g.C, g.HH, g.WW).copy(), dwb[n_w:].copy()


def _conv_data_grad_direct(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """:func:`conv_data_grad` for few filters at stride 1: whole images per chunk, no locks."""
    dx = np.empty((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    wc = np.ascontiguousarray(w, dtype=dout.dtype)

    def work(n0: int, nb: int) -> None:
        _data_grad_direct(dout, wc, n0, nb, g.pad, dx)

    _run_whole_images(work, g, g.C * g.H * g.W)
    return dx


def conv_data_grad(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """Gradient of ``conv(x, w)`` with respect to ``x``: the adjoint of :func:`conv_apply`.

    Inputs: dout (N, F, H', W') C-contiguous; w (F, C, HH, WW). Returns dx (N, C, H, W).
    Extra memory: one chunk per worker of at most ``max(CHUNK_ELEMENTS, C*HH*WW*W')`` entries
    (none for few filters at stride 1, see ``DIRECT_MAX_FILTERS``).
    """
    if _direct_applies(g):
        return _conv_data_grad_direct(dout, w, g)
    CKK = g.C * g.HH * g.WW
    dout3 = dout.reshape(g.N, g.F, g.H_out * g.W_out)
    wT = np.ascontiguousarray(w.reshape(g.F, CKK).T)
    dx = np.zeros((g.N, g.C, g.H, g.W), dtype=dout.dtype)
    P = g.W_out
    # Bands of rows of one image overlap in dx (their windows share input rows): a lock per
    # image serialises their scatter-adds, while their GEMMs still run concurrently.
    locks = [threading.Lock() for _ in range(g.N)]

    def work(chunk: tuple) -> None:
        n0, nb, y0, y1 = chunk
        dcols = WORKSPACE.get("dcols", (nb, CKK, (y1 - y0) * P), dout.dtype)
        np.matmul(wT, dout3[n0 : n0 + nb, :, y0 * P : y1 * P], out=dcols)
        with locks[n0]:
            _col2im_chunk(dcols, n0, nb, y0, y1, g.HH, g.WW, g.stride, g.pad, g.dilation, P, dx)

    _run(work, g, CKK + 1)
    return dx


def conv_weight_grad(
    x: np.ndarray, dout: np.ndarray, g: ConvGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``conv(x, w) + b`` with respect to ``w`` (F, C, HH, WW) and ``b`` (F,).

    Inputs: x (N, C, H, W) and dout (N, F, H', W'), both C-contiguous.
    Extra memory: one column chunk per worker, as in :func:`conv_apply` (none for few filters
    at stride 1).
    """
    if _direct_applies(g):
        return _conv_weight_grad_direct(x, dout, g)
    CKK = g.C * g.HH * g.WW
    dout3 = dout.reshape(g.N, g.F, g.H_out * g.W_out)
    P = g.W_out

    def work(chunk: tuple) -> np.ndarray:
        n0, nb, y0, y1 = chunk
        cols = WORKSPACE.get("cols", (nb, CKK + 1, (y1 - y0) * P), x.dtype)
        _im2col_chunk(x, n0, nb, y0, y1, g.HH, g.WW, g.stride, g.pad, g.dilation, P, cols)
        d = dout3[n0 : n0 + nb, :, y0 * P : y1 * P]
        # Transposed: dw2^T = cols @ d^T. OpenBLAS packs the long pixel dimension faster
        # this way round (measured 77 vs 51 GFLOP/s for C3 7x7 F32 on 32x32, 92 vs 75 for
        # C64 3x3 F64 on 14x14; float32, 1 thread).
        acc = np.zeros((CKK + 1, g.F), dtype=x.dtype)
        tmp = WORKSPACE.get("dw", (CKK + 1, g.F), x.dtype)
        for k in range(nb):
            # The ones row of cols makes the last row the bias gradient.
            np.matmul(cols[k], d[k].T, out=tmp)
            acc += tmp
        return acc

    dw2 = _run(work, g, CKK + 1)
    return dw2[:CKK].T.reshape(g.F, g.C, g.HH, g.WW).copy(), dw2[CKK].copy()


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
    x, w, dout, g = _backward_inputs("conv_backward_numba", dout, cache)
    dw, db = conv_weight_grad(x, dout, g)
    return conv_data_grad(dout, w, g), dw, db


def conv_backward_params_numba(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The parameter gradients of :func:`conv_backward_numba` only (no ``dx``).

    Inputs as :func:`conv_backward_numba`. Returns ``dw`` (F, C, HH, WW) and ``db`` (F,).
    """
    if not NUMBA_AVAILABLE:
        from convnet.layers.conv_im2col import conv_backward_im2col

        return conv_backward_im2col(dout, cache)[1:]
    x, _, dout, g = _backward_inputs("conv_backward_params_numba", dout, cache)
    return conv_weight_grad(x, dout, g)


def _backward_inputs(layer: str, dout: np.ndarray, cache: tuple):
    """(x, w, contiguous dout, geometry) of a numba conv cache, validated."""
    _, x, w, b, conv_param = check_cache(layer, cache, "numba", 5)
    g = conv_geometry(layer, x, w, b, conv_param)
    dout = check_dout(layer, dout, (g.N, g.F, g.H_out, g.W_out), "(N, F, H', W')")
    return x, w, np.ascontiguousarray(dout, dtype=x.dtype), g
