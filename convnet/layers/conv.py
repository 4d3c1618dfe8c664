"""``conv_forward``/``conv_backward``: dispatch to the fastest available convolution backend.

Backends (all with the signature ``(x, w, b, conv_param) -> (out, cache)`` and
``(dout, cache) -> (dx, dw, db)``) are listed in :data:`CONV_BACKENDS`.

Choice rule: ``'numba'`` whenever Numba imports, else ``'im2col'`` (pure NumPy). Measured on
the five conv shapes of ``benchmarks/bench_conv.py`` (float32, forward + backward, 1 thread),
the Numba backend was 1.2x to 1.6x faster than ``im2col`` on every one (and 160x to 1600x
faster than the naive loops), tiny inputs included (it runs small convolutions on the calling
thread). One exception by shape: 3x3, stride-1 convolutions with many input channels
(C >= 32) and enough output tiles go to the Winograd F(2x2, 3x3) backend, 0.6-0.9x the Numba
backend's time there
(:func:`convnet.layers.conv_winograd.prefer_winograd` has the measurements). Winograd handles
only that case, so it is not in :data:`CONV_BACKENDS` (whose members all accept any
``conv_param``) but in :data:`SPECIALISED_BACKENDS`.
``set_conv_backend(name)`` forces one backend (e.g. ``'naive'`` to debug); ``None`` restores the
automatic choice.

Every backend's cache is a tuple whose first element names the backend that made it, so
``conv_backward`` always runs the backward pass that matches the forward pass, even if the
backend was switched in between.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers.conv_im2col import conv_backward_im2col, conv_forward_im2col
from convnet.layers.conv_naive import conv_backward_naive, conv_forward_naive
from convnet.layers.conv_numba import (
    NUMBA_AVAILABLE,
    conv_backward_numba,
    conv_backward_params_numba,
    conv_forward_numba,
)
from convnet.layers.conv_winograd import (
    conv_backward_winograd,
    conv_forward_winograd,
    prefer_winograd,
)

ForwardFn = Callable[..., tuple[np.ndarray, tuple]]
BackwardFn = Callable[[np.ndarray, tuple], tuple[np.ndarray, np.ndarray, np.ndarray]]

#: name -> (forward, backward). 'numba' is present only when Numba imports.
CONV_BACKENDS: dict[str, tuple[ForwardFn, BackwardFn]] = {
    "naive": (conv_forward_naive, conv_backward_naive),
    "im2col": (conv_forward_im2col, conv_backward_im2col),
}
if NUMBA_AVAILABLE:
    CONV_BACKENDS["numba"] = (conv_forward_numba, conv_backward_numba)

#: name -> (forward, backward) of backends that accept only some convolutions (3x3 stride 1).
SPECIALISED_BACKENDS: dict[str, tuple[ForwardFn, BackwardFn]] = {}
if NUMBA_AVAILABLE:
    SPECIALISED_BACKENDS["winograd"] = (conv_forward_winograd, conv_backward_winograd)


def _all_backends() -> dict[str, tuple[ForwardFn, BackwardFn]]:
    return {**CONV_BACKENDS, **SPECIALISED_BACKENDS}

_forced: str | None = None


def set_conv_backend(name: str | None) -> None:
    """Force ``conv_forward`` to use backend ``name`` (a key of CONV_BACKENDS); None: automatic.

    Raises ``ValueError`` for an unknown name.
    """
    global _forced
    if name is not None and name not in _all_backends():
        raise ValueError(
            f"set_conv_backend: unknown backend {name!r}; expected one of "
            f"{sorted(_all_backends())} or None"
        )
    _forced = name


def get_conv_backend() -> str:
    """Name of the general backend ``conv_forward`` uses now (forced, or the default)."""
    if _forced is not None:
        return _forced
    return "numba" if "numba" in CONV_BACKENDS else "im2col"


#: Cache tag of a float16 convolution computed in float32: ``(_HALF, float32 cache)``.
_HALF = "float16-via-float32"


def _all_half(*arrays: np.ndarray) -> bool:
    """True when every array is floating and their common dtype is float16."""
    dtypes = [np.asarray(a).dtype for a in arrays]
    return (all(np.issubdtype(d, np.floating) for d in dtypes)
            and np.result_type(*dtypes) == np.float16)


def select_conv_backend(x_shape: tuple, w_shape: tuple, conv_param: dict) -> str:
    """Name of the backend ``conv_forward`` uses for these shapes (see the module docstring)."""
    name = get_conv_backend()
    if _forced is None and name == "numba" and prefer_winograd(x_shape, w_shape, conv_param):
        return "winograd"
    return name


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a convolutional layer with the fastest available backend.

    Inputs:
    - x: input data of shape (N, C, H, W), float16, float32 or float64.
    - w: filter weights of shape (F, C, HH, WW).
    - b: biases of shape (F,).
    - conv_param: {'stride': s, 'pad': p, 'dilation': d (optional, default 1)}.

    Returns a tuple of:
    - out: output of shape (N, F, H', W'), H' = 1 + (H + 2p - d*(HH-1) - 1) // s, likewise W';
      same dtype as the inputs (float16 inputs are computed in float32 and the result
      rounded to float16).
    - cache: for :func:`conv_backward`; ``cache[0]`` names the backend that made it.
    """
    if _all_half(x, w, b):
        # The compiled kernels exist for float32 and float64 only. float16 values are exact
        # in float32, which also accumulates the sums more accurately; the result is
        # rounded back so that the layer keeps the dtype it was given.
        out, cache = conv_forward(*(np.asarray(a, np.float32) for a in (x, w, b)), conv_param)
        return out.astype(np.float16), (_HALF, cache)
    name = select_conv_backend(np.shape(x), np.shape(w), conv_param)
    return _all_backends()[name][0](x, w, b, conv_param)


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward`, run by the backend that made ``cache``.

    Inputs:
    - dout: upstream gradient of shape (N, F, H', W').
    - cache: from :func:`conv_forward` (or any backend's forward).

    Returns a tuple of:
    - dx: shape (N, C, H, W); dw: shape (F, C, HH, WW); db: shape (F,).
    """
    tag = cache[0] if isinstance(cache, tuple) and cache else None
    if tag == _HALF and len(cache) == 2:
        d = np.asarray(dout)
        d = d.astype(np.float32) if np.issubdtype(d.dtype, np.floating) else d
        return tuple(g.astype(np.float16) for g in conv_backward(d, cache[1]))  # type: ignore[return-value]
    backends = _all_backends()
    if not isinstance(tag, str) or tag not in backends:
        raise LayerInputError(
            f"conv_backward: cache must come from a conv forward pass (one of "
            f"{sorted(backends)}), got {type(cache).__name__} tagged {tag!r}"
        )
    return backends[tag][1](dout, cache)


def conv_backward_params(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The parameter gradients of :func:`conv_backward` only, without ``dx``.

    For a layer that sees the input data: training needs its ``dw`` and ``db``, and nobody
    uses the gradient with respect to the images (on a C=3 7x7 first layer that gradient is
    about as much work as the forward pass). Inputs as :func:`conv_backward`.

    Returns a tuple of:
    - dw: shape (F, C, HH, WW); db: shape (F,).
    """
    tag = cache[0] if isinstance(cache, tuple) and cache else None
    if tag == "numba":
        return conv_backward_params_numba(dout, cache)
    _, dw, db = conv_backward(dout, cache)
    return dw, db
