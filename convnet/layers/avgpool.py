"""Average pooling with arbitrary window, stride and zero padding."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convnet.errors import LayerInputError
from convnet.layers.affine import check_float, check_ndim


def _pool_geometry(fn: str, shape: tuple[int, ...], pool_param: dict[str, Any]):
    N, C, H, W = shape
    ph = int(pool_param.get("pool_height", 2))
    pw = int(pool_param.get("pool_width", ph))
    s = int(pool_param.get("stride", ph))
    p = int(pool_param.get("pad", 0))
    if ph < 1 or pw < 1 or s < 1 or p < 0:
        raise LayerInputError(
            f"{fn}: pool_param needs pool_height, pool_width, stride >= 1 and pad >= 0, "
            f"got {pool_param}"
        )
    if 2 * p > min(ph, pw):
        # PyTorch's rule; larger padding makes windows of (almost) nothing but zeros.
        raise LayerInputError(
            f"{fn}: pad must be at most half the window (2*pad <= min(pool_height, "
            f"pool_width)), got {pool_param}"
        )
    if pool_param.get("ceil_mode", False):
        raise LayerInputError(f"{fn}: ceil_mode is not supported for average pooling")
    Ho = (H + 2 * p - ph) // s + 1
    Wo = (W + 2 * p - pw) // s + 1
    if Ho < 1 or Wo < 1:
        raise LayerInputError(
            f"{fn}: a {ph}x{pw} window does not fit x of shape (N, C, H, W) == {shape} "
            f"with pad {p}"
        )
    return ph, pw, s, p, Ho, Wo


def avg_pool_forward(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[np.ndarray, tuple]:
    """Average pooling.

    Inputs:
    - x: (N, C, H, W).
    - pool_param: {'pool_height', 'pool_width', 'stride', 'pad' (default 0)}, as max pooling.
      Zero padding counts in the average (every window is divided by ph * pw, as
      PyTorch's default ``count_include_pad=True``).

    Returns ``(out, cache)``: out (N, C, H', W') with
    H' = (H + 2*pad - pool_height) // stride + 1, W' likewise; dtype of x.
    """
    fn = "avg_pool_forward"
    x = check_float(fn, "x", x)
    check_ndim(fn, "x", x, 4, "(N, C, H, W)")
    ph, pw, s, p, Ho, Wo = _pool_geometry(fn, x.shape, pool_param)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    win = sliding_window_view(xp, (ph, pw), axis=(2, 3))[:, :, ::s, ::s][:, :, :Ho, :Wo]
    out = win.mean(axis=(4, 5), dtype=x.dtype)
    return out, (x.shape, x.dtype, (ph, pw, s, p, Ho, Wo))


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`avg_pool_forward`: dout (N, C, H', W') -> dx (N, C, H, W)."""
    shape, dtype, (ph, pw, s, p, Ho, Wo) = cache
    N, C, H, W = shape
    if dout.shape != (N, C, Ho, Wo):
        raise LayerInputError(
            f"avg_pool_backward: dout must have shape (N, C, H', W') == {(N, C, Ho, Wo)}, "
            f"got {dout.shape}"
        )
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=dtype)
    g = dout * dtype.type(1.0 / (ph * pw))
    # One strided accumulation per window offset: ph*pw vectorised adds instead of a loop
    # over output positions; overlapping windows accumulate correctly.
    for i in range(ph):
        for j in range(pw):
            dxp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += g
    return dxp[:, :, p:p + H, p:p + W]
