"""Max pooling front door: dispatch to the fastest backend.

``max_pool_forward(x, pool_param)`` runs the current backend (Numba if installed, else the
NumPy im2col version) and records its name in the cache, so ``max_pool_backward`` always
uses the backward pass matching the forward pass that made the cache, even if the backend
was switched in between. See ``convnet.layers.pool_naive`` for ``pool_param``, output sizes
and the first-maximum tie rule shared by every backend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers.pool_im2col import max_pool_backward_im2col, max_pool_forward_im2col
from convnet.layers.pool_naive import max_pool_backward_naive, max_pool_forward_naive
from convnet.layers.pool_numba import (
    NUMBA_AVAILABLE,
    max_pool_backward_numba,
    max_pool_forward_numba,
)

POOL_BACKENDS: dict[str, tuple[Callable, Callable]] = {
    "naive": (max_pool_forward_naive, max_pool_backward_naive),
    "im2col": (max_pool_forward_im2col, max_pool_backward_im2col),
    "numba": (max_pool_forward_numba, max_pool_backward_numba),
}

_DEFAULT_BACKEND = "numba" if NUMBA_AVAILABLE else "im2col"
_backend = _DEFAULT_BACKEND


def set_pool_backend(name: str | None = None) -> str:
    """Choose the backend used by max_pool_forward; None restores the default (the fastest).

    Inputs:
    - name: 'naive', 'im2col', 'numba' or None

    Returns the name of the previously selected backend (so callers can restore it).
    """
    global _backend
    if name is None:
        name = _DEFAULT_BACKEND
    if name not in POOL_BACKENDS:
        raise ValueError(
            f"set_pool_backend: unknown backend {name!r}, expected one of {sorted(POOL_BACKENDS)}"
        )
    previous, _backend = _backend, name
    return previous


def max_pool_forward(x: np.ndarray, pool_param: dict) -> tuple[np.ndarray, tuple]:
    """Max pooling forward pass with the current backend.

    Inputs:
    - x: input of shape (N, C, H, W), float dtype
    - pool_param: {'pool_height', 'pool_width', 'stride', 'pad': 0, 'ceil_mode': False}

    Returns a tuple of:
    - out: (N, C, H', W'), dtype of x
    - cache: (backend name, backend cache) for max_pool_backward
    """
    name = _backend
    out, cache = POOL_BACKENDS[name][0](x, pool_param)
    return out, (name, cache)


def max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Max pooling backward pass with the backend that produced ``cache``.

    Inputs:
    - dout: upstream gradient (N, C, H', W')
    - cache: from max_pool_forward

    Returns:
    - dx: gradient w.r.t. x, (N, C, H, W)
    """
    if not (isinstance(cache, tuple) and len(cache) == 2 and cache[0] in POOL_BACKENDS):
        raise LayerInputError(
            "max_pool_backward: cache must be the (backend, cache) pair made by "
            "max_pool_forward"
        )
    name, inner = cache
    return POOL_BACKENDS[name][1](dout, inner)
