"""Spatial group normalisation (Wu & He 2018, "Group Normalization") for NCHW inputs.

The C channels of each sample are split into G groups of C/G consecutive channels; every
(sample, group) is standardised over its C/G * H * W values, then each channel gets its own
scale and shift. G = 1 is layer norm over (C, H, W); G = C is instance norm. Like layer
norm it keeps no running statistics, so train and test time behave the same. The
standardisation is :func:`convnet.layers.layernorm.standardize_rows` on the
(N * G, C/G * H * W) view.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import check_float, check_ndim
from convnet.layers.layernorm import standardize_rows, standardize_rows_backward


def _channel_param(fn: str, name: str, a: Any, C: int) -> np.ndarray:
    a = check_float(fn, name, a)
    if a.shape not in ((C,), (1, C, 1, 1)):
        raise LayerInputError(
            f"{fn}: {name} must have shape (C,) == ({C},) or (1, C, 1, 1) == (1, {C}, 1, 1), "
            f"got {a.shape}"
        )
    return a


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Group normalisation of NCHW data.

    Inputs:
    - x: (N, C, H, W) data.
    - gamma: (C,) or (1, C, 1, 1) per-channel scale.
    - beta: shift, same shape as gamma.
    - G: number of groups, a divisor of C.
    - gn_param: dict with optional 'eps' (default 1e-5).

    Returns ``(out, cache)``: out (N, C, H, W), dtype of x.
    """
    fn = "spatial_groupnorm_forward"
    x = check_float(fn, "x", x)
    check_ndim(fn, "x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    gamma = _channel_param(fn, "gamma", gamma, C)
    beta = _channel_param(fn, "beta", beta, C)
    if gamma.shape != beta.shape:
        raise LayerInputError(
            f"{fn}: gamma and beta must have the same shape, got {gamma.shape} and {beta.shape}"
        )
    if isinstance(G, bool) or int(G) != G or G < 1 or C % int(G):
        raise LayerInputError(f"{fn}: G must be a positive divisor of C == {C}, got {G!r}")
    G = int(G)
    xhat_g, row_cache = standardize_rows(
        fn, x.reshape(N * G, -1), float(gn_param.get("eps", 1e-5))
    )
    xhat = xhat_g.reshape(x.shape)
    g4 = gamma.reshape(1, C, 1, 1)
    out = g4 * xhat + beta.reshape(1, C, 1, 1)
    return out, (xhat, g4, gamma.shape, N * G, row_cache)


def spatial_groupnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`spatial_groupnorm_forward`.

    Inputs:
    - dout: (N, C, H, W) upstream gradient.

    Returns a tuple of dx (N, C, H, W), and dgamma, dbeta in the shape gamma was given
    ((C,) or (1, C, 1, 1)).
    """
    xhat, g4, param_shape, rows, row_cache = cache
    if np.shape(dout) != xhat.shape:
        raise LayerInputError(
            f"spatial_groupnorm_backward: dout must have shape (N, C, H, W) == {xhat.shape}, "
            f"got {np.shape(dout)}"
        )
    dbeta = dout.sum(axis=(0, 2, 3)).reshape(param_shape)
    dgamma = (dout * xhat).sum(axis=(0, 2, 3)).reshape(param_shape)
    dx = standardize_rows_backward((dout * g4).reshape(rows, -1), row_cache)
    return dx.reshape(xhat.shape), dgamma, dbeta
