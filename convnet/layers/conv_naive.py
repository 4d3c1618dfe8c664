"""Convolution with plain loops: the readable reference every fast backend is tested against.

Also home of the input validation and output-size arithmetic shared by every conv backend
(``conv_im2col``, ``conv_numba``, ``conv``, ``conv_transpose``), so that all of them accept and
reject exactly the same inputs with the same messages.

Notation (cs231n):

* ``x``: input, shape ``(N, C, H, W)``;
* ``w``: filters, shape ``(F, C, HH, WW)``;
* ``b``: biases, shape ``(F,)``;
* ``conv_param``: ``{'stride': s, 'pad': p, 'dilation': d}``, ``dilation`` optional (default 1);
  ``stride`` defaults to 1 and ``pad`` to 0 when absent;
* output ``(N, F, H', W')`` with ``H' = 1 + (H + 2p - d*(HH-1) - 1) // s`` (likewise ``W'``).

Output pixel ``(y, x)`` of filter ``f`` sees input rows ``y*s - p + i*d`` for ``i < HH`` and
columns ``x*s - p + j*d`` for ``j < WW``; positions outside the image read zeros (zero padding).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class ConvGeometry(NamedTuple):
    """Sizes of one convolution, as checked by :func:`conv_geometry`."""

    N: int
    C: int
    H: int
    W: int
    F: int
    HH: int
    WW: int
    stride: int
    pad: int
    dilation: int
    H_out: int
    W_out: int


def _int_param(layer: str, conv_param: dict, key: str, default: int, minimum: int) -> int:
    """Read an integer hyper-parameter; bools and floats are rejected (``2.0`` is a typo)."""
    v = conv_param.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise ValueError(f"{layer}: conv_param[{key!r}] must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{layer}: conv_param[{key!r}] must be >= {minimum}, got {v}")
    return int(v)


def check_float_array(layer: str, name: str, a: Any) -> np.ndarray:
    """Return ``a`` as an ndarray, raising ``ValueError`` unless it has a floating dtype."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{layer}: {name} must be a float array (float32/float64), got {a.dtype}")
    return a


def conv_params(layer: str, conv_param: Any) -> tuple[int, int, int]:
    """Validate ``conv_param`` and return ``(stride, pad, dilation)``."""
    if not isinstance(conv_param, dict):
        raise ValueError(
            f"{layer}: conv_param must be a dict {{'stride': s, 'pad': p}}, got {conv_param!r}"
        )
    stride = _int_param(layer, conv_param, "stride", 1, 1)
    pad = _int_param(layer, conv_param, "pad", 0, 0)
    dilation = _int_param(layer, conv_param, "dilation", 1, 1)
    return stride, pad, dilation


def conv_out_size(size: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution along one axis (may be <= 0 for impossible settings)."""
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def conv_geometry(
    layer: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, conv_param: Any
) -> ConvGeometry:
    """Check the shapes of a convolution's inputs and compute its output size.

    Inputs:
    - layer: name used in error messages, e.g. ``'conv_forward_naive'``.
    - x: input of shape (N, C, H, W).
    - w: filters of shape (F, C, HH, WW).
    - b: biases of shape (F,), or None to skip that check.
    - conv_param: dict with int 'stride' (>= 1), 'pad' (>= 0), optional 'dilation' (>= 1).

    Returns a :class:`ConvGeometry`. Raises ``ValueError`` naming ``layer`` and the expected
    shape when anything does not fit.
    """
    stride, pad, dilation = conv_params(layer, conv_param)
    if w.ndim != 4:
        raise ValueError(f"{layer}: w must be 4-D (F, C, HH, WW), got shape {w.shape}")
    F, Cw, HH, WW = w.shape
    if x.ndim != 4 or x.shape[1] != Cw:
        raise ValueError(
            f"{layer}: x must be 4-D (N, C, H, W) with C == w.shape[1] == {Cw}, got {x.shape}"
        )
    if min(w.shape) < 1 or min(x.shape) < 1:
        raise ValueError(
            f"{layer}: x {x.shape} and w {w.shape} must have no empty axis"
        )
    if b is not None and b.shape != (F,):
        raise ValueError(f"{layer}: b must have shape (F,) == ({F},), got {b.shape}")
    N, C, H, W = x.shape
    H_out = conv_out_size(H, HH, stride, pad, dilation)
    W_out = conv_out_size(W, WW, stride, pad, dilation)
    if H_out < 1 or W_out < 1:
        raise ValueError(
            f"{layer}: output size would be {H_out}x{W_out}: the (dilated) kernel "
            f"{dilation * (HH - 1) + 1}x{dilation * (WW - 1) + 1} does not fit the padded input "
            f"{H + 2 * pad}x{W + 2 * pad} (x {x.shape}, w {w.shape}, pad {pad})"
        )
    return ConvGeometry(N, C, H, W, F, HH, WW, stride, pad, dilation, H_out, W_out)


def check_conv_inputs(
    layer: str, x: Any, w: Any, b: Any, conv_param: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ConvGeometry]:
    """Validate dtypes and shapes; return ``x, w, b`` cast to their common float dtype.

    The common dtype is ``np.result_type(x, w, b)``: float32 inputs stay float32, float64 stay
    float64 (a mix computes in the wider type, as NumPy would).
    """
    x = check_float_array(layer, "x", x)
    w = check_float_array(layer, "w", w)
    b = check_float_array(layer, "b", b)
    geom = conv_geometry(layer, x, w, b, conv_param)
    dtype = np.result_type(x.dtype, w.dtype, b.dtype)
    x, w, b = (a.astype(dtype, copy=False) for a in (x, w, b))
    return x, w, b, geom


def check_dout(layer: str, dout: Any, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Check that the upstream gradient has the forward output's shape; cast to ``dtype``."""
    dout = check_float_array(layer, "dout", dout)
    if dout.shape != tuple(shape):
        raise ValueError(
            f"{layer}: dout must have the forward output's shape (N, F, H', W') == "
            f"{tuple(shape)}, got {dout.shape}"
        )
    return dout.astype(dtype, copy=False)


def check_cache(layer: str, cache: Any, tag: str, length: int) -> tuple:
    """Check that ``cache`` came from the forward pass of backend ``tag``."""
    if not (isinstance(cache, tuple) and len(cache) == length and cache[0] == tag):
        got = cache[0] if isinstance(cache, tuple) and cache else type(cache).__name__
        raise ValueError(
            f"{layer}: cache must come from the {tag!r} conv forward pass, got one from {got!r}"
        )
    return cache


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
    dout = check_dout("conv_backward_naive", dout, (g.N, g.F, g.H_out, g.W_out), x.dtype)
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
