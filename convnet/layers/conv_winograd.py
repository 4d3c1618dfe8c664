"""3x3 stride-1 convolution with Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2015).

Why: for 3x3 filters, im2col + GEMM spends 9 multiply-adds per (output pixel, c, f); F(2x2, 3x3)
computes a 2x2 output tile from a 4x4 input tile with 16 instead of 36, i.e. 2.25x fewer GEMM
flops, at the price of memory-bound elementwise transforms and some float32 accuracy (measured:
max error / max |output| 1e-7..8e-7, within ~4x of direct float32 summation; larger tiles such
as F(4x4, 3x3) would save more flops but lose about a digit).

Notation (cs231n shapes): ``x`` (N, C, H, W), ``w`` (F, C, 3, 3), ``b`` (F,), output
(N, F, H', W') with ``H' = H + 2p - 2``. The output is cut into 2x2 tiles on a grid of
``TH x TW = ceil(H'/2) x ceil(W'/2)`` tiles per image (the grid is padded and cropped, so any
H, W and pad work); tile ``(ty, tx)`` reads the 4x4 input window at rows ``2ty - p ..``,
columns ``2tx - p ..`` (outside the image: zeros). With the 16 positions ``xi = 4i + j`` of
the 4x4 transformed tile and ``P`` tiles:

* forward:  ``U[xi] = (G g G^T)[xi]`` (16, F, C); ``V[xi] = (B^T d B)[xi]`` (16, C, P);
  ``M[xi] = U[xi] @ V[xi]`` (16 GEMMs, (F, P)); ``y = A^T m A`` per tile, cropped, plus ``b``.
* backward (the exact adjoint of those linear maps, sharing one transformed ``dout``):
  ``dM = A dY A^T`` (16, F, P); ``dU[xi] = dM[xi] @ V[xi]^T`` (the GEMM sums over tiles,
  K = P is large, so this GEMM runs at full speed) and ``dg = G^T dU G``;
  ``dV[xi] = U[xi]^T @ dM[xi]`` and ``dd = B dV B^T`` scatter-added into ``dx`` (neighbouring
  input tiles overlap by 2 rows/columns). This computes the same dx as a forward Winograd
  conv of ``dout`` with the flipped, channel-transposed filters (pad 2 - p), but reuses ``dM``
  and needs no padding restriction. dW the Winograd way (K = P GEMM) measured faster than the
  im2col dW GEMM: whole backward 12.0 ms vs 8.7 (numba dW) + 7.5 (numba dx) for N64 C32 16x16
  F64; 60 vs 46 + 41 ms for N16 C64 56x56 F64 (float32, 1 thread).

Memory: tiles are processed in chunks (whole images, or bands of tile rows of one image) so that
the chunk's ``V``/``M`` (``16 * max(C, F) * P_chunk`` entries, at most about
``WINOGRAD_CHUNK_ELEMENTS``) stay in cache between the transform and the GEMM; ``V`` is
recomputed in the backward pass rather than kept (it is 4x the input). Extra memory besides
out/dx: two such buffers per worker thread (2 MiB each in float32). Measured with tracemalloc,
N16 C64 56x56 F64 float32 forward + backward: 25.5 MiB peak above the inputs (out and dx are
24.5 of it) vs 24.8 MiB for the Numba backend. Chunks run on convnet's worker threads like the
Numba backend (GIL-free kernels, single-threaded BLAS per chunk), with the chunking, scratch
buffers and thread pool they share (``convnet.layers._numba_chunks``).
"""

from __future__ import annotations

import threading

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._numba_chunks import WORKSPACE, njit, run_chunks
from convnet.layers._validate import check_cache, check_conv_inputs, check_dout, conv_geometry

#: Target entries of one chunk's ``V`` (16, C, P_chunk) or ``M`` (16, F, P_chunk) buffer.
WINOGRAD_CHUNK_ELEMENTS = 1 << 19

# Transform matrices of F(2x2, 3x3). All entries are 0, +-1 or +-1/2: exact in binary floating
# point, so float64 results agree with direct convolution to rounding.
G_MAT = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
BT_MAT = np.array(
    [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]]
)
AT_MAT = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])


