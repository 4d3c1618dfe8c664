"""The kit's ``layers`` module: cs231n layer functions on convnet's implementations.

Forward functions return ``(out, cache)``, backward functions take ``(dout, cache)``.
Data is NCHW, conv weights ``(F, C, HH, WW)``. Differences from convnet's native functions:

- ``dropout_forward``: ``dropout_param['p']`` is the probability of KEEPING a unit (the
  2018 kit's convention; convnet's native ``p`` is the drop probability). Without a
  ``'seed'`` the mask is drawn from NumPy's global random state, so ``np.random.seed``
  makes it reproducible, as in the kit.
- Normalisation layers accept integer ``gamma``/``beta`` (cast to x's float dtype).
- ``batchnorm_backward`` follows the computation graph stage by stage;
  ``batchnorm_backward_alt`` is the simplified closed form (convnet's native backward).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.cs231n import _random
from convnet.errors import LayerInputError
from convnet.layers import batchnorm as _bn
from convnet.layers import dropout as _dropout
from convnet.layers import groupnorm as _gn
from convnet.layers import layernorm as _ln
from convnet.layers.activations import relu_backward, relu_forward
from convnet.layers.affine import affine_backward, affine_forward
from convnet.layers.batchnorm_staged import batchnorm_backward_staged
from convnet.layers.conv_naive import conv_backward_naive, conv_forward_naive
from convnet.layers.losses import softmax_loss, svm_loss
from convnet.layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "layernorm_forward",
    "layernorm_backward",
    "dropout_forward",
    "dropout_backward",
    "conv_forward_naive",
    "conv_backward_naive",
    "max_pool_forward_naive",
    "max_pool_backward_naive",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
    "svm_loss",
    "softmax_loss",
]


def _as_float_like(x: Any, *arrays: Any) -> list[np.ndarray]:
    """Cast the normalisation parameters to x's float dtype (float64 when x is not float).

    The kit's notebooks pass integer arrays such as ``np.asarray([3, 4, 5])``; convnet's
    native layers refuse them, so the cast happens here, in the kit's adapter only.
    """
    x_dtype = np.asarray(x).dtype
    dtype = x_dtype if np.issubdtype(x_dtype, np.floating) else np.dtype(np.float64)
    out = []
    for a in arrays:
        arr = np.asarray(a)
        out.append(arr.astype(dtype) if not np.issubdtype(arr.dtype, np.floating) else arr)
    return out


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Batch normalisation.

    Inputs:
    - x: (N, D) data.
    - gamma, beta: (D,) scale and shift (integers are accepted).
    - bn_param: 'mode' ('train' | 'test'), 'eps' (1e-5), 'momentum' (0.9), 'running_mean',
      'running_var' ((D,), created on the first call and updated in place in train mode).

    Returns ``(out, cache)``: out (N, D).
    """
    gamma, beta = _as_float_like(x, gamma, beta)
    return _bn.batchnorm_forward(x, gamma, beta, bn_param)


def batchnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of batch norm through the computation graph, one stage at a time.

    Inputs: dout (N, D); cache from :func:`batchnorm_forward`.
    Returns dx (N, D), dgamma (D,), dbeta (D,).
    """
    return batchnorm_backward_staged(dout, cache)


def batchnorm_backward_alt(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of batch norm with the simplified closed-form gradient (one pass).

    Inputs: dout (N, D); cache from :func:`batchnorm_forward`.
    Returns dx (N, D), dgamma (D,), dbeta (D,).
    """
    return _bn.batchnorm_backward(dout, cache)


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Layer normalisation of each sample over its features.

    Inputs:
    - x: (N, D) data.
    - gamma, beta: (D,) scale and shift (integers are accepted).
    - ln_param: optional 'eps' (1e-5).

    Returns ``(out, cache)``: out (N, D).
    """
    gamma, beta = _as_float_like(x, gamma, beta)
    return _ln.layernorm_forward(x, gamma, beta, ln_param)


def layernorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of layer norm. Inputs: dout (N, D). Returns dx (N, D), dgamma (D,),
    dbeta (D,)."""
    return _ln.layernorm_backward(dout, cache)


def dropout_forward(x: np.ndarray, dropout_param: dict[str, Any]) -> tuple[np.ndarray, tuple]:
    """Inverted dropout with the kit's KEEP probability.

    Inputs:
    - x: array of any shape.
    - dropout_param: dict with
      - 'p': probability of KEEPING each unit, 0 < p <= 1 (1: no dropout);
      - 'mode': 'train' (random mask, kept units scaled by 1 / p) or 'test' (identity);
      - 'seed' (optional): with a seed every call draws the same mask (what a gradient
        check needs); without one the mask comes from NumPy's global random state.

    Returns ``(out, cache)``: out has x's shape and dtype; cache is (dropout_param, mask).
    """
    keep = float(dropout_param.get("p", 0.5))
    if not 0.0 < keep <= 1.0:
        raise LayerInputError(
            "dropout_forward: dropout_param['p'] is the probability of KEEPING a unit (the "
            f"2018 cs231n convention) and must be in (0, 1], got {keep}"
        )
    mode = dropout_param.get("mode", "train")
    seed = dropout_param.get("seed")
    if seed is None and mode == "train":
        seed = _random.seed()
    native = {"p": 1.0 - keep, "mode": mode, "seed": seed}
    out, (_, mask) = _dropout.dropout_forward(x, native)
    return out, (dropout_param, mask)


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of dropout: dx (x's shape) = dout * mask in train mode, dout in test mode."""
    return _dropout.dropout_backward(dout, cache)


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Batch norm of each channel over (N, H, W).

    Inputs: x (N, C, H, W); gamma, beta (C,) (integers accepted); bn_param as in
    :func:`batchnorm_forward` (running statistics of shape (C,)).
    Returns ``(out, cache)``: out (N, C, H, W).
    """
    gamma, beta = _as_float_like(x, gamma, beta)
    return _bn.spatial_batchnorm_forward(x, gamma, beta, bn_param)


def spatial_batchnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of spatial batch norm: dout (N, C, H, W) -> dx (N, C, H, W), dgamma (C,),
    dbeta (C,)."""
    return _bn.spatial_batchnorm_backward(dout, cache)


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Group normalisation: each sample's C channels in G groups, each group standardised
    over its (C/G, H, W) values, then a per-channel scale and shift.

    Inputs: x (N, C, H, W); gamma, beta (1, C, 1, 1) or (C,) (integers accepted);
    G a divisor of C; gn_param with optional 'eps' (1e-5).
    Returns ``(out, cache)``: out (N, C, H, W).
    """
    gamma, beta = _as_float_like(x, gamma, beta)
    return _gn.spatial_groupnorm_forward(x, gamma, beta, G, gn_param)


def spatial_groupnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of group norm: dout (N, C, H, W) -> dx (N, C, H, W), and dgamma, dbeta in
    gamma's shape."""
    return _gn.spatial_groupnorm_backward(dout, cache)
