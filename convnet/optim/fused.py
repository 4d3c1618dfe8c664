"""Fused, in-place optimiser steps: the formulas of ``convnet.optim.rules`` in one pass.

``rules.adam`` is the readable reference: ``next_w = w - lr * m_hat / (sqrt(v_hat) + eps)``
written as NumPy expressions. Each expression allocates a temporary and walks the memory
once, and the Solver adds a finiteness check of the gradient and of the new parameter:
about ten passes over every parameter per step. For the 825k float32 parameters of the
CIFAR-10 BasicConvNet, Adam's loop took 2.9 ms of a 23 ms training step; the kernels below do
the same work in 0.5 ms, reading each array once and writing w, m and v once
(``python -m benchmarks.bench_optim_step``).

``fused_step(rule, w, dw, config)`` does for every rule of ``convnet.optim.rules`` (sgd,
sgd_momentum, nesterov, rmsprop, adam) what ``rule(w, dw, config)`` does, with a Numba
kernel that

1. reads ``dw`` and stops, having written nothing, if an entry is NaN or infinite;
2. otherwise updates the state (``velocity``, ``cache``, or ``m`` and ``v``) and ``w``
   element by element in one loop, noting whether a new ``w`` entry is not finite.

Same numbers: a kernel evaluates the reference formula operation by operation, in the same
order and precision as NumPy evaluates the rule. The hyperparameters are rounded to w's
dtype first, as NumPy does with Python floats next to a float32 array (NEP 50), so float32
parameters are updated in float32 arithmetic; where the rule mixes in a float64 NumPy
scalar (Adam's ``'hat'`` step size), the kernel computes that part in float64 too. The
results are bit-identical to the rule's (tests/optim/test_fused.py).

Ownership: the new parameter is written into ``w`` and the new state into the config's
arrays, in place; no new parameter or state arrays are made after the first step. This is
why the Solver's ``model.params`` values change in place during training (copy one to keep a
snapshot). To stay safe, the fused step only writes into arrays that own their memory: ``w``
must be a C-contiguous, writeable float32/float64 array owning its data, else the caller
falls back to the rule (which returns a new array); state arrays that do not qualify (a
checkpoint's arrays, another dtype) are replaced by a private copy first, as the rule would
do.

Without Numba the same steps run as NumPy expressions on the flat arrays (slower; same
numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convnet.layers._numba_chunks import NUMBA_AVAILABLE, njit
from convnet.optim import rules

__all__ = [
    "ENABLED",
    "GRADIENT_NOT_FINITE",
    "NOT_APPLICABLE",
    "RESULT_NOT_FINITE",
    "fused_step",
]

#: The Solver uses ``fused_step`` while this is True (tests switch it off to compare).
ENABLED = True
#: Use the Numba kernels (False: the pure-NumPy ones, e.g. to test them).
USE_NUMBA = NUMBA_AVAILABLE

#: ``fused_step`` outcomes other than None (= updated, everything finite).
NOT_APPLICABLE = "not applicable"
GRADIENT_NOT_FINITE = "gradient not finite"
RESULT_NOT_FINITE = "result not finite"
_OUTCOMES = (None, GRADIENT_NOT_FINITE, RESULT_NOT_FINITE)  # indexed by a kernel's code

# The rules' defaults, in the order in which the rules set them (checkpoints keep the order;
# a test compares a fused step on an empty config with the rule's).
_DEFAULTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "sgd": (("learning_rate", 1e-2),),
    "momentum": (("learning_rate", 1e-2), ("momentum", 0.9)),
    "rmsprop": (("learning_rate", 1e-2), ("decay_rate", 0.99), ("epsilon", 1e-8),
                ("epsilon_placement", "outside")),
    "adam": (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8),
             ("epsilon_placement", "corrected"), ("t", 0)),
}

Config = dict[str, Any]


# ---------------------------------------------------------------------------------------
# kernels on flat 1-D arrays; they return 0 (done), 1 (dw not finite, nothing written) or
# 2 (done, some new w entry not finite). error_model="numpy": a float division by zero
# gives inf like NumPy instead of raising, which also lets LLVM vectorise the loops.
# ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _all_finite(a):
    ok = True
    for i in range(a.size):
        ok &= abs(a[i]) < np.inf  # False for NaN and +-inf; no early exit, so it vectorises
    return ok


@njit(cache=True, nogil=True, error_model="numpy")
def _sgd_kernel(w, g, lr, wd_lr, decay):
    if not _all_finite(g):
        return 1
    ok = True
    for i in range(w.size):
        wi = w[i]
        base = wi - wd_lr * wi if decay else wi
        w[i] = base - lr * g[i]
        ok &= abs(w[i]) < np.inf
    return 0 if ok else 2


@njit(cache=True, nogil=True, error_model="numpy")
def _momentum_kernel(w, g, vel, lr, mu, one_plus_mu, wd_lr, decay, look_ahead):
    if not _all_finite(g):
        return 1
    ok = True
    for i in range(w.size):
        wi, v_prev = w[i], vel[i]
        v = mu * v_prev - lr * g[i]
        base = wi - wd_lr * wi if decay else wi
        w[i] = base - mu * v_prev + one_plus_mu * v if look_ahead else base + v
        vel[i] = v
        ok &= abs(w[i]) < np.inf
    return 0 if ok else 2


@njit(cache=True, nogil=True, error_model="numpy")
def _rmsprop_kernel(w, g, cache, lr, rho, one_minus_rho, eps, wd_lr, decay, inside):
    if not _all_finite(g):
        return 1
    ok = True
    for i in range(w.size):
        gi, wi = g[i], w[i]
        ci = rho * cache[i] + one_minus_rho * gi * gi
        base = wi - wd_lr * wi if decay else wi
        w[i] = base - lr * gi / (np.sqrt(ci + eps) if inside else np.sqrt(ci) + eps)
        cache[i] = ci
        ok &= abs(w[i]) < np.inf
    return 0 if ok else 2


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_kernel(w, g, m, v, b1, one_minus_b1, b2, one_minus_b2, lr, c1, c2, eps, wd_lr,
                 decay, hat, hat_step):
    if not _all_finite(g):
        return 1
    ok = True
    for i in range(w.size):
        gi, wi = g[i], w[i]
        mi = b1 * m[i] + one_minus_b1 * gi
        vi = b2 * v[i] + one_minus_b2 * (gi * gi)
        base = wi - wd_lr * wi if decay else wi
        if hat:
            # the rule's step size is a float64 NumPy scalar, which makes this part float64
            w[i] = np.float64(base) - hat_step * np.float64(mi) / np.float64(np.sqrt(vi) + eps)
        else:
            w[i] = base - lr * (mi / c1) / (np.sqrt(vi / c2) + eps)
        m[i], v[i] = mi, vi
        ok &= abs(w[i]) < np.inf
    return 0 if ok else 2


# The same steps as NumPy expressions, for when Numba is missing.


def _numpy_update(w, g, compute) -> int:
    if not np.all(np.isfinite(g)):
        return 1
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        w[...] = compute()
    return 0 if np.all(np.isfinite(w)) else 2


def _sgd_numpy(w, g, lr, wd_lr, decay):
    return _numpy_update(w, g, lambda: (w - wd_lr * w if decay else w) - lr * g)


def _momentum_numpy(w, g, vel, lr, mu, one_plus_mu, wd_lr, decay, look_ahead):
    def compute():
        v = mu * vel - lr * g
        base = w - wd_lr * w if decay else w
        new_w = base - mu * vel + one_plus_mu * v if look_ahead else base + v
        vel[...] = v
        return new_w

    return _numpy_update(w, g, compute)


def _rmsprop_numpy(w, g, cache, lr, rho, one_minus_rho, eps, wd_lr, decay, inside):
    def compute():
        cache[...] = rho * cache + one_minus_rho * g * g
        base = w - wd_lr * w if decay else w
        return base - lr * g / (np.sqrt(cache + eps) if inside else np.sqrt(cache) + eps)

    return _numpy_update(w, g, compute)


def _adam_numpy(w, g, m, v, b1, one_minus_b1, b2, one_minus_b2, lr, c1, c2, eps, wd_lr,
                decay, hat, hat_step):
    def compute():
        m[...] = b1 * m + one_minus_b1 * g
        v[...] = b2 * v + one_minus_b2 * (g * g)
        base = w - wd_lr * w if decay else w
        if hat:
            return base - hat_step * m / (np.sqrt(v) + eps)
        return base - lr * (m / c1) / (np.sqrt(v / c2) + eps)

    return _numpy_update(w, g, compute)


# ---------------------------------------------------------------------------------------
# the public step
# ---------------------------------------------------------------------------------------


def _writable_owned(a: Any, dtype: np.dtype) -> bool:
    return (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
            and a.flags.writeable and a.flags.owndata)


def _state(config: Config, key: str, w: np.ndarray) -> np.ndarray | None:
    """The state array ``config[key]`` to update in place (zeros on first use; a private
    copy of an array that does not qualify); None when the rule must handle it."""
    s = config.get(key)
    if s is None:
        return np.zeros_like(w)
    if not isinstance(s, np.ndarray) or s.shape != w.shape:
        return None  # the rule converts it or raises its error
    if _writable_owned(s, w.dtype):
        return s
    return np.array(s, dtype=w.dtype, order="C")


def _decay_scalar(config: Config, lr: float) -> tuple[float, bool]:
    """``(learning_rate * weight_decay, decay on)`` as ``rules._decay`` computes them."""
    wd = float(config.get("weight_decay", 0.0))
    return lr * wd, wd != 0.0


def _record(config: Config, defaults: tuple[tuple[str, Any], ...], **state: Any) -> None:
    """Fill in the defaults and store the state the way the rule does."""
    for key, value in defaults:
        config.setdefault(key, value)
    config.setdefault("weight_decay", 0.0)
    config.update(state)


def _sgd(w: np.ndarray, g: np.ndarray, config: Config) -> int:
    lr = float(config.get("learning_rate", 1e-2))
    wd_lr, decay = _decay_scalar(config, lr)
    D = w.dtype.type
    kernel = _sgd_kernel if USE_NUMBA else _sgd_numpy
    code = kernel(w.reshape(-1), g.reshape(-1), D(lr), D(wd_lr), decay)
    if code != 1:
        _record(config, _DEFAULTS["sgd"])
    return code


def _momentum(w: np.ndarray, g: np.ndarray, config: Config, look_ahead: bool) -> int | None:
    vel = _state(config, "velocity", w)
    if vel is None:
        return None
    lr = float(config.get("learning_rate", 1e-2))
    mu = float(config.get("momentum", 0.9))
    wd_lr, decay = _decay_scalar(config, lr)
    D = w.dtype.type
    kernel = _momentum_kernel if USE_NUMBA else _momentum_numpy
    code = kernel(w.reshape(-1), g.reshape(-1), vel.reshape(-1), D(lr), D(mu), D(1 + mu),
                  D(wd_lr), decay, look_ahead)
    if code != 1:
        _record(config, _DEFAULTS["momentum"], velocity=vel)
    return code


def _rmsprop(w: np.ndarray, g: np.ndarray, config: Config) -> int | None:
    hp = {key: config.get(key, value) for key, value in _DEFAULTS["rmsprop"]}
    cache = _state(config, "cache", w)
    if hp["epsilon_placement"] not in ("outside", "inside") or cache is None:
        return None
    lr, rho, eps = (float(hp[k]) for k in ("learning_rate", "decay_rate", "epsilon"))
    wd_lr, decay = _decay_scalar(config, lr)
    D = w.dtype.type
    kernel = _rmsprop_kernel if USE_NUMBA else _rmsprop_numpy
    code = kernel(w.reshape(-1), g.reshape(-1), cache.reshape(-1), D(lr), D(rho), D(1 - rho),
                  D(eps), D(wd_lr), decay, hp["epsilon_placement"] == "inside")
    if code != 1:
        _record(config, _DEFAULTS["rmsprop"], cache=cache)
    return code


def _adam(w: np.ndarray, g: np.ndarray, config: Config) -> int | None:
    hp = {key: config.get(key, value) for key, value in _DEFAULTS["adam"]}
    m, v = _state(config, "m", w), _state(config, "v", w)
    if hp["epsilon_placement"] not in ("corrected", "hat") or m is None or v is None:
        return None
    lr, b1, b2, eps = (float(hp[k]) for k in ("learning_rate", "beta1", "beta2", "epsilon"))
    t = int(hp["t"]) + 1
    c1, c2 = 1.0 - b1**t, 1.0 - b2**t
    wd_lr, decay = _decay_scalar(config, lr)
    hat = hp["epsilon_placement"] == "hat"
    hat_step = float(lr * np.sqrt(c2) / c1)
    D = w.dtype.type
    kernel = _adam_kernel if USE_NUMBA else _adam_numpy
    code = kernel(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), D(b1),
                  D(1 - b1), D(b2), D(1 - b2), D(lr), D(c1), D(c2), D(eps), D(wd_lr), decay,
                  hat, np.float64(hat_step))
    if code != 1:
        _record(config, _DEFAULTS["adam"], m=m, v=v, t=t)
    return code


def fused_step(rule: Callable[..., Any], w: np.ndarray, dw: np.ndarray,
               config: Config) -> str | None:
    """One step of ``rule`` written into ``w`` and ``config`` in place, if it can be fused.

    Inputs:
    - rule: an update rule; the five of ``convnet.optim.rules`` are fused, any other
      callable is NOT_APPLICABLE.
    - w: the parameter, any shape; must be a C-contiguous, writeable float32/float64 array
      that owns its memory.
    - dw: its gradient, same shape and dtype (any memory layout).
    - config: the rule's config dict (hyperparameters and state), updated as the rule does.

    Returns:
    - None: done; ``w`` and ``config`` hold the same numbers ``rule(w, dw, config)`` gives.
    - GRADIENT_NOT_FINITE: dw has a NaN or infinite entry; nothing was written.
    - RESULT_NOT_FINITE: done, but ``w`` now has a NaN or infinite entry.
    - NOT_APPLICABLE: nothing was done; call ``rule(w, dw, config)`` instead.
    """
    if not (isinstance(w, np.ndarray) and w.dtype in (np.float32, np.float64)
            and _writable_owned(w, w.dtype) and isinstance(dw, np.ndarray)
            and dw.shape == w.shape and dw.dtype == w.dtype and isinstance(config, dict)):
        return NOT_APPLICABLE
    g = np.ascontiguousarray(dw)
    if rule is rules.adam:
        code = _adam(w, g, config)
    elif rule is rules.sgd:
        code = _sgd(w, g, config)
    elif rule in (rules.sgd_momentum, rules.nesterov):
        code = _momentum(w, g, config, look_ahead=rule is rules.nesterov)
    elif rule is rules.rmsprop:
        code = _rmsprop(w, g, config)
    else:
        code = None
    return NOT_APPLICABLE if code is None else _OUTCOMES[code]
