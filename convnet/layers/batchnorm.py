"""Batch normalisation (Ioffe & Szegedy 2015) for (N, D) and, spatially, for NCHW inputs.

Running statistics follow the cs231n/Keras convention
``running = momentum * running + (1 - momentum) * batch_stat`` with the *biased* batch
variance (the one used to normalise), so weights move to Keras' BatchNormalization as is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import (
    check_batchnorm_inputs,
    check_dout,
    check_float,
    check_ndim,
    check_shape,
)


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Batch normalisation over the batch axis.

    Inputs:
    - x: (N, D) data.
    - gamma: (D,) scale.
    - beta: (D,) shift.
    - bn_param: dict with
      - 'mode': 'train' (normalise with the batch statistics and update the running ones)
        or 'test' (normalise with the running statistics).
      - 'eps' (default 1e-5), 'momentum' (default 0.9).
      - 'running_mean', 'running_var': (D,) arrays; created (zeros / ones, dtype of x) on
        the first call and updated in place in this dict in train mode.

    Returns ``(out, cache)``: out (N, D), dtype of x.
    """
    fn = "batchnorm_forward"
    x, gamma, beta, mode = check_batchnorm_inputs(fn, x, gamma, beta, bn_param)
    D = x.shape[1]
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.9))
    running_mean = bn_param.get("running_mean")
    running_var = bn_param.get("running_var")
    if running_mean is None:
        running_mean = np.zeros(D, dtype=x.dtype)
    if running_var is None:
        running_var = np.ones(D, dtype=x.dtype)
    check_shape(fn, "bn_param['running_mean']", running_mean, (D,), "(D,)")
    check_shape(fn, "bn_param['running_var']", running_var, (D,), "(D,)")
    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc * xc).mean(axis=0)
        inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
        xhat = xc * inv_std
        m = momentum
        bn_param["running_mean"] = (m * running_mean + (1 - m) * mu).astype(x.dtype)
        bn_param["running_var"] = (m * running_var + (1 - m) * var).astype(x.dtype)
    else:
        inv_std = (1 / np.sqrt(np.asarray(running_var) + eps)).astype(x.dtype)
        xhat = (x - np.asarray(running_mean, dtype=x.dtype)) * inv_std
        bn_param["running_mean"] = running_mean
        bn_param["running_var"] = running_var
    out = gamma * xhat + beta
    return out, (mode, xhat, gamma, inv_std)


def batchnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`batchnorm_forward`.

    Inputs:
    - dout: (N, D) upstream gradient.

    Returns a tuple of dx (N, D), dgamma (D,), dbeta (D,).
    """
    mode, xhat, gamma, inv_std = cache
    dout = check_dout("batchnorm_backward", dout, xhat.shape, "(N, D)")
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if mode == "test":
        # The running statistics are constants, so the layer is affine in x.
        return dxhat * inv_std, dgamma, dbeta
    N = dout.shape[0]
    # Simplified form of the chain rule through mean and variance (one pass, no N x N terms).
    dx = (inv_std / N) * (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple]:
    """Batch normalisation of each channel over (N, H, W).

    Inputs:
    - x: (N, C, H, W); gamma, beta: (C,); bn_param as in :func:`batchnorm_forward`
      (running statistics of shape (C,)).

    Returns ``(out, cache)``: out (N, C, H, W), dtype of x.
    """
    x = check_float("spatial_batchnorm_forward", "x", x)
    check_ndim("spatial_batchnorm_forward", "x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    x2 = x.transpose(0, 2, 3, 1).reshape(-1, C)
    try:
        out2, cache = batchnorm_forward(x2, gamma, beta, bn_param)
    except ValueError as exc:
        raise LayerInputError(f"spatial_{exc} (x has shape {x.shape})") from None
    return out2.reshape(N, H, W, C).transpose(0, 3, 1, 2), (x.shape, cache)


def spatial_batchnorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`spatial_batchnorm_forward`: dout (N, C, H, W) ->
    dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    shape, bn_cache = cache
    dout = check_dout("spatial_batchnorm_backward", dout, shape, "(N, C, H, W)")
    N, C, H, W = shape
    dx2, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), bn_cache)
    return dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta
