"""The kit's ``fast_layers`` module on convnet's fast backends (no Cython build step).

- ``conv_forward_fast``/``conv_backward_fast``: convnet's dispatching ``conv_forward`` (Numba
  kernels, Winograd for suitable 3x3 layers, NumPy im2col without Numba).
- ``conv_forward_im2col`` and ``conv_forward_strides``: convnet's NumPy im2col backend, which
  builds its columns with stride tricks (``sliding_window_view``).
- ``max_pool_forward_fast``: convnet's dispatching ``max_pool_forward``;
  ``max_pool_forward_reshape`` (non-overlapping square windows only, like the kit's) and
  ``max_pool_forward_im2col``: convnet's NumPy im2col backend.

Every conv cache names the backend that made it, so each ``conv_backward_*`` here accepts
the cache of any conv forward pass. Tied maxima in a pooling window: the whole gradient goes
to the first maximum in row-major order (the kit's reshape version splits it).
"""

from __future__ import annotations

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers import conv as _conv
from convnet.layers import pool as _pool
from convnet.layers import pool_im2col as _pool_im2col

__all__ = [
    "conv_forward_fast",
    "conv_backward_fast",
    "conv_forward_im2col",
    "conv_backward_im2col",
    "conv_forward_strides",
    "conv_backward_strides",
    "max_pool_forward_fast",
    "max_pool_backward_fast",
    "max_pool_forward_reshape",
    "max_pool_backward_reshape",
    "max_pool_forward_im2col",
    "max_pool_backward_im2col",
]


def conv_forward_fast(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution with the fastest backend. x (N, C, H, W), w (F, C, HH, WW), b (F,),
    conv_param {'stride', 'pad'}; returns ``(out (N, F, H', W'), cache)``."""
    return _conv.conv_forward(x, w, b, conv_param)


def conv_backward_fast(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of any conv forward pass: dout (N, F, H', W') -> dx, dw, db."""
    return _conv.conv_backward(dout, cache)


def conv_forward_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution as one matrix product over im2col columns (NumPy). Shapes as
    :func:`conv_forward_fast`."""
    return _conv.CONV_BACKENDS["im2col"][0](x, w, b, conv_param)


def conv_forward_strides(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Convolution over a stride-tricks view of the padded input (the same NumPy backend
    as :func:`conv_forward_im2col`). Shapes as :func:`conv_forward_fast`."""
    return _conv.CONV_BACKENDS["im2col"][0](x, w, b, conv_param)


conv_backward_im2col = conv_backward_fast
conv_backward_strides = conv_backward_fast


def max_pool_forward_fast(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling with the fastest backend. x (N, C, H, W), pool_param {'pool_height',
    'pool_width', 'stride'}; returns ``(out (N, C, H', W'), cache)``."""
    return _pool.max_pool_forward(x, pool_param)


def max_pool_backward_fast(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`max_pool_forward_fast`: dout (N, C, H', W') -> dx (N, C, H, W)."""
    return _pool.max_pool_backward(dout, cache)


def max_pool_forward_reshape(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling by reshaping, for square windows that tile the input exactly
    (pool_height == pool_width == stride, dividing H and W); ValueError otherwise.

    x (N, C, H, W) -> ``(out (N, C, H / stride, W / stride), cache)``.
    """
    ph, pw, s = (pool_param.get(k) for k in ("pool_height", "pool_width", "stride"))
    H, W = np.shape(x)[-2:] if np.ndim(x) == 4 else (None, None)
    if not (ph == pw == s and H is not None and s and H % s == 0 and W % s == 0):
        raise LayerInputError(
            "max_pool_forward_reshape: needs pool_height == pool_width == stride dividing H "
            f"and W of x (N, C, H, W); got pool_param {pool_param} and x shape {np.shape(x)}; "
            "use max_pool_forward_fast for other windows"
        )
    return _pool_im2col.max_pool_forward_im2col(x, pool_param)


def max_pool_forward_im2col(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling over im2col windows (any window and stride). Shapes as
    :func:`max_pool_forward_fast`."""
    return _pool_im2col.max_pool_forward_im2col(x, pool_param)


def max_pool_backward_im2col(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`max_pool_forward_im2col` (and of the reshape version)."""
    return _pool_im2col.max_pool_backward_im2col(dout, cache)


max_pool_backward_reshape = max_pool_backward_im2col
