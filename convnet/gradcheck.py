"""Numerical gradients and relative errors (cs231n conventions), plus ``check_layer``.

``check_layer`` is what the tests and ``convnet check`` use: it runs a forward/backward
pair in float64 with a random upstream gradient and compares every analytic gradient with
centred differences, finding the inputs that sit within ``h`` of a kink (ReLU at 0, tied
maxima in a pooling window, a hinge at margin 0) and nudging them away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def rel_error(a: Any, b: Any) -> float:
    """Maximum over elements of ``|a - b| / max(1e-8, |a| + |b|)``.

    Inputs: two arrays (or scalars) of the same shape. Returns a float; inf if shapes differ.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    err = np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))
    # NaN anywhere must not read as agreement.
    return float("inf") if np.isnan(err).any() else float(err.max())


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5, verbose: bool = False
) -> np.ndarray:
    """Centred-difference gradient of a scalar function at ``x``.

    Inputs:
    - f: function of one array returning a scalar.
    - x: array of any shape; perturbed in place one element at a time and restored
      exactly (the saved value is written back, not ``x + h - h``).
    - h: step.
    - verbose: print each index and its gradient.

    Returns grad of x's shape.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = float(f(x))
        x[ix] = old - h
        fxmh = float(f(x))
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Gradient of ``sum(f(x) * df)`` with respect to x, by centred differences.

    Inputs:
    - f: function of one array returning an array of df's shape.
    - x: array of any shape (perturbed in place and restored).
    - df: upstream gradient, shape of f(x).

    Returns grad of x's shape.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        # Difference the outputs first, then weight: no cancellation between two large sums.
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random entries.

    Inputs:
    - f: scalar function of x; x: array (perturbed in place and restored);
      analytic_grad: x's shape.

    Returns (num_checks,) relative errors ``|num - ana| / max(1e-8, |num| + |ana|)``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    errors = np.empty(num_checks)
    for k in range(num_checks):
        ix = tuple(int(rng.integers(n)) for n in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = float(f(x))
        x[ix] = old - h
        fxmh = float(f(x))
        x[ix] = old
        num = (fxph - fxmh) / (2 * h)
        ana = float(analytic_grad[ix])
        errors[k] = abs(num - ana) / max(1e-8, abs(num) + abs(ana))
    return errors


@dataclass
class LayerCheckResult:
    """What :func:`check_layer` found.

    - errors: input name -> max relative error of its analytic gradient (inf when the
      backward pass returned the wrong shape or raised).
    - numeric, analytic: input name -> gradient arrays (float64).
    - kinks: input name -> number of elements still within h of a kink after nudging
      (excluded from ``errors``; 0 almost always).
    - nudged: how many elements were moved away from a kink before the final comparison.
    - out: the forward output (float64) on the final inputs; inputs: those inputs.
    - messages: notes for a human (shape mismatches, exceptions).
    """

    errors: dict[str, float] = field(default_factory=dict)
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    analytic: dict[str, np.ndarray] = field(default_factory=dict)
    kinks: dict[str, int] = field(default_factory=dict)
    nudged: int = 0
    out: np.ndarray | None = None
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def passed(self, tol: float) -> bool:
        return self.max_error < tol


def _as_tuple(grads: Any) -> tuple:
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def _numeric_with_kinks(
    fwd: Callable,
    inputs: dict[str, np.ndarray],
    name: str,
    dout: np.ndarray,
    base: np.ndarray,
    h: float,
    kink_tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Centred-difference gradient of <fwd(*inputs)[0], dout> w.r.t. inputs[name] and a mask
    of the elements where the one-sided slopes disagree (a kink within h)."""
    x = inputs[name]
    grad = np.zeros_like(x)
    kink = np.zeros(x.shape, dtype=bool)
    flat = x.reshape(-1)  # a view: inputs are contiguous float64 copies
    gflat, kflat = grad.reshape(-1), kink.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        pos = np.array(fwd(*inputs.values())[0], dtype=np.float64)
        flat[i] = old - h
        neg = np.array(fwd(*inputs.values())[0], dtype=np.float64)
        flat[i] = old
        # Difference the outputs before weighting: keeps the rounding error at ~eps/h.
        gp = np.sum((pos - base) * dout) / h
        gm = np.sum((base - neg) * dout) / h
        gflat[i] = (gp + gm) / 2
        # Smooth functions give gp - gm = h * f'' (tiny); a kink gives a jump of order
        # |dout| * (slope change), orders of magnitude larger.
        kflat[i] = abs(gp - gm) > kink_tol * (1.0 + abs(gp) + abs(gm))
    return grad, kink