def _layer_check(layer: str, w_shape: tuple, conv_param: dict) -> None:
    """Raise ValueError unless the conv is 3x3, stride 1, dilation 1 (what F(2x2,3x3) computes)."""
    s = conv_param.get("stride", 1) if isinstance(conv_param, dict) else None
    d = conv_param.get("dilation", 1) if isinstance(conv_param, dict) else None
    if tuple(w_shape[2:]) != (3, 3) or s != 1 or d != 1:
        raise LayerInputError(
            f"{layer}: Winograd F(2x2, 3x3) supports only 3x3 kernels with stride 1 and "
            f"dilation 1, got kernel {tuple(w_shape[2:])}, stride {s!r}, dilation {d!r}"
        )


# ---------------------------------------------------------------------------------------------
# Numba kernels: one per transform. Each handles one chunk (images n0..n0+nb, tile rows t0..t1)
# and copies the input rows it needs into a zero-bordered ``plane`` first, so that the tile
# loops need no bounds tests (padding and the cropped tile grid are handled there, once).


@njit(cache=True, inline="always")
def _bt(a0, a1, a2, a3):
    """``B^T @ (a0, a1, a2, a3)``."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


@njit(cache=True, inline="always")
def _b(a0, a1, a2, a3):
    """``B @ (a0, a1, a2, a3)`` (adjoint of :func:`_bt`)."""
    return a0, a1 - a2 + a3, a1 + a2 - a0, -a3


@njit(cache=True, inline="always")
def _at(a0, a1, a2, a3):
    """``A^T @ (a0, a1, a2, a3)``."""
    return a0 + a1 + a2, a1 - a2 - a3


@njit(cache=True, inline="always")
def _a(a0, a1):
    """``A @ (a0, a1)`` (adjoint of :func:`_at`)."""
    return a0, a0 + a1, a0 - a1, -a1


@njit(cache=True, nogil=True)
def _fill_plane(x, n, c, row0, pad, plane):
    """``plane[r, q] = x[n, c, row0 + r, q - pad]`` where inside the image, else 0."""
    H, W = x.shape[2], x.shape[3]
    PH, PW = plane.shape
    qlo = min(pad, PW)
    qhi = max(qlo, min(PW, W + pad))
    for r in range(PH):
        iy = row0 + r
        if iy < 0 or iy >= H:
            plane[r, :] = 0
        else:
            plane[r, :qlo] = 0
            plane[r, qlo:qhi] = x[n, c, iy, qlo - pad : qhi - pad]
            plane[r, qhi:] = 0


@njit(cache=True, nogil=True)
def winograd_input_transform(x, n0, nb, t0, t1, pad, TW, V, plane):
    """``V[xi, c, p] = (B^T d B)[xi]`` for the 4x4 input tile ``d`` of every tile ``p``.

    Inputs: ``x`` (N, C, H, W); tiles are those of images ``n0 .. n0+nb-1``, tile rows
    ``t0 .. t1-1``, all ``TW`` tile columns, numbered ``p = (k*(t1-t0) + ty)*TW + tx``.
    ``V`` (16, C, nb*(t1-t0)*TW) is written; ``plane`` is scratch of shape
    (2*(t1-t0) + 2, 2*TW + 2).
    """
    C = x.shape[1]
    nt = t1 - t0
    for k in range(nb):
        for c in range(C):
            _fill_plane(x, n0 + k, c, 2 * t0 - pad, pad, plane)
            for ty in range(nt):
                base = (k * nt + ty) * TW
                r = 2 * ty
                for tx in range(TW):
                    q = 2 * tx
                    # Columns first (B^T d), then rows ((B^T d) B).
                    c00, c10, c20, c30 = _bt(plane[r, q], plane[r + 1, q],
                                             plane[r + 2, q], plane[r + 3, q])
                    c01, c11, c21, c31 = _bt(plane[r, q + 1], plane[r + 1, q + 1],
                                             plane[r + 2, q + 1], plane[r + 3, q + 1])
                    c02, c12, c22, c32 = _bt(plane[r, q + 2], plane[r + 1, q + 2],
                                             plane[r + 2, q + 2], plane[r + 3, q + 2])
                    c03, c13, c23, c33 = _bt(plane[r, q + 3], plane[r + 1, q + 3],
                                             plane[r + 2, q + 3], plane[r + 3, q + 3])
                    p = base + tx
                    V[0, c, p], V[1, c, p], V[2, c, p], V[3, c, p] = _bt(c00, c01, c02, c03)
                    V[4, c, p], V[5, c, p], V[6, c, p], V[7, c, p] = _bt(c10, c11, c12, c13)
                    V[8, c, p], V[9, c, p], V[10, c, p], V[11, c, p] = _bt(c20, c21, c22, c23)
                    V[12, c, p], V[13, c, p], V[14, c, p], V[15, c, p] = _bt(
                        c30, c31, c32, c33)


@njit(cache=True, nogil=True)
def winograd_input_adjoint(dV, n0, nb, t0, t1, pad, TW, dx, plane):
    """Adjoint of :func:`winograd_input_transform`: ``dx += sum_p scatter(B dV[:, :, p] B^T)``.

    Same tiling arguments; ``dV`` (16, C, nb*(t1-t0)*TW), ``dx`` (N, C, H, W) is accumulated
    into (the 4x4 tiles overlap, and band chunks of one image share two input rows, so the
    caller serialises chunks of the same image).
    """
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    nt = t1 - t0
    PH, PW = plane.shape
    row0 = 2 * t0 - pad
    qlo = min(pad, PW)
    qhi = max(qlo, min(PW, W + pad))
    for k in range(nb):
        n = n0 + k
        for c in range(C):
            plane[:, :] = 0
            for ty in range(nt):
                base = (k * nt + ty) * TW
                r = 2 * ty
                for tx in range(TW):
                    q = 2 * tx
                    p = base + tx
                    # Rows of dV first (dV B^T), then columns (B (dV B^T)).
                    e00, e01, e02, e03 = _b(dV[0, c, p], dV[1, c, p], dV[2, c, p], dV[3, c, p])
                    e10, e11, e12, e13 = _b(dV[4, c, p], dV[5, c, p], dV[6, c, p], dV[7, c, p])
                    e20, e21, e22, e23 = _b(dV[8, c, p], dV[9, c, p], dV[10, c, p],
                                            dV[11, c, p])
                    e30, e31, e32, e33 = _b(dV[12, c, p], dV[13, c, p], dV[14, c, p],
                                            dV[15, c, p])
                    d0, d1, d2, d3 = _b(e00, e10, e20, e30)
                    plane[r, q] += d0
                    plane[r + 1, q] += d1
                    plane[r + 2, q] += d2
                    plane[r + 3, q] += d3
                    d0, d1, d2, d3 = _b(e01, e11, e21, e31)
                    plane[r, q + 1] += d0
                    plane[r + 1, q + 1] += d1
                    plane[r + 2, q + 1] += d2
                    plane[r + 3, q + 1] += d3
                    d0, d1, d2, d3 = _b(e02, e12, e22, e32)
                    plane[r, q + 2] += d0
                    plane[r + 1, q + 2] += d1
                    plane[r + 2, q + 2] += d2
                    plane[r + 3, q + 2] += d3
                    d0, d1, d2, d3 = _b(e03, e13, e23, e33)
                    plane[r, q + 3] += d0
                    plane[r + 1, q + 3] += d1
                    plane[r + 2, q + 3] += d2
                    plane[r + 3, q + 3] += d3
            # Padding and the cropped tile grid fall outside the image: dropped here.
            for rr in range(PH):
                iy = row0 + rr
                if 0 <= iy < H:
                    dx[n, c, iy, qlo - pad : qhi - pad] += plane[rr, qlo:qhi]


@njit(cache=True, nogil=True)
def winograd_output_transform(M, b, n0, nb, t0, t1, TW, out):
    """``out[n, f, 2ty+i, 2tx+j] = (A^T m A)[i, j] + b[f]`` for every tile, cropped to H', W'.

    ``M`` (16, F, nb*(t1-t0)*TW) in the tile numbering of
    :func:`winograd_input_transform`; ``out`` (N, F, H', W'); ``b`` (F,).
    """
    F, H_out, W_out = out.shape[1], out.shape[2], out.shape[3]
    nt = t1 - t0
    for k in range(nb):
        n = n0 + k
        for f in range(F):
            bf = b[f]
            for ty in range(nt):
                base = (k * nt + ty) * TW
                y = 2 * (t0 + ty)
                two_rows = y + 1 < H_out
                for tx in range(TW):
                    p = base + tx
                    # Rows of m first (A^T m), then columns ((A^T m) A).
                    s00, s01 = _at(M[0, f, p], M[1, f, p], M[2, f, p], M[3, f, p])
                    s10, s11 = _at(M[4, f, p], M[5, f, p], M[6, f, p], M[7, f, p])
                    s20, s21 = _at(M[8, f, p], M[9, f, p], M[10, f, p], M[11, f, p])
                    s30, s31 = _at(M[12, f, p], M[13, f, p], M[14, f, p], M[15, f, p])
                    y00, y10 = _at(s00, s10, s20, s30)
                    y01, y11 = _at(s01, s11, s21, s31)
                    xo = 2 * tx
                    out[n, f, y, xo] = y00 + bf
                    if two_rows:
                        out[n, f, y + 1, xo] = y10 + bf
                    if xo + 1 < W_out:
                        out[n, f, y, xo + 1] = y01 + bf
                        if two_rows:
                            out[n, f, y + 1, xo + 1] = y11 + bf


@njit(cache=True, nogil=True)
def winograd_output_adjoint(dout, n0, nb, t0, t1, TW, dM):
    """Adjoint of :func:`winograd_output_transform` (without bias): ``dM[:, f, p] = A dY A^T``.

    ``dout`` (N, F, H', W'); ``dY`` is the 2x2 tile of ``dout``, zero where the tile grid
    sticks out of the output (those outputs were cropped, so they get no gradient).
    ``dM`` (16, F, nb*(t1-t0)*TW) is written.
    """
    F, H_out, W_out = dout.shape[1], dout.shape[2], dout.shape[3]
    nt = t1 - t0
    zero = dM.dtype.type(0)
    for k in range(nb):
        n = n0 + k
        for f in range(F):
            for ty in range(nt):
                base = (k * nt + ty) * TW
                y = 2 * (t0 + ty)
                two_rows = y + 1 < H_out
                for tx in range(TW):
                    p = base + tx
                    xo = 2 * tx
                    two_cols = xo + 1 < W_out
                    g00 = dout[n, f, y, xo]
                    g01 = dout[n, f, y, xo + 1] if two_cols else zero
                    g10 = dout[n, f, y + 1, xo] if two_rows else zero
                    g11 = dout[n, f, y + 1, xo + 1] if two_rows and two_cols else zero
                    a00, a10, a20, a30 = _a(g00, g10)
                    a01, a11, a21, a31 = _a(g01, g11)
                    dM[0, f, p], dM[1, f, p], dM[2, f, p], dM[3, f, p] = _a(a00, a01)
                    dM[4, f, p], dM[5, f, p], dM[6, f, p], dM[7, f, p] = _a(a10, a11)
                    dM[8, f, p], dM[9, f, p], dM[10, f, p], dM[11, f, p] = _a(a20, a21)
                    dM[12, f, p], dM[13, f, p], dM[14, f, p], dM[15, f, p] = _a(a30, a31)


@njit(cache=True, inline="always")
def _g(a0, a1, a2):
    """``G @ (a0, a1, a2)``."""
    h = (a0 + a2) * 0.5
    return a0, h + a1 * 0.5, h - a1 * 0.5, a2


@njit(cache=True, inline="always")
def _gt(a0, a1, a2, a3):
    """``G^T @ (a0, a1, a2, a3)`` (adjoint of :func:`_g`)."""
    h = (a1 + a2) * 0.5
    return a0 + h, (a1 - a2) * 0.5, h + a3


@njit(cache=True, nogil=True)
def _filter_kernel(w, U):
    """``U[4i+j, f, c] = (G w[f, c] G^T)[i, j]`` for w (F, C, 3, 3), U (16, F, C)."""
    F, C = w.shape[0], w.shape[1]
    for f in range(F):
        for c in range(C):
            # Columns first (G g), then rows ((G g) G^T).
            a0, a1, a2, a3 = _g(w[f, c, 0, 0], w[f, c, 1, 0], w[f, c, 2, 0])
            b0, b1, b2, b3 = _g(w[f, c, 0, 1], w[f, c, 1, 1], w[f, c, 2, 1])
            e0, e1, e2, e3 = _g(w[f, c, 0, 2], w[f, c, 1, 2], w[f, c, 2, 2])
            U[0, f, c], U[1, f, c], U[2, f, c], U[3, f, c] = _g(a0, b0, e0)
            U[4, f, c], U[5, f, c], U[6, f, c], U[7, f, c] = _g(a1, b1, e1)
            U[8, f, c], U[9, f, c], U[10, f, c], U[11, f, c] = _g(a2, b2, e2)
            U[12, f, c], U[13, f, c], U[14, f, c], U[15, f, c] = _g(a3, b3, e3)


@njit(cache=True, nogil=True)
def _filter_adjoint_kernel(dU, dw):
    """``dw[f, c] = G^T dU[:, f, c] G`` (dU as 4x4): adjoint of :func:`_filter_kernel`."""
    F, C = dw.shape[0], dw.shape[1]
    for f in range(F):
        for c in range(C):
            r00, r01, r02 = _gt(dU[0, f, c], dU[1, f, c], dU[2, f, c], dU[3, f, c])
            r10, r11, r12 = _gt(dU[4, f, c], dU[5, f, c], dU[6, f, c], dU[7, f, c])
            r20, r21, r22 = _gt(dU[8, f, c], dU[9, f, c], dU[10, f, c], dU[11, f, c])
            r30, r31, r32 = _gt(dU[12, f, c], dU[13, f, c], dU[14, f, c], dU[15, f, c])
            dw[f, c, 0, 0], dw[f, c, 1, 0], dw[f, c, 2, 0] = _gt(r00, r10, r20, r30)
            dw[f, c, 0, 1], dw[f, c, 1, 1], dw[f, c, 2, 1] = _gt(r01, r11, r21, r31)
            dw[f, c, 0, 2], dw[f, c, 1, 2], dw[f, c, 2, 2] = _gt(r02, r12, r22, r32)


def winograd_filter_transform(w: np.ndarray) -> np.ndarray:
    """``U[4i+j, f, c] = (G w[f, c] G^T)[i, j]``: w (F, C, 3, 3) -> U (16, F, C), w's dtype."""
    U = np.empty((16, w.shape[0], w.shape[1]), dtype=w.dtype)
    _filter_kernel(np.ascontiguousarray(w), U)
    return U


