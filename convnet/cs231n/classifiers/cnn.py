"""The kit's three-layer convolutional network, composed of convnet's layers.

conv - relu - 2x2 max pool - affine - relu - affine - softmax. The convolution keeps the
spatial size (stride 1, pad (filter_size - 1) // 2) and the pool halves it. Weights are
drawn from NumPy's global random state (``weight_scale * randn``), biases are zero, as in
the kit. convnet's native equivalent is :class:`convnet.models.ThreeLayerConvNet` (a
``Sequential`` with parameters keyed ``conv1/W``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convnet.cs231n import _random
from convnet.cs231n import layer_utils as _layer_utils
from convnet.cs231n.classifiers._common import as_input, l2_penalty
from convnet.cs231n.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from convnet.cs231n.layers import affine_backward, affine_forward, softmax_loss

# As in the kit, a star import of this module also brings the layer functions and sandwiches.
__all__ = ["ThreeLayerConvNet", *_layer_utils.__all__]


def __getattr__(name: str) -> Any:
    if name in _layer_utils.__all__:
        return getattr(_layer_utils, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax.

    Inputs:
    - input_dim: (C, H, W) of each input image (H and W even).
    - num_filters: F. filter_size: HH == WW (odd, so that the padding keeps the size).
    - hidden_dim: size of the hidden affine layer. num_classes: of the scores.
    - weight_scale: std of the normal initial weights. reg: L2 strength over W1..W3.
    - dtype: of every parameter.

    ``params``: W1 (F, C, HH, WW), b1 (F,), W2 (F * H/2 * W/2, hidden_dim), b2, W3
    (hidden_dim, num_classes), b3.
    """

    def __init__(
        self,
        input_dim: Sequence[int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: Any = np.float32,
    ) -> None:
        C, H, W = (int(d) for d in input_dim)
        self.reg = reg
        self.dtype = dtype
        self.filter_size = int(filter_size)
        pooled = num_filters * (H // 2) * (W // 2)
        self.params: dict[str, np.ndarray] = {
            "W1": weight_scale * _random.randn(num_filters, C, filter_size, filter_size),
            "b1": np.zeros(num_filters),
            "W2": weight_scale * _random.randn(pooled, hidden_dim),
            "b2": np.zeros(hidden_dim),
            "W3": weight_scale * _random.randn(hidden_dim, num_classes),
            "b3": np.zeros(num_classes),
        }
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, num_classes) of X (N, C, H, W) when y is None; else ``(loss, grads)``
        with the softmax loss plus L2 and grads keyed like params."""
        p = self.params
        X = as_input(X, self.dtype)
        conv_param = {"stride": 1, "pad": (self.filter_size - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        a1, c1 = conv_relu_pool_forward(X, p["W1"], p["b1"], conv_param, pool_param)
        a2, c2 = affine_relu_forward(a1, p["W2"], p["b2"])
        scores, c3 = affine_forward(a2, p["W3"], p["b3"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        da2, grads["W3"], grads["b3"] = affine_backward(dscores, c3)
        da1, grads["W2"], grads["b2"] = affine_relu_backward(da2, c2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(da1, c1)
        loss += l2_penalty(p, grads, self.reg, ("W1", "W2", "W3"))
        return loss, grads
