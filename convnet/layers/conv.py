"""``conv_forward``/``conv_backward``: dispatch to the fastest available convolution backend.

Backends (all with the signature ``(x, w, b, conv_param) -> (out, cache)`` and
``(dout, cache) -> (dx, dw, db)``) are listed in :data:`CONV_BACKENDS`.

Choice rule: ``'numba'`` whenever Numba imports, else ``'im2col'`` (pure NumPy). Measured on
the five benchmark shapes of issue 8 (float32, forward + backward, 1 thread), the Numba backend
was 1.2x to 1.6x faster than ``im2col`` on every one (and 160x to 1600x faster than the naive
loops), tiny inputs included (it runs small convolutions on the calling thread), so there is no
per-shape rule. Within the Numba backend, chunking adapts to the shape (see its docstring).
``set_conv_backend(name)`` forces one backend (e.g. ``'naive'`` to debug); ``None`` restores the
automatic choice.

Every backend's cache is a tuple whose first element names the backend that made it, so
``conv_backward`` always runs the backward pass that matches the forward pass, even if the
backend was switched in between.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convnet.layers.conv_im2col import conv_backward_im2col, conv_forward_im2col
from convnet.layers.conv_naive import conv_backward_naive, conv_forward_naive
from convnet.layers.conv_numba import NUMBA_AVAILABLE, conv_backward_numba, conv_forward_numba

ForwardFn = Callable[..., tuple[np.ndarray, tuple]]
BackwardFn = Callable[[np.ndarray, tuple], tuple[np.ndarray, np.ndarray, np.ndarray]]

#: name -> (forward, backward). 'numba' is present only when Numba imports.
CONV_BACKENDS: dict[str, tuple[ForwardFn, BackwardFn]] = {
    "naive": (conv_forward_naive, conv_backward_naive),
    "im2col": (conv_forward_im2col, conv_backward_im2col),
}
if NUMBA_AVAILABLE:
    CONV_BACKENDS["numba"] = (conv_forward_numba, conv_backward_numba)

_forced: str | None = None


def set_conv_backend(name: str | None) -> None:
    """Force ``conv_forward`` to use backend ``name`` (a key of CONV_BACKENDS); None: automatic.

    Raises ``ValueError`` for an unknown name.
    """
    global _forced
    if name is not None and name not in CONV_BACKENDS:
        raise ValueError(
            f"set_conv_backend: unknown backend {name!r}; expected one of "
            f"{sorted(CONV_BACKENDS)} or None"
        )
    _forced = name


def get_conv_backend() -> str:
    """Name of the backend ``conv_forward`` uses now."""
    if _forced is not None:
        return _forced
    return "numba" if "numba" in CONV_BACKENDS else "im2col"


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a convolutional layer with the fastest available backend.

    Inputs:
    - x: input data of shape (N, C, H, W), float32 or float64.
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: {'stride': s, 'pad': p, 'dilation': d (optional, default 1)}.

    Returns a tuple of:
    - out: output of shape (N, F, H', W'), H' = 1 + (H + 2p - d*(HH-1) - 1) // s, likewise W';
      same dtype as the inputs.
    - cache: for :func:`conv_backward`; ``cache[0]`` names the backend that made it.
    """
    return CONV_BACKENDS[get_conv_backend()][0](x, w, b, conv_param)


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward`, run by the backend that made ``cache``.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: from :func:`conv_forward` (or any backend's forward).

    Returns a tuple of:
    - dx: shape (N, C, H, W); dw: shape (F, C, HH, WW); db: shape (F,).
    """
    tag = cache[0] if isinstance(cache, tuple) and cache else None
    if not isinstance(tag, str) or tag not in CONV_BACKENDS:
        raise ValueError(
            f"conv_backward: cache must come from a conv forward pass (one of "
            f"{sorted(CONV_BACKENDS)}), got {type(cache).__name__} tagged {tag!r}"
        )
    return CONV_BACKENDS[tag][1](dout, cache)
