"""The kit's ``layer_utils``: common layer "sandwiches" as single forward/backward pairs.

Each forward returns ``(out, cache)`` with cache the tuple of its parts' caches; each
backward returns the gradients of every input in order. As in the kit, ``from
convnet.cs231n.layer_utils import *`` also brings every function of ``layers`` and
``fast_layers``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.cs231n import fast_layers as _fast_layers
from convnet.cs231n import layers as _layers
from convnet.cs231n.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from convnet.cs231n.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

__all__ = [
    "affine_relu_forward",
    "affine_relu_backward",
    "affine_bn_relu_forward",
    "affine_bn_relu_backward",
    "affine_ln_relu_forward",
    "affine_ln_relu_backward",
    "conv_relu_forward",
    "conv_relu_backward",
    "conv_bn_relu_forward",
    "conv_bn_relu_backward",
    "conv_relu_pool_forward",
    "conv_relu_pool_backward",
]
#: the sandwiches above; ``__all__`` adds the layer functions the kit's module re-exported
SANDWICHES = tuple(__all__)
__all__ += [n for n in _layers.__all__ + _fast_layers.__all__ if n not in __all__]


def __getattr__(name: str) -> Any:
    # The layer functions are served from their modules (PEP 562) rather than imported one
    # by one here; the star import above reads them through this hook.
    for module in (_layers, _fast_layers):
        if name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

Grads3 = tuple[np.ndarray, np.ndarray, np.ndarray]
Grads5 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """affine - relu. x (N, d1..dk), w (D, M), b (M,) -> out (N, M)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: tuple) -> Grads3:
    """Backward of affine - relu: dout (N, M) -> dx, dw, db."""
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def affine_bn_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    bn_param: dict[str, Any],
) -> tuple[np.ndarray, tuple]:
    """affine - batch norm - relu. x (N, d1..dk), w (D, M), b, gamma, beta (M,) -> (N, M)."""
    a, fc_cache = affine_forward(x, w, b)
    an, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout: np.ndarray, cache: tuple) -> Grads5:
    """Backward of affine - batch norm - relu: dout (N, M) -> dx, dw, db, dgamma, dbeta."""
    fc_cache, bn_cache, relu_cache = cache
    dan, dgamma, dbeta = batchnorm_backward_alt(relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = affine_backward(dan, fc_cache)
    return dx, dw, db, dgamma, dbeta


def affine_ln_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    ln_param: dict[str, Any],
) -> tuple[np.ndarray, tuple]:
    """affine - layer norm - relu. x (N, d1..dk), w (D, M), b, gamma, beta (M,) -> (N, M)."""
    a, fc_cache = affine_forward(x, w, b)
    an, ln_cache = layernorm_forward(a, gamma, beta, ln_param)
    out, relu_cache = relu_forward(an)
    return out, (fc_cache, ln_cache, relu_cache)


def affine_ln_relu_backward(dout: np.ndarray, cache: tuple) -> Grads5:
    """Backward of affine - layer norm - relu: dout (N, M) -> dx, dw, db, dgamma, dbeta."""
    fc_cache, ln_cache, relu_cache = cache
    dan, dgamma, dbeta = layernorm_backward(relu_backward(dout, relu_cache), ln_cache)
    dx, dw, db = affine_backward(dan, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """conv - relu. x (N, C, H, W), w (F, C, HH, WW), b (F,) -> (N, F, H', W')."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: tuple) -> Grads3:
    """Backward of conv - relu: dout (N, F, H', W') -> dx, dw, db."""
    conv_cache, relu_cache = cache
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_bn_relu_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
    conv_param: dict, bn_param: dict[str, Any],
) -> tuple[np.ndarray, tuple]:
    """conv - spatial batch norm - relu. x (N, C, H, W), w (F, C, HH, WW), b, gamma,
    beta (F,) -> (N, F, H', W')."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: np.ndarray, cache: tuple) -> Grads5:
    """Backward of conv - batch norm - relu: dout (N, F, H', W') -> dx, dw, db, dgamma,
    dbeta."""
    conv_cache, bn_cache, relu_cache = cache
    dan, dgamma, dbeta = spatial_batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    dx, dw, db = conv_backward_fast(dan, conv_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_pool_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict, pool_param: dict
) -> tuple[np.ndarray, tuple]:
    """conv - relu - max pool. x (N, C, H, W), w (F, C, HH, WW), b (F,) ->
    (N, F, H'', W'')."""
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: tuple) -> Grads3:
    """Backward of conv - relu - pool: dout (N, F, H'', W'') -> dx, dw, db."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)
