"""Other backward rules for ReLU on the NumPy backend: Lucid's redirection and guided backprop.

:func:`relu_backward_rule` swaps the backward of every ``ReLU`` module of a model for the
duration of a ``with`` block; the two rules below are what the feature-visualisation and
attribution methods use it for.

Lucid's redirected ReLU gradient:

A channel whose ReLU is off at every position of the start image has zero gradient: gradient
ascent never moves the image, and its visualisation stays grey. Lucid (Olah et al., "Feature
Visualization", Distill 2017; ``lucid.optvis.redirected_relu_grad``) replaces the backward of
every ReLU, for the images whose ReLU gradient is zero everywhere, by the upstream gradient
itself, except where it would push an already negative input further down. Once the unit
switches on, the true gradient takes over.

:func:`redirected_relu` does that for the ``ReLU`` modules of a :class:`NumpyBackend`'s model
(including those inside composite modules such as SqueezeNet's fire modules) for the
duration of a ``with`` block. In ascent convention (``dout`` is d objective / d output), for
image n::

    relu'   = dout * (x > 0)
    redirect = dout * not (x <= 0 and dout < 0)
    dx[n]   = relu'[n] if any(relu'[n] != 0) else redirect[n]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from convnet.backend import NumpyBackend
from convnet.layers.activations import relu_backward


def redirected_relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Backward of ReLU with Lucid's redirection (see the module docstring).

    Inputs: dout (N, ...) upstream gradient; cache: the ReLU's input x (N, ...).
    Returns dx (N, ...), x's shape and dout's dtype.
    """
    dx = relu_backward(dout, cache)
    dead = ~np.any(dx.reshape(dx.shape[0], -1) != 0, axis=1)
    if not np.any(dead):
        return dx
    keep = ~((cache <= 0) & (dout < 0))
    redirect = np.where(keep, dout, 0).astype(dx.dtype, copy=False)
    return np.where(dead.reshape((-1,) + (1,) * (dx.ndim - 1)), redirect, dx)


def relu_modules(model: Any) -> list[Any]:
    """Every ``ReLU`` module reachable from ``model``'s attributes (lists, dicts, modules)."""
    from convnet.models.modules import Module, ReLU

    found: list[Any] = []
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, ReLU):
            found.append(obj)
            continue
        if isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, Module) or obj is model:
            kids = (v for v in vars(obj).values() if isinstance(v, Module | list | tuple | dict))
            stack.extend(kids)
    return found


@contextmanager
def relu_backward_rule(model: Any, backward: Callable[[np.ndarray, np.ndarray], np.ndarray]
                       ) -> Iterator[int]:
    """Within the block, every ``ReLU`` module of ``model`` (those inside composite modules
    too) backpropagates with ``backward(dout, cache) -> dx`` instead of ``relu_backward``.

    Yields the number of ReLU modules changed; they are restored on exit, also after an
    exception.
    """
    relus = relu_modules(model)
    for r in relus:
        r._fns = (r._fns[0], backward)
    try:
        yield len(relus)
    finally:
        for r in relus:
            r.__dict__.pop("_fns", None)


@contextmanager
def redirected_relu(backend: Any) -> Iterator[int]:
    """Within the block, the ReLUs of ``backend.model`` backpropagate with the redirection.

    Yields the number of ReLU modules changed: 0 for a backend without a NumPy model (a TF
    backend), whose gradients are then unchanged.
    """
    if not isinstance(backend, NumpyBackend):
        yield 0
        return
    with relu_backward_rule(backend.model, redirected_relu_backward) as n:
        yield n


def guided_relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Guided backpropagation's ReLU rule (Springenberg et al. 2015): pass a gradient only
    where the forward input and the gradient arriving from above are both positive.

    Inputs: dout (N, ...) upstream gradient; cache: the ReLU's input x (N, ...).
    Returns dx (N, ...).
    """
    return dout * ((cache > 0) & (dout > 0))


__all__ = [
    "guided_relu_backward",
    "redirected_relu",
    "redirected_relu_backward",
    "relu_backward_rule",
    "relu_modules",
]
