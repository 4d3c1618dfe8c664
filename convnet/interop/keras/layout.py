"""NCHW <-> NHWC layout converters for weights and activations (pure NumPy, no TensorFlow).

convnet is NCHW with conv weights ``(F, C, HH, WW)``; Keras is NHWC with kernels
``(HH, WW, C, F)``. A dense layer after a flatten of a ``(C, H, W)`` map sees its inputs in
``(c, h, w)`` order in convnet and ``(h, w, c)`` order in Keras, so its weight rows are
permuted; every other weight maps by a transpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def conv_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """Conv weight ``(F, C, HH, WW)`` -> Keras kernel ``(HH, WW, C, F)``."""
    if w.ndim != 4:
        raise ValueError(f"conv_weight_to_keras: w must be 4-D (F, C, HH, WW), got {w.shape}")
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_weight_from_keras(k: np.ndarray) -> np.ndarray:
    """Keras kernel ``(HH, WW, C, F)`` -> conv weight ``(F, C, HH, WW)``."""
    if k.ndim != 4:
        raise ValueError(
            f"conv_weight_from_keras: kernel must be 4-D (HH, WW, C, F), got {k.shape}"
        )
    return np.ascontiguousarray(k.transpose(3, 2, 0, 1))


def conv_transpose_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """Transposed-conv weight ``(in, filters, HH, WW)`` -> Keras ``(HH, WW, filters, in)``.

    convnet stores the weight of the conv the transposed conv is the adjoint of; Keras'
    ``Conv2DTranspose`` kernel is the same array in its layout (no spatial flip).
    """
    if w.ndim != 4:
        raise ValueError(
            f"conv_transpose_weight_to_keras: w must be 4-D (in, filters, HH, WW), got {w.shape}"
        )
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_transpose_weight_from_keras(k: np.ndarray) -> np.ndarray:
    """Keras ``Conv2DTranspose`` kernel ``(HH, WW, filters, in)`` -> ``(in, filters, HH, WW)``."""
    if k.ndim != 4:
        raise ValueError(
            "conv_transpose_weight_from_keras: kernel must be 4-D (HH, WW, filters, in), "
            f"got {k.shape}"
        )
    return np.ascontiguousarray(k.transpose(3, 2, 0, 1))


def _check_dense(fn: str, what: str, a: np.ndarray, chw: Sequence[int] | None) -> None:
    if a.ndim != 2:
        raise ValueError(f"{fn}: {what} must be 2-D (D, M), got {a.shape}")
    if chw is not None and a.shape[0] != int(np.prod(chw)):
        C, H, W = chw
        raise ValueError(
            f"{fn}: {what} must have C*H*W = {C * H * W} rows for chw={tuple(chw)}, "
            f"got {a.shape}"
        )


def _permute_rows(a: np.ndarray, order: tuple[int, int, int], axes: tuple[int, int, int]):
    """Rows of ``a (D, M)`` indexed as a map of shape ``order``, reordered by ``axes``."""
    M = a.shape[1]
    return np.ascontiguousarray(a.reshape(*order, M).transpose(*axes, 3).reshape(-1, M))


def dense_weight_to_keras(w: np.ndarray, chw: Sequence[int] | None = None) -> np.ndarray:
    """Dense weight ``(D, M)`` -> Keras kernel ``(D, M)``.

    Inputs:
    - w: ``(D, M)``.
    - chw: ``(C, H, W)`` of the map that was flattened right before this layer (``D = C*H*W``),
      or None when the input was already a vector. convnet row ``c*H*W + h*W + w`` becomes Keras
      row ``h*W*C + w*C + c``.
    """
    _check_dense("dense_weight_to_keras", "w", w, chw)
    if chw is None:
        return w.copy()
    C, H, W = chw
    return _permute_rows(w, (C, H, W), (1, 2, 0))


def dense_weight_from_keras(k: np.ndarray, chw: Sequence[int] | None = None) -> np.ndarray:
    """Inverse of :func:`dense_weight_to_keras` (``k (D, M)``, ``chw = (C, H, W)`` or None)."""
    _check_dense("dense_weight_from_keras", "kernel", k, chw)
    if chw is None:
        return k.copy()
    C, H, W = chw
    return _permute_rows(k, (H, W, C), (2, 0, 1))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, H, W, C)``; other ranks are returned unchanged."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, C, H, W)``; other ranks are returned unchanged."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def flat_keras_to_convnet(a: np.ndarray, chw: Sequence[int]) -> np.ndarray:
    """Keras-flattened activations ``(N, H*W*C)`` -> convnet's flatten order ``(N, C*H*W)``."""
    C, H, W = chw
    return np.ascontiguousarray(a.reshape(-1, H, W, C).transpose(0, 3, 1, 2).reshape(len(a), -1))


def shape_to_keras(shape: Sequence[int]) -> tuple[int, ...]:
    """A per-example shape without the batch axis: ``(C, H, W)`` -> ``(H, W, C)``; a vector
    shape ``(D,)`` (or any other rank) is the same in both libraries."""
    s = tuple(int(d) for d in shape)
    return (s[1], s[2], s[0]) if len(s) == 3 else s


def shape_from_keras(shape: Sequence[int]) -> tuple[int, ...]:
    """Inverse of :func:`shape_to_keras`: ``(H, W, C)`` -> ``(C, H, W)``."""
    s = tuple(int(d) for d in shape)
    return (s[2], s[0], s[1]) if len(s) == 3 else s


__all__ = [
    "conv_transpose_weight_from_keras",
    "conv_transpose_weight_to_keras",
    "conv_weight_from_keras",
    "conv_weight_to_keras",
    "dense_weight_from_keras",
    "dense_weight_to_keras",
    "flat_keras_to_convnet",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "shape_from_keras",
    "shape_to_keras",
]
