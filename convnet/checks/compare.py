"""The three measurements every family is built from, each returning ``(error, note)``.

* :func:`forward_check`: the layer's output against a reference (max relative error). A
  wrong shape or a NaN/inf in the output is an infinite error with the reason in the note.
* :func:`grad_check`: the backward pass against centred differences of the forward pass,
  in float64 (:func:`convnet.gradcheck.check_layer`). Inputs sitting on a kink (ReLU at 0,
  tied maxima) are nudged off it; the note names the worst gradient and what was nudged.
* :func:`float32_check`: the same layer on float32 inputs must give float32 outputs and
  gradients (a layer that silently upcasts doubles the memory of training) and match the
  float64 reference to ``F32_TOL``, as an absolute error over the output's scale:
  elementwise relative error is meaningless for float32 values near 0.

Inputs are drawn from :func:`rng` with a fixed seed per check, so a failure reproduces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convnet.gradcheck import check_layer, rel_error


def rng(seed: int) -> np.random.Generator:
    """The seeded generator a check draws its inputs from."""
    return np.random.default_rng(seed)


def grad_check(forward: Callable, backward: Callable, inputs: dict[str, np.ndarray],
               param: Any = None, seed: int = 0) -> tuple[float, str]:
    """Max relative error of ``backward`` against numerical gradients of ``forward``."""
    res = check_layer(forward, backward, inputs, param, seed=seed)
    notes = list(res.messages)
    worst = max(res.errors, key=res.errors.get) if res.errors else ""
    if res.errors and res.max_error > 0:
        notes.insert(0, f"worst: d{worst}")
    if res.nudged:
        notes.append(f"{res.nudged} inputs nudged off kinks")
    left = sum(res.kinks.values())
    if left:
        notes.append(f"{left} kink elements excluded")
    return res.max_error, "; ".join(notes)


def forward_check(forward: Callable, args: tuple, expected: np.ndarray) -> tuple[float, str]:
    """Max relative error of ``forward(*args)[0]`` against ``expected``."""
    out = forward(*args)[0]
    out = np.asarray(out)
    if out.shape != expected.shape:
        return math.inf, f"output shape {out.shape}, expected {expected.shape}"
    if np.issubdtype(out.dtype, np.number) and not np.all(np.isfinite(out)):
        return math.inf, f"output has {int(np.sum(~np.isfinite(out)))} NaN/inf values"
    return rel_error(out, expected), ""


def float32_check(forward: Callable, backward: Callable | None, args: tuple,
                  n_arrays: int, expected: np.ndarray) -> tuple[float, str]:
    """Run in float32 (the first ``n_arrays`` of ``args`` cast): outputs (and gradients)
    must stay float32 and match the float64 ``expected``."""
    args32 = tuple(a.astype(np.float32) if i < n_arrays else a for i, a in enumerate(args))
    out, cache = forward(*args32)
    out = np.asarray(out)
    if out.dtype != np.float32:
        return math.inf, f"float32 input gave {out.dtype} output"
    if backward is not None:
        grads = backward(np.ones_like(out), cache)
        grads = grads if isinstance(grads, (tuple, list)) else (grads,)
        bad = [str(np.asarray(g).dtype) for g in grads if np.asarray(g).dtype != np.float32]
        if bad:
            return math.inf, f"float32 input gave gradients of dtype {bad}"
    if out.shape != expected.shape:
        return math.inf, f"output shape {out.shape}, expected {expected.shape}"
    return float(np.abs(out - expected).max() / max(1e-12, np.abs(expected).max())), ""
