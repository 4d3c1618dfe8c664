"""Preferred input of an output unit of a small network (activation maximisation on MNIST).

Erhan, Bengio, Courville & Vincent, "Visualizing Higher-Layer Features of a Deep Network"
(2009): start from 0.7 everywhere (enough activity in the net), maximise one output unit with
Adam (Keras' defaults, ``keras.optimizers.Adam()``), clip to [-1, 1] after every step; the
result is the prototypical input of that unit (the "mother of all threes" for unit 3).

A constant start can leave every ReLU of the first layer off (for MnistConvNet: all five
``0.7 * sum(W_f) + b_f < 0``); the gradient is then exactly zero and Adam never moves. So
``start`` may list several values, tried in order until the gradient at the start is not
zero (default 0.7, then 0.0, where a conv's pre-activation is its bias alone), with a
warning naming the value used.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from convnet.backend import Backend, InputSpace, NumpyBackend
from convnet.inputgrad.objectives import ClassScore
from convnet.inputgrad.optimize import optimize_input
from convnet.optim import KERAS_DEFAULTS


def preferred_input(
    model: Any,
    unit: int,
    steps: int = 500,
    lr: float = 1e-3,
    start: float | Sequence[float] = (0.7, 0.0),
    kind: str = "softmax",
    input_space: InputSpace | None = None,
    progress: bool = False,
    tol: float = 1e-7,
) -> tuple[np.ndarray, list[float]]:
    """Optimise an input that maximises output unit ``unit``.

    Inputs:
    - model: a ``Sequential`` (e.g. ``MnistConvNet``) or a :class:`Backend`.
    - unit: output unit (digit) to maximise.
    - steps: Adam steps (default 500).
    - lr: Adam learning rate in model units (Keras default 1e-3).
    - start: initial value of every input element, model units, or several values tried in
      order until one gives a non-zero gradient (see the module docstring).
    - kind: 'softmax' (maximise the softmax output, default) or 'logit'.
    - input_space: default ``InputSpace.mnist_minus1_1()`` (inputs in [-1, 1]).
    - tol: stop once ``1 - p(unit) < tol`` (early stop), softmax only.

    Returns:
    - x: (1, C, H, W) preferred input, model units (in [-1, 1] for MNIST).
    - history: objective value per step.
    """
    if isinstance(model, Backend):
        backend = model
    else:
        backend = NumpyBackend(model, input_space or InputSpace.mnist_minus1_1())
    shape = backend.input_shape
    if shape is None:
        raise ValueError("preferred_input: the model must have a fixed input_shape (C, H, W)")
    unit = int(backend.check_class(unit, 1)[0])
    objective = ClassScore(unit, kind=kind)
    starts = [float(start)] if np.isscalar(start) else [float(v) for v in start]  # type: ignore[arg-type]
    for i, s in enumerate(starts):
        x0 = np.full((1, *shape), s, dtype=np.float32)
        if np.any(backend.value_and_grad(objective, x0)[1]) or i == len(starts) - 1:
            break
    if s != starts[0]:
        warnings.warn(
            f"preferred_input: the gradient is zero at the constant start {starts[0]} (no unit "
            f"active); started from {s} instead",
            stacklevel=2,
        )
    cfg = {k: v for k, v in KERAS_DEFAULTS["adam"].items() if k != "learning_rate"}

    def stop(step: int, x: np.ndarray, value: float) -> bool:
        return kind == "softmax" and 1.0 - value < tol

    return optimize_input(
        backend,
        objective,
        x0,
        steps,
        update="adam",
        lr=lr,
        update_config=cfg,
        clip=True,
        progress=progress,
        callback=stop,
        desc=f"unit {unit}",
    )


__all__ = ["preferred_input"]
