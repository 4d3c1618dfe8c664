"""Average pooling with arbitrary window, stride and zero padding."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convnet.layers._validate import check_avg_pool_inputs, check_dout


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
    x, g = check_avg_pool_inputs("avg_pool_forward", x, pool_param)
    p, s = g.pad, g.stride
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    win = sliding_window_view(xp, (g.ph, g.pw), axis=(2, 3))[:, :, ::s, ::s]
    out = win[:, :, : g.H_out, : g.W_out].mean(axis=(4, 5), dtype=x.dtype)
    return out, (x.dtype, g)


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`avg_pool_forward`: dout (N, C, H', W') -> dx (N, C, H, W)."""
    dtype, g = cache
    dout = check_dout("avg_pool_backward", dout, (g.N, g.C, g.H_out, g.W_out), "(N, C, H', W')")
    p, s, Ho, Wo = g.pad, g.stride, g.H_out, g.W_out
    dxp = np.zeros((g.N, g.C, g.H + 2 * p, g.W + 2 * p), dtype=dtype)
    grad = dout * dtype.type(1.0 / (g.ph * g.pw))
    # One strided accumulation per window offset: ph*pw vectorised adds instead of a loop
    # over output positions; overlapping windows accumulate correctly.
    for i in range(g.ph):
        for j in range(g.pw):
            dxp[:, :, i:i + s * (Ho - 1) + 1:s, j:j + s * (Wo - 1) + 1:s] += grad
    return dxp[:, :, p:p + g.H, p:p + g.W]