def winograd_filter_adjoint(dU: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`winograd_filter_transform`: dU (16, F, C) -> dw (F, C, 3, 3)."""
    dw = np.empty((dU.shape[1], dU.shape[2], 3, 3), dtype=dU.dtype)
    _filter_adjoint_kernel(np.ascontiguousarray(dU), dw)
    return dw


# ---------------------------------------------------------------------------------------------
# Chunks: whole images or bands of tile rows (``_numba_chunks.chunks`` over the tile grid)


def _tile_buffer(name: str, rows: int, P: int, dtype: np.dtype) -> np.ndarray:
    """A (16, rows, P) per-thread scratch view whose 16 slices are NOT a power of 2 apart.

    The transforms read or write all 16 slices ``[xi, r, p]`` for each tile. When the slice
    stride is a multiple of 4 KiB (e.g. C*P = 32*512 float32), the 16 streams map to the same
    L1 cache sets and evict each other: measured 2-5x slower transforms. So each slice
    starts an odd number of 64-byte lines after the previous one (the GEMMs only need each
    (rows, P) slice to be contiguous).
    """
    item = np.dtype(dtype).itemsize
    line = 64 // item
    stride = -(-(rows * P) // (2 * line)) * (2 * line) + line
    flat = WORKSPACE.get(name, (16 * stride,), dtype)
    return flat.reshape(16, stride)[:, : rows * P].reshape(16, rows, P)


def _tiles(H_out: int, W_out: int) -> tuple[int, int]:
    """Tile grid ``(TH, TW)`` covering an H' x W' output with 2x2 tiles (padded, then cropped)."""
    return (H_out + 1) // 2, (W_out + 1) // 2


def _run(work, N: int, TH: int, TW: int, rows: int, flops: int) -> np.ndarray | None:
    """Run ``work`` on every chunk of the tile grid; return the sum of its results.

    ``rows = 16 * max(C, F)``: the per-tile size of the V / M buffers. Summing as the chunks
    finish keeps the (16, F, C) partial sums of dU at a few (measured: 8 MiB of them for N16
    C64 56x56 if kept one per chunk).
    """
    return run_chunks(work, N, TH, TW, rows, WINOGRAD_CHUNK_ELEMENTS, flops)


# ---------------------------------------------------------------------------------------------
# Layer functions


def conv_forward_winograd(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a 3x3, stride-1 convolutional layer with Winograd F(2x2, 3x3).

    Inputs:
    - x: input data of shape (N, C, H, W), float32 or float64.
    - w: filter weights of shape (F, C, 3, 3).
    - b: biases of shape (F,).
    - conv_param: {'stride': 1, 'pad': p (any p >= 0), 'dilation': 1 (optional)}.

    Returns a tuple of:
    - out: output of shape (N, F, H + 2p - 2, W + 2p - 2), same dtype as the inputs.
    - cache: ('winograd', x, w, b, conv_param) for :func:`conv_backward_winograd`.

    Raises LayerInputError for other kernel sizes, strides or dilations (use another backend).
    """
    layer = "conv_forward_winograd"
    x, w, b, g = check_conv_inputs(layer, x, w, b, conv_param)
    _layer_check(layer, w.shape, conv_param)
    x = np.ascontiguousarray(x)
    U = winograd_filter_transform(w)
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    TH, TW = _tiles(g.H_out, g.W_out)
    bb = np.ascontiguousarray(b)

    def work(chunk: tuple) -> None:
        n0, nb, t0, t1 = chunk
        P = nb * (t1 - t0) * TW
        V = _tile_buffer("V", g.C, P, x.dtype)
        M = _tile_buffer("M", g.F, P, x.dtype)
        plane = WORKSPACE.get("plane", (2 * (t1 - t0) + 2, 2 * TW + 2), x.dtype)
        winograd_input_transform(x, n0, nb, t0, t1, g.pad, TW, V, plane)
        np.matmul(U, V, out=M)  # 16 GEMMs (F, C) @ (C, P)
        winograd_output_transform(M, bb, n0, nb, t0, t1, TW, out)

    flops = g.N * g.F * g.C * 9 * g.H_out * g.W_out
    _run(work, g.N, TH, TW, 16 * max(g.C, g.F), flops)
    return out, ("winograd", x, w, b, dict(conv_param))


def conv_backward_winograd(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_winograd` (the exact adjoint of its linear maps).

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: from :func:`conv_forward_winograd`.

    Returns a tuple of:
    - dx: shape (N, C, H, W); dw: shape (F, C, 3, 3); db: shape (F,).
    """
    layer = "conv_backward_winograd"
    _, x, w, b, conv_param = check_cache(layer, cache, "winograd", 5)
    g = conv_geometry(layer, x, w, b, conv_param)
    dout = check_dout(layer, dout, (g.N, g.F, g.H_out, g.W_out), "(N, F, H', W')")
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    U = winograd_filter_transform(w)
    UT = U.transpose(0, 2, 1)  # (16, C, F) view: BLAS reads it transposed, no copy
    dx = np.zeros_like(x)
    TH, TW = _tiles(g.H_out, g.W_out)
    # Band chunks of one image share input rows in dx: a lock per image serialises their
    # scatter-adds, while their GEMMs still run concurrently.
    locks = [threading.Lock() for _ in range(g.N)]

    def work(chunk: tuple) -> np.ndarray:
        n0, nb, t0, t1 = chunk
        P = nb * (t1 - t0) * TW
        V = _tile_buffer("V", g.C, P, x.dtype)
        dM = _tile_buffer("M", g.F, P, x.dtype)
        plane = WORKSPACE.get("plane", (2 * (t1 - t0) + 2, 2 * TW + 2), x.dtype)
        winograd_input_transform(x, n0, nb, t0, t1, g.pad, TW, V, plane)
        winograd_output_adjoint(dout, n0, nb, t0, t1, TW, dM)
        # dU[xi] = dM[xi] @ V[xi]^T sums over this chunk's tiles inside the GEMM (K = P).
        dU = np.matmul(dM, V.transpose(0, 2, 1))
        # V is no longer needed: reuse its buffer for dV = U^T @ dM.
        np.matmul(UT, dM, out=V)
        with locks[n0]:
            winograd_input_adjoint(V, n0, nb, t0, t1, g.pad, TW, dx, plane)
        return dU

    flops = g.N * g.F * g.C * 9 * g.H_out * g.W_out
    dU = _run(work, g.N, TH, TW, 16 * max(g.C, g.F), flops)
    dw = winograd_filter_adjoint(dU)
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


def prefer_winograd(x_shape: tuple, w_shape: tuple, conv_param: dict) -> bool:
    """Proposed dispatch rule: is :func:`conv_forward_winograd` faster than the Numba backend?

    Inputs:
    - x_shape: (N, C, H, W); w_shape: (F, C, HH, WW); conv_param: {'stride', 'pad', 'dilation'}.

    Returns True for 3x3, stride-1, dilation-1 convolutions with ``C >= 32`` input channels,
    more than 4 filters and at least 128 output tiles (``N * ceil(H'/2) * ceil(W'/2)``), else
    False.

    Measured (float32, forward + backward, 1 thread, CPU time, median of 7, ratio = Winograd /
    Numba im2col, 2-core loaded machine, OpenBLAS Haswell kernels):

    - ``benchmarks/bench_conv.py`` shapes: N64 C32 16x16 F64 pad 1: 0.74-0.80 (23.5 -> 17.5
      ms); N16 C64 56x56 F64 pad 1: 0.68 (127 -> 87 ms); N64 C3 32x32 F32: 2.0; N100 C1 28x28
      F32: 4.4 (Winograd's 16 GEMMs have K = C: with C = 1..3 they and the transforms cost
      more than they save).
    - grid N*HxW in {32*8x8, 32*16x16, 8*32x32, 2*64x64}, F 8..128: C >= 32: 0.59-0.89 on all
      68 cases; C = 16: 0.86-1.10 (break-even); C = 8: 0.77-1.34; C = 4: 0.94-1.97.
    - few tiles (small GEMMs, N = P/tiles): C64 F64 8x8 with N = 1, 2, 4, 8, 16 (16..256
      tiles): 1.88, 1.33, 1.01, 0.83, 0.73; C256 F256 8x8 N = 4, 8 (64, 128 tiles): 1.15,
      0.81; C512 F512 14x14 N = 1 (49 tiles): 1.01; C128 4x4 N = 4 / 32: 1.53 / 0.63.
    - large images: N1 C64 112x112 F64: 0.71; N1 C16 224x224 F16: 1.03 (C < 32).

    The GEMMs run at ~100 GFLOP/s either way; Winograd does 16/36 of their flops and adds
    memory-bound transforms (~25% of its time at C = F = 64).
    """
    if len(x_shape) != 4 or len(w_shape) != 4 or tuple(w_shape[2:]) != (3, 3):
        return False
    if not isinstance(conv_param, dict):
        return False
    if conv_param.get("stride", 1) != 1 or conv_param.get("dilation", 1) != 1:
        return False
    N, C, H, W = x_shape
    pad = conv_param.get("pad", 0)
    H_out, W_out = H + 2 * pad - 2, W + 2 * pad - 2
    if H_out < 1 or W_out < 1:
        return False
    TH, TW = _tiles(H_out, W_out)
    # Few filters: the Numba backend's direct input gradient beats Winograd's backward
    # (N128 C32 28x28 F1, 1 thread: fwd+bwd 41 ms Winograd, ~14 ms Numba with direct dx).
    return C >= 32 and N * TH * TW >= 128 and w_shape[0] > 4
