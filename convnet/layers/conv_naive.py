"""Convolution with plain loops: the readable reference every fast backend is tested against.

Notation (cs231n):

* ``x``: input, shape ``(N, C, H, W)``;
* ``w``: filters, shape ``(F, C, HH, WW)``;
* ``b``: biases, shape ``(F,)``;
* ``conv_param``: ``{'stride': s, 'pad': p, 'dilation': d}``, ``dilation`` optional (default 1);
  ``stride`` defaults to 1 and ``pad`` to 0 when absent;
* output ``(N, F, H', W')`` with ``H' = 1 + (H + 2p - d*(HH-1) - 1) // s`` (likewise ``W'``).

Output pixel ``(y, x)`` of filter ``f`` sees input rows ``y*s - p + i*d`` for ``i < HH`` and
columns ``x*s - p + j*d`` for ``j < WW``; positions outside the image read zeros (zero padding).
Every conv backend checks its inputs with the same helpers (``convnet.layers._validate``), so
all of them accept and reject exactly the same inputs with the same messages.
"""

from __future__ import annotations

import numpy as np

from convnet.layers._validate import check_cache, check_conv_inputs, check_dout, conv_geometry


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a convolutional layer, written as plain loops.

    Inputs:
    - x: input data of shape (N, C, H, W).
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: {'stride': s, 'pad': p, 'dilation': d (optional, default 1)}.

    Returns a tuple of:
    - out: output of shape (N, F, H', W'), H' = 1 + (H + 2p - d*(HH-1) - 1) // s, same dtype
      as the inputs.
    - cache: ('naive', x, w, b, conv_param) for :func:`conv_backward_naive`.
    """
    x, w, b, g = check_conv_inputs("conv_forward_naive", x, w, b, conv_param)
    s, p, d = g.stride, g.pad, g.dilation
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.empty((g.N, g.F, g.H_out, g.W_out), dtype=x.dtype)
    for n in range(g.N):
        for f in range(g.F):
            for i in range(g.H_out):
                for j in range(g.W_out):
                    # The receptive field: every d-th pixel of a window starting at (i*s, j*s).
                    window = xp[n, :, i * s : i * s + d * (g.HH - 1) + 1 : d,
                                j * s : j * s + d * (g.WW - 1) + 1 : d]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, ("naive", x, w, b, dict(conv_param))


def conv_backward_naive(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of a convolutional layer, written as plain loops.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: from :func:`conv_forward_naive`.

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W).
    - dw: gradient with respect to w, shape (F, C, HH, WW).
    - db: gradient with respect to b, shape (F,).
    """
    _, x, w, b, conv_param = check_cache("conv_backward_naive", cache, "naive", 5)
    g = conv_geometry("conv_backward_naive", x, w, b, conv_param)
    dout = check_dout("conv_backward_naive", dout, (g.N, g.F, g.H_out, g.W_out), "(N, F, H', W')")
    dout = dout.astype(x.dtype, copy=False)
    s, p, d = g.stride, g.pad, g.dilation
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(g.N):
        for f in range(g.F):
            for i in range(g.H_out):
                for j in range(g.W_out):
                    rows = slice(i * s, i * s + d * (g.HH - 1) + 1, d)
                    cols = slice(j * s, j * s + d * (g.WW - 1) + 1, d)
                    # out[n, f, i, j] = sum(window * w[f]) + b[f], so each factor's gradient
                    # is the other factor times dout; windows overlap, hence +=.
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
    dx = dxp[:, :, p : p + g.H, p : p + g.W]
    return np.ascontiguousarray(dx), dw, db
