"""Affine (fully connected), flatten and reshape layers."""

from __future__ import annotations

import math

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import check_affine_inputs, check_dout, check_float


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Fully connected layer ``out = x.reshape(N, D) @ w + b``.

    Inputs:
    - x: (N, d_1, ..., d_k) with D = d_1 * ... * d_k.
    - w: (D, M) weights.
    - b: (M,) biases.

    Returns a tuple of:
    - out: (N, M), dtype of x (and w).
    - cache: (x, w, b).
    """
    x, w, b = check_affine_inputs("affine_forward", x, w, b)
    out = x.reshape(x.shape[0], w.shape[0]) @ w + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`affine_forward`.

    Inputs:
    - dout: (N, M) upstream gradient.
    - cache: from affine_forward.

    Returns a tuple of:
    - dx: (N, d_1, ..., d_k)
    - dw: (D, M)
    - db: (M,)
    """
    x, w, b = cache
    N, D = x.shape[0], w.shape[0]
    dout = check_dout("affine_backward", dout, (N, w.shape[1]), "(N, M)")
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, D).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Flatten every axis but the first: (N, d_1, ..., d_k) -> (N, d_1 * ... * d_k).

    Returns ``(out, cache)`` with out a view of x when x is contiguous.
    """
    x = check_float("flatten_forward", "x", x)
    if x.ndim < 2:
        raise LayerInputError(
            f"flatten_forward: x must be (N, d1, ..., dk) with k >= 1, got shape {x.shape}"
        )
    return x.reshape(x.shape[0], -1), (x.shape,)


def flatten_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`flatten_forward`: dout (N, D) -> dx (N, d_1, ..., d_k)."""
    (shape,) = cache
    dout = check_dout("flatten_backward", dout, (shape[0], math.prod(shape[1:])), "(N, D)")
    return dout.reshape(shape)


def reshape_forward(x: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple]:
    """Reshape each sample: (N, ...) -> (N, *shape).

    Inputs:
    - x: (N, d_1, ..., d_k).
    - shape: target shape WITHOUT the batch axis; may contain one -1.

    Returns ``(out, cache)``, out of shape (N, *shape).
    """
    x = check_float("reshape_forward", "x", x)
    if x.ndim < 1:
        raise LayerInputError(f"reshape_forward: x must be (N, d1, ..., dk), got shape {x.shape}")
    shape = tuple(int(s) for s in shape)
    try:
        out = x.reshape((x.shape[0],) + shape)
    except ValueError:
        raise LayerInputError(
            f"reshape_forward: cannot reshape samples to {shape}: got samples of shape "
            f"{x.shape[1:]} ({math.prod(x.shape[1:])} elements)"
        ) from None
    return out, (x.shape, out.shape)


def reshape_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`reshape_forward`: dout (N, *shape) -> dx (N, d_1, ..., d_k)."""
    shape, out_shape = cache
    dout = check_dout("reshape_backward", dout, out_shape, "(N, *shape)")
    return dout.reshape(shape)