def check_layer(
    forward: Callable,
    backward: Callable,
    inputs: Mapping[str, Any],
    param: Any = None,
    wrt: Iterable[str] | None = None,
    h: float = 1e-5,
    seed: int | np.random.Generator | None = 0,
    max_nudges: int = 3,
    kink_tol: float = 1e-4,
) -> LayerCheckResult:
    """Check a forward/backward pair against numerical gradients in float64.

    ``forward(*inputs.values(), param)`` (``param`` left out when None) must return
    ``(out, cache)``; ``backward(dout, cache)`` returns the gradients of the inputs in the
    same order (a single array when there is one input), e.g. ``dx, dw, db`` for
    ``{'x': x, 'w': w, 'b': b}``. A random N(0, 1) upstream gradient ``dout`` (seeded)
    makes every output element count.

    Kinks: an element whose left and right difference quotients disagree is within h of
    a non-differentiable point (ReLU at 0, tied or nearly tied maxima in a pooling window).
    Such elements are moved by a random +-(50..100)*h and the check is redone, up to
    ``max_nudges`` times; any left are reported in ``result.kinks`` and excluded from the
    error, unless there are more than max(2, 5%) of them (then the error is inf: a forward
    pass that is kinked everywhere, or random, cannot be checked this way). A forward pass
    that gives different outputs on two identical calls fails at once. ``param`` dicts
    are deep-copied per call, so stateful params (batch norm running statistics) do not
    drift between evaluations.

    Inputs:
    - forward, backward: the layer's functions.
    - inputs: ordered mapping name -> array (cast to float64 copies).
    - param: the layer's parameter dict (conv_param, pool_param, bn_param, ...) or None.
    - wrt: names to check (default: all inputs).
    - h: finite-difference step; seed: for dout and nudges.

    Returns a :class:`LayerCheckResult`.
    """
    import copy

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ins = {k: np.array(v, dtype=np.float64, copy=True, order="C") for k, v in inputs.items()}
    names = list(ins)
    wrt = names if wrt is None else list(wrt)
    unknown = [n for n in wrt if n not in ins]
    if unknown:
        raise ValueError(f"check_layer: wrt names {unknown} are not inputs {names}")

    def fwd(*args: np.ndarray) -> tuple:
        return forward(*args, copy.deepcopy(param)) if param is not None else forward(*args)

    result = LayerCheckResult()
    out0 = np.array(fwd(*ins.values())[0], dtype=np.float64)
    again = np.array(fwd(*ins.values())[0], dtype=np.float64)
    if out0.shape != again.shape or not np.array_equal(out0, again, equal_nan=True):
        # E.g. dropout drawing a new mask per call: finite differences would be noise.
        result.messages.append("forward is not deterministic: two calls on the same inputs "
                               "differ (seed the layer's randomness)")
        result.errors = {n: float("inf") for n in wrt}
        return result
    dout = rng.standard_normal(out0.shape)
    nudged = 0
    for attempt in range(max_nudges + 1):
        base_out, cache = fwd(*ins.values())
        base = np.array(base_out, dtype=np.float64)
        numeric, kinks = {}, {}
        for n in wrt:
            numeric[n], kinks[n] = _numeric_with_kinks(fwd, ins, n, dout, base, h, kink_tol)
        n_kinks = sum(int(k.sum()) for k in kinks.values())
        if n_kinks == 0 or attempt == max_nudges:
            break
        for n in wrt:
            k = kinks[n]
            if k.any():
                step = rng.uniform(50 * h, 100 * h, size=int(k.sum()))
                ins[n][k] += step * rng.choice([-1.0, 1.0], size=step.size)
                nudged += int(k.sum())

    result.nudged = nudged
    result.out = base
    result.inputs = ins
    result.numeric = numeric
    result.kinks = {n: int(kinks[n].sum()) for n in wrt}
    try:
        grads = _as_tuple(backward(dout.copy(), cache))
    except Exception as exc:  # a student's backward may raise anything; report it
        result.messages.append(f"backward raised {type(exc).__name__}: {exc}")
        result.errors = {n: float("inf") for n in wrt}
        return result
    if len(grads) < len(names):
        result.messages.append(
            f"backward returned {len(grads)} gradients, expected {len(names)} ({names})"
        )
    for n in wrt:
        i = names.index(n)
        if i >= len(grads):
            result.errors[n] = float("inf")
            continue
        g = np.asarray(grads[i], dtype=np.float64)
        result.analytic[n] = g
        if g.shape != ins[n].shape:
            result.messages.append(f"d{n} has shape {g.shape}, expected {ins[n].shape}")
            result.errors[n] = float("inf")
            continue
        keep = ~kinks[n]
        result.errors[n] = rel_error(g[keep], numeric[n][keep])
        if result.kinks[n] > max(2, 0.05 * keep.size):
            # A few stubborn kinks are plausible; many mean the forward pass is not
            # piecewise smooth at this scale, and excluding them would hide everything.
            result.messages.append(
                f"d{n}: {result.kinks[n]} of {keep.size} elements still sit on kinks "
                f"after {max_nudges} nudges; forward is not smooth enough to check"
            )
            result.errors[n] = float("inf")
    return result
