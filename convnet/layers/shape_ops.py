"""Concatenation along channels (SqueezeNet's fire modules) and global average pooling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import check_dout, check_float, check_ndim


def concat_forward(xs: Sequence[np.ndarray], axis: int = 1) -> tuple[np.ndarray, tuple]:
    """Concatenate arrays along ``axis`` (channels by default).

    Inputs:
    - xs: non-empty list of arrays with equal shapes except along ``axis``, e.g.
      (N, C_i, H, W).
    - axis: the axis to concatenate (1 = channels for NCHW).

    Returns ``(out, cache)``: out of shape (N, sum C_i, H, W) for axis=1.
    """
    if len(xs) == 0:
        raise LayerInputError("concat_forward: xs must be a non-empty list of arrays")
    xs = [check_float("concat_forward", f"xs[{i}]", x) for i, x in enumerate(xs)]
    ref = xs[0].shape
    ax = axis % len(ref) if len(ref) else 0
    for i, x in enumerate(xs):
        if x.ndim != len(ref) or x.shape[:ax] + x.shape[ax + 1:] != ref[:ax] + ref[ax + 1:]:
            expected = ref[:ax] + ("*",) + ref[ax + 1:]
            raise LayerInputError(
                f"concat_forward: xs[{i}] must have shape {expected} (equal except on axis "
                f"{axis}), got {x.shape}"
            )
    if len({x.dtype for x in xs}) > 1:
        raise LayerInputError(
            f"concat_forward: all inputs must share one dtype, got {[str(x.dtype) for x in xs]}"
        )
    sizes = [x.shape[ax] for x in xs]
    return np.concatenate(xs, axis=ax), (sizes, ax)


def concat_backward(dout: np.ndarray, cache: tuple) -> list[np.ndarray]:
    """Backward of :func:`concat_forward`: split dout back into one gradient per input.

    Returns a list of dx_i with the shapes of the inputs.
    """
    sizes, ax = cache
    if dout.shape[ax] != sum(sizes):
        raise LayerInputError(
            f"concat_backward: dout must have {sum(sizes)} entries on axis {ax}, "
            f"got shape {dout.shape}"
        )
    return np.split(dout, np.cumsum(sizes)[:-1], axis=ax)


def global_avg_pool_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Mean of each channel over its spatial positions.

    Inputs:
    - x: (N, C, H, W).

    Returns ``(out, cache)``: out (N, C), dtype of x.
    """
    x = check_float("global_avg_pool_forward", "x", x)
    check_ndim("global_avg_pool_forward", "x", x, 4, "(N, C, H, W)")
    return x.mean(axis=(2, 3)), (x.shape, x.dtype)


def global_avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of global average pooling: dout (N, C) -> dx (N, C, H, W)."""
    (N, C, H, W), dtype = cache
    dout = check_dout("global_avg_pool_backward", dout, (N, C), "(N, C)")
    scale = dtype.type(1.0 / (H * W))
    return np.broadcast_to((dout * scale)[:, :, None, None], (N, C, H, W)).copy()
