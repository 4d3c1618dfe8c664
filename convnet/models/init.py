"""Seeded weight initialisation (He, Xavier/Glorot, or a fixed normal scale).

Fans follow the layout of our weights:

* dense ``W (D, M)``: ``fan_in = D``, ``fan_out = M``;
* conv ``W (F, C, HH, WW)``: ``fan_in = C*HH*WW``, ``fan_out = F*HH*WW``;
* transposed conv ``W (C_in, F, HH, WW)`` (the weight of the conv it is the adjoint of):
  the caller passes ``fan_in``/``fan_out`` explicitly.
"""

from __future__ import annotations

import numpy as np

InitSpec = str | float


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed, a Generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def conv_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` for a dense ``(D, M)`` or conv ``(F, C, HH, WW)`` weight shape."""
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    if len(shape) == 4:
        f, c, hh, ww = shape
        return int(c * hh * ww), int(f * hh * ww)
    raise ValueError(f"conv_fans: expected a 2-D (D, M) or 4-D (F, C, HH, WW) shape, got {shape}")


def init_weight(
    shape: tuple[int, ...],
    init: InitSpec = "he",
    seed: int | np.random.Generator | None = None,
    dtype: np.dtype | type = np.float32,
    fans: tuple[int, int] | None = None,
) -> np.ndarray:
    """Draw a weight array.

    Inputs:
    - shape: weight shape, ``(D, M)`` or ``(F, C, HH, WW)``.
    - init: ``'he'`` (normal, std ``sqrt(2/fan_in)``, for ReLU networks), ``'xavier'``
      (Glorot uniform, limit ``sqrt(6/(fan_in+fan_out))``, the Keras default), or a float: the
      standard deviation of a zero-mean normal (the cs231n ``weight_scale``).
    - seed: int, Generator or None.
    - dtype: floating dtype of the result.
    - fans: ``(fan_in, fan_out)`` overriding the ones derived from ``shape``.

    Returns an array of ``shape`` and ``dtype``.
    """
    rng = as_generator(seed)
    fan_in, fan_out = fans if fans is not None else conv_fans(tuple(shape))
    if isinstance(init, str):
        key = init.lower()
        if key in ("he", "he_normal", "kaiming"):
            w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif key in ("xavier", "glorot", "glorot_uniform", "xavier_uniform"):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=shape)
        elif key in ("xavier_normal", "glorot_normal"):
            w = rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))
        else:
            raise ValueError(
                f"init_weight: unknown init {init!r}; expected 'he', 'xavier', 'xavier_normal' "
                "or a float standard deviation"
            )
    elif isinstance(init, int | float) and not isinstance(init, bool):
        w = rng.standard_normal(shape) * float(init)
    else:
        raise ValueError(f"init_weight: init must be a string or a float, got {init!r}")
    return np.asarray(w, dtype=dtype)


def he_normal(shape: tuple[int, ...], seed=None, dtype=np.float32) -> np.ndarray:
    """He et al. (2015) normal initialisation: std ``sqrt(2 / fan_in)``."""
    return init_weight(shape, "he", seed, dtype)


def xavier_uniform(shape: tuple[int, ...], seed=None, dtype=np.float32) -> np.ndarray:
    """Glorot & Bengio (2010) uniform initialisation: limit ``sqrt(6 / (fan_in + fan_out))``."""
    return init_weight(shape, "xavier", seed, dtype)
