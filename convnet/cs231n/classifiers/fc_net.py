"""The kit's fully connected classifiers, composed of convnet's layers.

``TwoLayerNet``: affine - relu - affine - softmax. ``FullyConnectedNet``:
``{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax``.
Weights are drawn from NumPy's global random state (``weight_scale * randn``) and biases
are zero, as in the kit, so ``np.random.seed`` before construction repeats a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convnet.cs231n import _random
from convnet.cs231n import layer_utils as _layer_utils
from convnet.cs231n.classifiers._common import as_input, l2_penalty
from convnet.cs231n.layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from convnet.cs231n.layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)

# As in the kit, a star import of this module also brings the layer functions and sandwiches.
__all__ = ["TwoLayerNet", "FullyConnectedNet", *_layer_utils.__all__]


def __getattr__(name: str) -> Any:
    if name in _layer_utils.__all__:
        return getattr(_layer_utils, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_NORMALIZATIONS = (None, "batchnorm", "layernorm")


class TwoLayerNet:
    """Two-layer fully connected network: affine - relu - affine - softmax.

    Inputs:
    - input_dim: D, the size of each (flattened) input.
    - hidden_dim: H. num_classes: C.
    - weight_scale: std of the normal initial weights.
    - reg: L2 strength (``0.5 * reg * sum(W**2)`` over W1, W2); may be changed later.

    ``params``: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,), float64.
    """

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
    ) -> None:
        self.reg = reg
        self.params: dict[str, np.ndarray] = {
            "W1": weight_scale * _random.randn(input_dim, hidden_dim),
            "b1": np.zeros(hidden_dim),
            "W2": weight_scale * _random.randn(hidden_dim, num_classes),
            "b2": np.zeros(num_classes),
        }

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, C) of X (N, d1..dk) when y is None; else ``(loss, grads)`` with the
        softmax loss plus L2 and grads keyed like params."""
        p = self.params
        X = as_input(X, p["W1"].dtype)
        h, h_cache = affine_relu_forward(X, p["W1"], p["b1"])
        scores, out_cache = affine_forward(h, p["W2"], p["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, out_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dh, h_cache)
        loss += l2_penalty(p, grads, self.reg, ("W1", "W2"))
        return loss, grads


class FullyConnectedNet:
    """Fully connected network of any depth with optional normalisation and dropout.

    Inputs:
    - hidden_dims: sizes of the hidden layers.
    - input_dim: D. num_classes: C.
    - dropout: probability of KEEPING a unit (the kit's convention); 1 means no dropout.
    - normalization: None, 'batchnorm' or 'layernorm' after every hidden affine layer.
    - reg: L2 strength over the weights W1..WL.
    - weight_scale: std of the normal initial weights.
    - dtype: of every parameter (float64 for gradient checks).
    - seed: fixes the dropout masks (the same on every call), for gradient checks.

    ``params``: W1..WL, b1..bL, and gamma1/beta1..gamma(L-1)/beta(L-1) with normalisation.
    ``bn_params``: one dict per hidden layer (running statistics for batch norm);
    ``dropout_param``: the dropout layers' dict (empty without dropout).
    """

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: Any = np.float32,
        seed: int | None = None,
    ) -> None:
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"FullyConnectedNet: normalization must be one of {_NORMALIZATIONS}, got "
                f"{normalization!r}"
            )
        if not 0 < dropout <= 1:
            raise ValueError(
                "FullyConnectedNet: dropout is the probability of KEEPING a unit, in (0, 1] "
                f"(1: no dropout), got {dropout!r}"
            )
        self.normalization = normalization
        self.use_dropout = dropout != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params: dict[str, np.ndarray] = {}
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(1, self.num_layers + 1):
            self.params[f"W{i}"] = weight_scale * _random.randn(dims[i - 1], dims[i])
            self.params[f"b{i}"] = np.zeros(dims[i])
            if normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(dims[i])
                self.params[f"beta{i}"] = np.zeros(dims[i])
        self.dropout_param: dict[str, Any] = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params: list[dict[str, Any]] = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        elif normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def _hidden_forward(self, i: int, h: np.ndarray) -> tuple[np.ndarray, tuple]:
        p = self.params
        W, b = p[f"W{i}"], p[f"b{i}"]
        if self.normalization == "batchnorm":
            out, cache = affine_bn_relu_forward(
                h, W, b, p[f"gamma{i}"], p[f"beta{i}"], self.bn_params[i - 1])
        elif self.normalization == "layernorm":
            out, cache = affine_ln_relu_forward(
                h, W, b, p[f"gamma{i}"], p[f"beta{i}"], self.bn_params[i - 1])
        else:
            out, cache = affine_relu_forward(h, W, b)
        drop_cache = None
        if self.use_dropout:
            out, drop_cache = dropout_forward(out, self.dropout_param)
        return out, (cache, drop_cache)

    def _hidden_backward(self, i: int, dout: np.ndarray, cache: tuple,
                         grads: dict[str, np.ndarray]) -> np.ndarray:
        layer_cache, drop_cache = cache
        if drop_cache is not None:
            dout = dropout_backward(dout, drop_cache)
        if self.normalization == "batchnorm":
            dx, dw, db, dg, dbeta = affine_bn_relu_backward(dout, layer_cache)
        elif self.normalization == "layernorm":
            dx, dw, db, dg, dbeta = affine_ln_relu_backward(dout, layer_cache)
        else:
            dx, dw, db = affine_relu_backward(dout, layer_cache)
        grads[f"W{i}"], grads[f"b{i}"] = dw, db
        if self.normalization is not None:
            grads[f"gamma{i}"], grads[f"beta{i}"] = dg, dbeta
        return dx

    def loss(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """Scores (N, C) of X (N, d1..dk) in test mode when y is None; else, in train mode,
        ``(loss, grads)`` with the softmax loss plus L2 and grads keyed like params."""
        X = as_input(X, self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode
        h, caches = X, []
        for i in range(1, self.num_layers):
            h, cache = self._hidden_forward(i, h)
            caches.append(cache)
        L = self.num_layers
        scores, out_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        if mode == "test":
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, out_cache)
        for i in range(L - 1, 0, -1):
            dh = self._hidden_backward(i, dh, caches[i - 1], grads)
        loss += l2_penalty(self.params, grads, self.reg, (f"W{i}" for i in range(1, L + 1)))
        return loss, grads
