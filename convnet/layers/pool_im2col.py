"""Max pooling with NumPy array tricks, no Python loop over output positions.

Two paths, same results as ``pool_naive`` (see its docstring for ``pool_param``, output sizes,
the first-maximum tie rule and accumulation over overlapping windows):

- windows that tile the input exactly (window == stride, no padding, H and W divisible):
  a free reshape to (N, C, H', ph, W', pw), one copy into (N, C, H', W', ph*pw) and one
  argmax over the last axis;
- everything else: a ``sliding_window_view`` of the (-inf padded, if needed) input gives a
  (N, C, H', W', ph, pw) view without copying; we then sweep the ph*pw window offsets, each a
  strided (N, C, H', W') view, keeping a running maximum and the offset that produced it.
  Memory stays O(output) instead of O(output * ph * pw).

The cache holds the argmax offsets (small ints), not the input.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convnet.layers._geometry import PoolGeometry
from convnet.layers._validate import check_dout, check_max_pool_inputs


def _index_dtype(k: int) -> type:
    return np.uint8 if k <= 255 else np.int32


def _tiles_exactly(g: PoolGeometry) -> bool:
    return (
        g.pad == 0
        and g.ph == g.stride
        and g.pw == g.stride
        and g.H % g.ph == 0
        and g.W % g.pw == 0
    )


def _padded_extent(g: PoolGeometry) -> tuple[int, int]:
    """Height and width (in padded coordinates) that the windows actually span."""
    return (g.H_out - 1) * g.stride + g.ph, (g.W_out - 1) * g.stride + g.pw


def _first_real_offset(g: PoolGeometry) -> np.ndarray:
    """(H', W') offset (row-major, within the window) of each window's first real pixel.

    Windows in the padding border start on a padded (-inf) cell; the running maximum must
    start on a real pixel so that an all -inf window still reports a real cell, as in naive.
    """
    starts_h = np.arange(g.H_out) * g.stride - g.pad
    starts_w = np.arange(g.W_out) * g.stride - g.pad
    rh = np.maximum(starts_h, 0) - starts_h
    rw = np.maximum(starts_w, 0) - starts_w
    return rh[:, None] * g.pw + rw[None, :]


def max_pool_forward_im2col(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling forward pass with reshapes and stride tricks.

    Inputs:
    - x: input of shape (N, C, H, W), float dtype
    - pool_param: {'pool_height', 'pool_width', 'stride', 'pad': 0, 'ceil_mode': False}

    Returns a tuple of:
    - out: (N, C, H', W'), dtype of x
    - cache: (geometry, argmax offsets (N, C, H', W'), dtype, fast-path flag)
    """
    x, g = check_max_pool_inputs("max_pool_forward_im2col", x, pool_param)
    N, C, H, W, ph, pw, s, p = g.N, g.C, g.H, g.W, g.ph, g.pw, g.stride, g.pad
    Ho, Wo, K = g.H_out, g.W_out, g.ph * g.pw
    if _tiles_exactly(g):
        cols = x.reshape(N, C, Ho, ph, Wo, pw).transpose(0, 1, 2, 4, 3, 5).reshape(
            N, C, Ho, Wo, K
        )
        # argmax returns the first maximum along the (row-major) window axis: our tie rule.
        idx = cols.argmax(axis=-1)
        out = np.take_along_axis(cols, idx[..., None], axis=-1)[..., 0]
        return out, (g, idx.astype(_index_dtype(K)), x.dtype, True)

    Hs, Ws = _padded_extent(g)
    if p == 0 and Hs <= H and Ws <= W:
        xp = x  # windows stay inside x: no copy at all
    else:
        xp = np.full((N, C, Hs, Ws), -np.inf, dtype=x.dtype)
        hr, wr = min(H, Hs - p), min(W, Ws - p)
        xp[:, :, p : p + hr, p : p + wr] = x[:, :, :hr, :wr]
    win = sliding_window_view(xp, (ph, pw), axis=(2, 3))[:, :, ::s, ::s][:, :, :Ho, :Wo]
    out = np.full((N, C, Ho, Wo), -np.inf, dtype=x.dtype)
    idx = np.empty((N, C, Ho, Wo), dtype=_index_dtype(K))
    idx[...] = _first_real_offset(g)
    mask = np.empty((N, C, Ho, Wo), dtype=bool)
    for a in range(ph):
        for b in range(pw):
            v = win[:, :, :, :, a, b]
            # Strictly greater: an equal value later in row-major order never wins a tie.
            np.greater(v, out, out=mask)
            np.copyto(out, v, where=mask)
            np.copyto(idx, a * pw + b, where=mask, casting="unsafe")
    return out, (g, idx, x.dtype, False)


def max_pool_backward_im2col(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling backward pass.

    Inputs:
    - dout: upstream gradient (N, C, H', W')
    - cache: from max_pool_forward_im2col

    Returns:
    - dx: (N, C, H, W), dtype of the forward input; each window's gradient goes to its first
      maximum, overlapping windows accumulate.
    """
    g, idx, dtype, tiled = cache
    dout = check_dout("max_pool_backward_im2col", dout, (g.N, g.C, g.H_out, g.W_out),
                      "(N, C, H', W')")
    N, C, H, W, ph, pw, s, p = g.N, g.C, g.H, g.W, g.ph, g.pw, g.stride, g.pad
    Ho, Wo, K = g.H_out, g.W_out, g.ph * g.pw
    dout = dout.astype(dtype, copy=False)
    if tiled:
        dcols = np.zeros((N, C, Ho, Wo, K), dtype=dtype)
        np.put_along_axis(dcols, idx[..., None].astype(np.intp), dout[..., None], axis=-1)
        return np.ascontiguousarray(
            dcols.reshape(N, C, Ho, Wo, ph, pw).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W)
        )

    Hs, Ws = _padded_extent(g)
    dxp = np.zeros((N, C, max(Hs, p + H), max(Ws, p + W)), dtype=dtype)
    contrib = np.empty_like(dout)
    for a in range(ph):
        for b in range(pw):
            k = a * pw + b
            # For one offset the targets of different windows are distinct pixels, so a
            # strided += is exact; different offsets (overlapping windows) add up in turn.
            contrib.fill(0)
            np.copyto(contrib, dout, where=idx == k)
            dxp[:, :, a : a + s * (Ho - 1) + 1 : s, b : b + s * (Wo - 1) + 1 : s] += contrib
    if p == 0 and dxp.shape[2:] == (H, W):
        return dxp
    return np.ascontiguousarray(dxp[:, :, p : p + H, p : p + W])
