"""Transposed convolution ("deconvolution"): the adjoint of a convolution, plus a bias.

Take a convolution ``conv`` with weights ``w`` of shape ``(F, C, HH, WW)``, stride ``s``, padding
``p`` and dilation ``d``, mapping ``(N, C, H', W')`` to ``(N, F, H, W)``. Its transpose maps
``(N, F, H, W)`` back to ``(N, C, H', W')``:

    conv_transpose(x, w, b) = conv^T(x) + b,   <conv(z, w), x> == <z, conv^T(x)> for all z.

So the forward pass of a transposed convolution is the input-gradient (``dx``) computation of
a convolution (``col2im(w^T x)``), and its backward pass is a convolution forward (for ``dx``)
plus the convolution's weight gradient (for ``dw``). Every input pixel "paints" a copy of the
kernel, scaled by its value, into the output at a stride of ``s``; the output grows:

    H' = (H - 1)*s - 2p + d*(HH - 1) + 1 + output_padding      (likewise W')

``output_padding`` (``0 <= op < s``) adds rows/columns at the bottom/right: several
``H'`` give the same conv output size ``H`` when ``s > 1``, and it picks among them (as in
Keras). Those rows receive no kernel contribution, only the bias.
"""

from __future__ import annotations

import numpy as np

from convnet.layers._validate import (
    check_cache,
    check_dout,
    check_float,
    conv_transpose_geometry,
)
from convnet.layers.conv_numba import conv_apply, conv_data_grad, conv_weight_grad


def conv_transpose_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a transposed convolution.

    Inputs:
    - x: input of shape (N, F, H, W).
    - w: weights of shape (F, C, HH, WW): the weights of the convolution (C -> F channels) this
      layer is the transpose of.
    - b: biases of shape (C,).
    - conv_param: {'stride': s, 'pad': p, 'output_padding': op (default 0),
      'dilation': d (default 1)}.

    Returns a tuple of:
    - out: output of shape (N, C, H', W'), H' = (H-1)*s - 2p + d*(HH-1) + 1 + op; same dtype
      (float16 is computed in float32 and rounded back).
    - cache: ('conv_transpose', x, w, b, conv_param) for :func:`conv_transpose_backward`.
    """
    layer = "conv_transpose_forward"
    x, w, b = (check_float(layer, n, a) for n, a in (("x", x), ("w", w), ("b", b)))
    g = conv_transpose_geometry(layer, x, w, b, conv_param)
    dtype = np.result_type(x.dtype, w.dtype, b.dtype)
    # The kernels exist for float32/float64: float16 is computed in float32 (exact for its
    # values) and rounded back. b keeps the given dtype in the cache, which tells backward
    # the dtype to return.
    work = np.float32 if dtype == np.float16 else dtype
    x = np.ascontiguousarray(x, dtype=work)
    w = np.ascontiguousarray(w, dtype=work)
    b = b.astype(dtype, copy=False)
    out = conv_data_grad(x, w, g)
    out += b[None, :, None, None]
    return out.astype(dtype, copy=False), ("conv_transpose", x, w, b, dict(conv_param))


def conv_transpose_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of a transposed convolution.

    Inputs:
    - dout: upstream gradient of shape (N, C, H', W').
    - cache: from :func:`conv_transpose_forward`.

    Returns a tuple of:
    - dx: shape (N, F, H, W): the convolution of dout with w (the adjoint of the adjoint).
    - dw: shape (F, C, HH, WW).
    - db: shape (C,).
    """
    layer = "conv_transpose_backward"
    _, x, w, b, conv_param = check_cache(layer, cache, "conv_transpose", 5)
    g = conv_transpose_geometry(layer, x, w, b, conv_param)
    dout = check_dout(layer, dout, (g.N, g.C, g.H, g.W), "(N, C, H', W')")
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    dx = conv_apply(dout, w, None, g)
    # out = conv^T(x; w): the same bilinear form as conv(dout; w) paired with x, so the weight
    # gradient is the convolution's weight gradient with input dout and output-gradient x.
    dw, _ = conv_weight_grad(dout, x, g)
    db = dout.sum(axis=(0, 2, 3))
    given = b.dtype  # float16 layers computed in float32 return float16
    return dx.astype(given, copy=False), dw.astype(given, copy=False), db.astype(given, copy=False)
