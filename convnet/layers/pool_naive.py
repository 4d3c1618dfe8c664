"""Max pooling, the readable reference: explicit loops over every output position.

All three backends (naive, im2col, numba) share one signature and one semantics::

    out, cache = max_pool_forward_*(x, pool_param)
    dx = max_pool_backward_*(dout, cache)

``pool_param`` keys:

- ``pool_height``, ``pool_width`` (int >= 1): window size;
- ``stride`` (int >= 1): step between windows (may be smaller than the window, giving
  overlapping windows such as 3x3 stride 2, or larger, skipping pixels);
- ``pad`` (int, default 0): implicit padding on every side. Padded cells count as -inf, so
  they are never the maximum; ``0 <= pad < min(pool_height, pool_width)`` so every window
  holds at least one real pixel;
- ``ceil_mode`` (bool, default False): Caffe-style rounding of the output size.

Output size along one axis (input ``H``, window ``k``, stride ``s``, pad ``p``; computed by
``convnet.layers._geometry.out_size``, which every window layer shares)::

    floor mode:  H' = floor((H + 2p - k) / s) + 1
    ceil mode:   H' = ceil((H + 2p - k) / s) + 1, minus 1 if the last window would start
                 at or beyond H + p (Caffe's rule: the last window starts inside the image
                 or its leading padding, so it always covers a real pixel)

In ceil mode the last window may hang over the bottom/right edge; it only covers the real
pixels it overlaps. Caffe applies the "minus 1" correction only when ``pad > 0``; we apply it
always. With ``pad == 0`` the two agree whenever ``stride <= window`` (every practical
network); for ``stride > window`` Caffe would emit windows that cover no pixel at all.

Ties: when several cells of a window hold the maximum, the whole upstream gradient of that
window goes to the FIRST of them in row-major window order (top row first, then left to
right). Every backend follows this rule, so their gradients agree exactly. Inputs are
assumed free of NaN (NaN handling differs between backends).

Overlapping windows: a pixel that is the maximum of several windows receives the SUM of
their upstream gradients (backward accumulates; it never assigns).
"""

from __future__ import annotations

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._geometry import window_bounds
from convnet.layers._validate import check_dout, check_max_pool_inputs


def max_pool_forward_naive(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling forward pass, one output value at a time.

    Inputs:
    - x: input of shape (N, C, H, W), float32 or float64
    - pool_param: {'pool_height', 'pool_width', 'stride', 'pad': 0, 'ceil_mode': False}

    Returns a tuple of:
    - out: (N, C, H', W') with H', W' as in the module docstring; dtype of x
    - cache: (x, geometry) for max_pool_backward_naive
    """
    x, g = check_max_pool_inputs("max_pool_forward_naive", x, pool_param)
    out = np.empty((g.N, g.C, g.H_out, g.W_out), dtype=x.dtype)
    for n in range(g.N):
        for c in range(g.C):
            for i in range(g.H_out):
                h0, h1 = window_bounds(i, g.ph, g.stride, g.pad, g.H)
                for j in range(g.W_out):
                    w0, w1 = window_bounds(j, g.pw, g.stride, g.pad, g.W)
                    out[n, c, i, j] = x[n, c, h0:h1, w0:w1].max()
    return out, (x, g)


def max_pool_backward_naive(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling backward pass, one window at a time.

    Inputs:
    - dout: upstream gradient (N, C, H', W')
    - cache: from max_pool_forward_naive

    Returns:
    - dx: gradient w.r.t. x, (N, C, H, W), dtype of x. Each window's gradient goes to its
      first maximum (row-major); overlapping windows accumulate.
    """
    x, g = cache
    dout = check_dout("max_pool_backward_naive", dout, (g.N, g.C, g.H_out, g.W_out),
                      "(N, C, H', W')")
    dx = np.zeros_like(x)
    for n in range(g.N):
        for c in range(g.C):
            for i in range(g.H_out):
                h0, h1 = window_bounds(i, g.ph, g.stride, g.pad, g.H)
                for j in range(g.W_out):
                    w0, w1 = window_bounds(j, g.pw, g.stride, g.pad, g.W)
                    window = x[n, c, h0:h1, w0:w1]
                    # np.argmax returns the first maximum in row-major order: our tie rule.
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, h0 + a, w0 + b] += dout[n, c, i, j]
    return dx


#: The name this module's bad-input error had before every layer raised LayerInputError.
PoolError = LayerInputError
