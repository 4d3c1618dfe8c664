"""The kit's ``gradient_check`` module on :mod:`convnet.gradcheck`.

All functions use centred differences ``(f(x + h) - f(x - h)) / 2h`` and perturb ``x`` in
place, restoring it exactly afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convnet import gradcheck as _gc
from convnet.cs231n import _random

__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "eval_numerical_gradient_blobs",
    "eval_numerical_gradient_net",
    "grad_check_sparse",
]

rel_error = _gc.rel_error


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of a scalar function ``f`` at ``x`` (x's shape).

    ``verbose`` prints each index and its gradient, as the kit does (its default is True).
    """
    return _gc.eval_numerical_gradient(f, x, h=h, verbose=verbose)


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of ``sum(f(x) * df)`` with respect to x (x's shape); ``df`` is
    the upstream gradient, of f(x)'s shape."""
    return _gc.eval_numerical_gradient_array(f, x, df, h=h)


def eval_numerical_gradient_blobs(
    f: Callable[..., Any], inputs: Sequence[Any], output: Any, h: float = 1e-5
) -> list[np.ndarray]:
    """Numerical gradients for functions that work on "blobs" (objects with ``vals`` and
    ``diffs`` arrays): ``f(*inputs, output)`` writes its result into ``output.vals``.

    Returns one array per input blob, of its ``vals``' shape: the gradient of
    ``sum(output.vals * output.diffs)`` with respect to that blob's values.
    """
    inputs = tuple(inputs)
    grads = []
    for blob in inputs:
        def run(_: np.ndarray) -> np.ndarray:
            f(*(inputs + (output,)))
            return output.vals

        grads.append(_gc.eval_numerical_gradient_array(run, blob.vals, output.diffs, h=h))
    return grads


def eval_numerical_gradient_net(
    net: Any, inputs: Sequence[Any], output: Any, h: float = 1e-5
) -> list[np.ndarray]:
    """:func:`eval_numerical_gradient_blobs` for an object whose ``forward()`` fills
    ``output`` from ``inputs``."""
    return eval_numerical_gradient_blobs(lambda *args: net.forward(), inputs, output, h=h)


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
) -> np.ndarray:
    """Compare ``analytic_grad`` (x's shape) with centred differences at ``num_checks``
    random elements of x and print each relative error.

    The elements are chosen from NumPy's global random state (``np.random.seed`` repeats
    them). Returns the (num_checks,) relative errors (the kit returns None).
    """
    seed = _random.seed()
    errors = _gc.grad_check_sparse(f, x, analytic_grad, num_checks=num_checks, h=h, seed=seed)
    for i, err in enumerate(errors):
        print(f"check {i + 1}/{num_checks}: relative error: {err:e}")
    return errors
