"""Element-wise activations: ReLU, leaky ReLU, sigmoid, tanh.

All keep the shape and dtype of their input; backward passes return ``dx`` only.
"""

from __future__ import annotations

import numpy as np

from convnet.layers._validate import check_dout, check_float


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ReLU ``max(0, x)``.

    Inputs:
    - x: array of any shape.

    Returns ``(out, cache)``: out has x's shape and dtype; cache is x.
    """
    x = check_float("relu_forward", "x", x)
    return np.maximum(x, 0), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward of ReLU. dout and the returned dx have x's shape.

    The subgradient at exactly 0 is taken as 0 (as in cs231n, PyTorch and TF).
    """
    x = cache
    dout = check_dout("relu_backward", dout, x.shape)
    return dout * (x > 0)


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """Leaky ReLU ``x if x > 0 else alpha * x``.

    Inputs:
    - x: array of any shape.
    - alpha: slope for negative inputs.

    Returns ``(out, cache)``: out has x's shape and dtype.
    """
    x = check_float("leaky_relu_forward", "x", x)
    # A numpy scalar of x's dtype keeps float32 inputs float32 under NumPy 2 promotion.
    a = x.dtype.type(alpha)
    return np.where(x > 0, x, a * x), (x, a)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of leaky ReLU: dx of x's shape."""
    x, a = cache
    dout = check_dout("leaky_relu_backward", dout, x.shape)
    return np.where(x > 0, dout, a * dout)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function ``1 / (1 + exp(-x))``, dtype of x.

    exp is only ever taken of non-positive numbers, so large |x| neither overflows nor
    produces NaN: sigmoid(1000) == 1, sigmoid(-1000) == 0.
    """
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid layer. x of any shape; returns ``(out, cache)`` with out like x."""
    x = check_float("sigmoid_forward", "x", x)
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward of sigmoid: ``dx = dout * s * (1 - s)``, x's shape."""
    s = cache
    dout = check_dout("sigmoid_backward", dout, s.shape)
    return dout * s * (1 - s)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tanh layer. x of any shape; returns ``(out, cache)`` with out like x."""
    x = check_float("tanh_forward", "x", x)
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward of tanh: ``dx = dout * (1 - tanh(x)**2)``, x's shape."""
    t = cache
    dout = check_dout("tanh_backward", dout, t.shape)
    return dout * (1 - t * t)
