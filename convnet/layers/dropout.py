"""Inverted dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import check_dout, check_float, check_mode


def dropout_forward(x: np.ndarray, dropout_param: dict[str, Any]) -> tuple[np.ndarray, tuple]:
    """Inverted dropout: in training, zero each unit with probability p and scale the kept
    ones by 1 / (1 - p), so that test mode is the identity.

    Inputs:
    - x: array of any shape.
    - dropout_param: dict with
      - 'p': probability of DROPPING a unit, 0 <= p < 1.
      - 'mode': 'train' or 'test'.
      - 'seed' (optional): int or numpy.random.Generator. With an int the mask is the same
        on every call (what gradient checks need); with a Generator (or no seed) each call
        draws a new mask.

    Returns ``(out, cache)``: out has x's shape and dtype; cache is (dropout_param, mask)
    with mask None in test mode.
    """
    x = check_float("dropout_forward", "x", x)
    p = float(dropout_param.get("p", 0.5))
    if not 0.0 <= p < 1.0:
        raise LayerInputError(f"dropout_forward: dropout_param['p'] must be in [0, 1), got {p}")
    mode = check_mode("dropout_forward", "dropout_param", dropout_param)
    if mode == "test":
        return x.copy(), (dropout_param, None)
    seed = dropout_param.get("seed")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # The mask already carries the 1/(1-p) scale, so backward is one multiplication.
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
    return x * mask, (dropout_param, mask)


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of inverted dropout: dx (x's shape) = dout * mask (identity in test mode)."""
    _, mask = cache
    if mask is None:
        return np.array(dout, copy=True)
    return check_dout("dropout_backward", dout, mask.shape) * mask
