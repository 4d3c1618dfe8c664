"""Affine (fully connected), flatten and reshape layers.

Also home of the small input-validation helpers the other parameter-free layers share
(``check_float``), so that every layer words its errors the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.errors import LayerInputError


def check_float(fn: str, name: str, a: Any) -> np.ndarray:
    """Return ``a`` as an ndarray of a floating dtype, or raise ``ValueError``.

    Integer and bool arrays are refused rather than silently cast: a float layer fed
    integer pixels is almost always a forgotten ``astype``/scaling step.

    Inputs:
    - fn: name of the calling function, used in the message.
    - name: name of the argument, used in the message.
    - a: array-like.

    Returns:
    - a as np.ndarray (no copy when it already is one).
    """
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        raise LayerInputError(f"{fn}: {name} must be a floating-point array, got dtype {arr.dtype}")
    return arr


def check_ndim(fn: str, name: str, a: np.ndarray, ndim: int, layout: str) -> None:
    """Raise ``ValueError`` unless ``a.ndim == ndim``; ``layout`` e.g. ``'(N, C, H, W)'``."""
    if a.ndim != ndim:
        raise LayerInputError(f"{fn}: {name} must be {ndim}-D {layout}, got shape {a.shape}")


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
    x = check_float("affine_forward", "x", x)
    w = check_float("affine_forward", "w", w)
    b = check_float("affine_forward", "b", b)
    if x.ndim < 2:
        raise LayerInputError(f"affine_forward: x must be (N, d1, ..., dk), got shape {x.shape}")
    check_ndim("affine_forward", "w", w, 2, "(D, M)")
    D, M = w.shape
    N = x.shape[0]
    if int(np.prod(x.shape[1:])) != D:
        raise LayerInputError(
            f"affine_forward: x must be (N, d1, ..., dk) with d1*...*dk == w.shape[0] == {D}, "
            f"got x shape {x.shape}"
        )
    if b.shape != (M,):
        raise LayerInputError(f"affine_forward: b must have shape (M,) == ({M},), got {b.shape}")
    out = x.reshape(N, D) @ w + b
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
    if dout.shape != (N, w.shape[1]):
        raise LayerInputError(
            f"affine_backward: dout must have shape (N, M) == {(N, w.shape[1])}, got {dout.shape}"
        )
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, D).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Flatten every axis but the first: (N, d_1, ..., d_k) -> (N, d_1 * ... * d_k).

    Returns ``(out, cache)`` with out a view of x when x is contiguous.
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise LayerInputError(f"flatten_forward: x must be (N, d1, ..., dk), got shape {x.shape}")
    return x.reshape(x.shape[0], -1), (x.shape,)


def flatten_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`flatten_forward`: dout (N, D) -> dx (N, d_1, ..., d_k)."""
    (shape,) = cache
    if dout.size != int(np.prod(shape)):
        raise LayerInputError(
            f"flatten_backward: dout must have {int(np.prod(shape))} elements "
            f"(input shape {shape}), got shape {dout.shape}"
        )
    return dout.reshape(shape)


def reshape_forward(x: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple]:
    """Reshape each sample: (N, ...) -> (N, *shape).

    Inputs:
    - x: (N, d_1, ..., d_k).
    - shape: target shape WITHOUT the batch axis; may contain one -1.

    Returns ``(out, cache)``, out of shape (N, *shape).
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise LayerInputError(f"reshape_forward: x must be (N, d1, ..., dk), got shape {x.shape}")
    shape = tuple(int(s) for s in shape)
    try:
        out = x.reshape((x.shape[0],) + shape)
    except ValueError:
        raise LayerInputError(
            f"reshape_forward: cannot reshape samples of shape {x.shape[1:]} "
            f"({int(np.prod(x.shape[1:]))} elements) to {shape}"
        ) from None
    return out, (x.shape,)


def reshape_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`reshape_forward`: dout (N, *shape) -> dx (N, d_1, ..., d_k)."""
    (shape,) = cache
    if dout.size != int(np.prod(shape)):
        raise LayerInputError(
            f"reshape_backward: dout must have {int(np.prod(shape))} elements "
            f"(input shape {shape}), got shape {dout.shape}"
        )
    return dout.reshape(shape)
