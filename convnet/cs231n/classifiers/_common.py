"""Pieces shared by the kit's classifiers."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

import numpy as np


def l2_penalty(
    params: MutableMapping[str, np.ndarray], grads: dict[str, np.ndarray], reg: float,
    names: Iterable[str],
) -> float:
    """Add ``0.5 * reg * sum(W**2)`` over the weights ``names`` to the gradients (in place)
    and return that term of the loss."""
    if not reg:
        return 0.0
    total = 0.0
    for k in names:
        w = params[k]
        total += 0.5 * reg * float(np.sum(w * w))
        grads[k] = grads[k] + reg * w
    return total


def as_input(X: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """X in the model's dtype (no copy when it already is)."""
    return np.asarray(X).astype(dtype, copy=False)
