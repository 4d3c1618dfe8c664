"""Layer normalisation (Ba, Kiros & Hinton 2016, "Layer Normalization") for (N, D) inputs.

Layer norm standardises each *sample* over its D features, where batch norm standardises
each feature over the N samples. It is therefore batch norm of the transposed data, with
no running statistics (train and test time compute the same thing). The standardisation is
delegated to :func:`convnet.layers.batchnorm.batchnorm_forward` on ``x.T``, so layer norm,
group norm (:mod:`convnet.layers.groupnorm`) and batch norm share one derivation of the
backward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import check_float, check_ndim
from convnet.layers.batchnorm import batchnorm_backward, batchnorm_forward


def standardize_rows(fn: str, x: np.ndarray, eps: float) -> tuple[np.ndarray, tuple]:
    """Subtract each row's mean and divide by its (biased) standard deviation.

    Inputs:
    - fn: name of the calling layer, used in error messages.
    - x: (M, K) float array, K >= 2.
    - eps: added to the variance.

    Returns ``(xhat, cache)``: xhat (M, K), dtype of x.
    """
    M, K = x.shape
    if K < 2:
        raise LayerInputError(f"{fn}: each normalised group needs at least 2 values, got {K}")
    ones, zeros = np.ones(M, dtype=x.dtype), np.zeros(M, dtype=x.dtype)
    xhat_t, cache = batchnorm_forward(x.T, ones, zeros, {"mode": "train", "eps": eps})
    return xhat_t.T, cache


def standardize_rows_backward(dxhat: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`standardize_rows`: dxhat (M, K) -> dx (M, K)."""
    dx_t, _, _ = batchnorm_backward(dxhat.T, cache)
    return dx_t.T


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Layer normalisation: ``gamma * (x - mean_row) / sqrt(var_row + eps) + beta``.

    Inputs:
    - x: (N, D) data, D >= 2.
    - gamma: (D,) scale.
    - beta: (D,) shift.
    - ln_param: dict with optional 'eps' (default 1e-5); no running statistics, no mode.

    Returns ``(out, cache)``: out (N, D), dtype of x.
    """
    fn = "layernorm_forward"
    x = check_float(fn, "x", x)
    gamma = check_float(fn, "gamma", gamma)
    beta = check_float(fn, "beta", beta)
    check_ndim(fn, "x", x, 2, "(N, D)")
    D = x.shape[1]
    if gamma.shape != (D,) or beta.shape != (D,):
        raise LayerInputError(
            f"{fn}: gamma and beta must have shape (D,) == ({D},), got {gamma.shape} and "
            f"{beta.shape}"
        )
    xhat, row_cache = standardize_rows(fn, x, float(ln_param.get("eps", 1e-5)))
    out = gamma * xhat + beta
    return out, (xhat, gamma, row_cache)


def layernorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`layernorm_forward`.

    Inputs:
    - dout: (N, D) upstream gradient.

    Returns a tuple of dx (N, D), dgamma (D,), dbeta (D,).
    """
    xhat, gamma, row_cache = cache
    if np.shape(dout) != xhat.shape:
        raise LayerInputError(
            f"layernorm_backward: dout must have shape (N, D) == {xhat.shape}, "
            f"got {np.shape(dout)}"
        )
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = standardize_rows_backward(dout * gamma, row_cache)
    return dx, dgamma, dbeta
