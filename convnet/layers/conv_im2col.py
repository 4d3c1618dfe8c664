"""Convolution as one matrix product: ``im2col`` with NumPy stride tricks, then a GEMM.

Column layout (shared by :func:`im2col` and :func:`col2im`):

``cols`` has shape ``(C*HH*WW, N*H'*W')``.

* row ``r = (c*HH + i)*WW + j`` holds kernel tap ``(i, j)`` of input channel ``c`` (the same
  order as ``w.reshape(F, -1)``, so the forward pass is ``w.reshape(F, -1) @ cols``);
* column ``q = (n*H' + y)*W' + x`` is output pixel ``(y, x)`` of image ``n``;
* ``cols[r, q] = x_pad[n, c, y*s + i*d, x*s + j*d]`` where ``x_pad`` is ``x`` zero-padded by
  ``pad`` on both sides of H and W.

``col2im`` is the exact adjoint (transpose) of ``im2col``: it scatters every column entry back
to the pixel it was read from, summing where windows overlap and dropping the padding, so
``<im2col(x), c> == <x, col2im(c)>`` for every ``x`` and ``c``.

Memory: ``cols`` is ``HH*WW`` times the (padded) input. This backend is the readable NumPy
version; the Numba backend (``conv_numba``) works in bounded chunks instead.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convnet._threads import single_threaded_blas
from convnet.errors import LayerInputError
from convnet.layers._validate import (
    check_cache,
    check_conv_inputs,
    check_dout,
    conv_geometry,
    im2col_output,
)


def im2col(
    x: np.ndarray, HH: int, WW: int, stride: int = 1, pad: int = 0, dilation: int = 1
) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a column (layout in the module docstring).

    Inputs:
    - x: array of shape (N, C, H, W).
    - HH, WW: kernel height and width.
    - stride, pad, dilation: as in ``conv_param``.

    Returns:
    - cols: array of shape (C*HH*WW, N*H'*W'), same dtype as x (a new array).
    """
    x = np.asarray(x)
    H_out, W_out = im2col_output("im2col", x.shape, HH, WW, stride, pad, dilation)
    N, C = x.shape[:2]
    s, d = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    # A view (N, C, Hp-eh+1, Wp-ew+1, eh, ew) of every dilated window; slicing picks the strided
    # window positions and the dilated taps, still without copying.
    eh, ew = d * (HH - 1) + 1, d * (WW - 1) + 1
    win = sliding_window_view(xp, (eh, ew), axis=(2, 3))
    win = win[:, :, : s * (H_out - 1) + 1 : s, : s * (W_out - 1) + 1 : s, ::d, ::d]
    # (N, C, H', W', HH, WW) -> (C, HH, WW, N, H', W'): the one copy, into the column layout.
    return np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(
        C * HH * WW, N * H_out * W_out
    )


def col2im(
    cols: np.ndarray,
    x_shape: tuple,
    HH: int,
    WW: int,
    stride: int = 1,
    pad: int = 0,
    dilation: int = 1,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum every column entry back into the pixel it came from.

    Inputs:
    - cols: array of shape (C*HH*WW, N*H'*W') in the layout of :func:`im2col`.
    - x_shape: (N, C, H, W), the shape of the array ``im2col`` was applied to.
    - HH, WW, stride, pad, dilation: as given to ``im2col``.

    Returns:
    - x: array of shape (N, C, H, W), same dtype as cols; entries that fell into the zero
      padding are dropped (their pixels are not part of x).
    """
    N, C, H, W = (int(v) for v in x_shape) if len(x_shape) == 4 else (0, 0, 0, 0)
    H_out, W_out = im2col_output("col2im", tuple(x_shape), HH, WW, stride, pad, dilation)
    cols = np.asarray(cols)
    if cols.shape != (C * HH * WW, N * H_out * W_out):
        raise LayerInputError(
            f"col2im: cols must have shape (C*HH*WW, N*H'*W') == "
            f"({C * HH * WW}, {N * H_out * W_out}), got {cols.shape}"
        )
    s, d = stride, dilation
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    c6 = cols.reshape(C, HH, WW, N, H_out, W_out)
    # One vectorised scatter-add per kernel tap: tap (i, j) of all windows hits a strided grid.
    for i in range(HH):
        for j in range(WW):
            xp[:, :, i * d : i * d + s * (H_out - 1) + 1 : s,
               j * d : j * d + s * (W_out - 1) + 1 : s] += c6[:, i, j].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(xp[:, :, pad : pad + H, pad : pad + W])


def conv_forward_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a convolutional layer as ``w.reshape(F, -1) @ im2col(x)``.

    Inputs:
    - x: input data of shape (N, C, H, W).
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: {'stride': s, 'pad': p, 'dilation': d (optional, default 1)}.

    Returns a tuple of:
    - out: output of shape (N, F, H', W'), same dtype as the inputs.
    - cache: ('im2col', x, w, b, conv_param, cols); cols is (C*HH*WW, N*H'*W').
    """
    x, w, b, g = check_conv_inputs("conv_forward_im2col", x, w, b, conv_param)
    cols = im2col(x, g.HH, g.WW, g.stride, g.pad, g.dilation)
    out = w.reshape(g.F, -1) @ cols + b[:, None]
    out = np.ascontiguousarray(out.reshape(g.F, g.N, g.H_out, g.W_out).transpose(1, 0, 2, 3))
    return out, ("im2col", x, w, b, dict(conv_param), cols)


def conv_backward_im2col(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_im2col`.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: from :func:`conv_forward_im2col`.

    Returns a tuple of:
    - dx: shape (N, C, H, W); dw: shape (F, C, HH, WW); db: shape (F,).
    """
    _, x, w, b, conv_param, cols = check_cache("conv_backward_im2col", cache, "im2col", 6)
    g = conv_geometry("conv_backward_im2col", x, w, b, conv_param)
    dout = check_dout("conv_backward_im2col", dout, (g.N, g.F, g.H_out, g.W_out),
                      "(N, F, H', W')").astype(x.dtype, copy=False)
    F = g.F
    d2 = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*H'*W'), the layout of w @ cols
    db = d2.sum(axis=1)
    # dw is a skinny GEMM (F x C*HH*WW outputs, inner size N*H'*W'): multithreaded OpenBLAS
    # splits it badly and, on a busy machine, spends 20-80x longer waiting at its barriers
    # (measured: 700-860 ms vs 10-45 ms CPU for x (100,1,28,28), w (5,1,11,11)).
    with single_threaded_blas():
        dw = (d2 @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ d2
    dx = col2im(dcols, x.shape, g.HH, g.WW, g.stride, g.pad, g.dilation)
    return dx, dw, db
