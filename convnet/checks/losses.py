"""Loss checks: softmax and SVM losses, MSE, binary cross-entropy (on probabilities and on
logits), the Gaussian KL term of a VAE, and softmax itself.

Each loss returns ``(loss, gradient)``; the loss is checked against its formula written out
in :mod:`convnet.checks.references` (``FWD_TOL``) and the gradient against centred
differences of the returned loss (``BWD_TOL``), for every reduction the loss accepts
(``mean``, ``sum``, ``batchmean`` = sum over the batch size).

The scores are unit-scale on purpose: with much larger ones some probabilities (and
gradient entries) fall below 1e-4, where the centred difference of an O(1) scalar loss
cannot resolve them to 1e-7 relative. Numerical stability is checked apart, where the exact
answer is known:

* softmax loss on logits of size ~1e4 must stay finite and match the log-sum-exp formula;
* BCE with logits at +-1000 and +-800 must be finite and exact (``log(1 + e^1000) = 1000``);
* BCE on probabilities exactly 0 and 1 must stay finite (the log must be clipped).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from convnet.checks.compare import rng
from convnet.checks.references import (
    ref_bce_loss,
    ref_gaussian_kl,
    ref_mse_loss,
    ref_softmax_loss,
    ref_svm_loss,
    sigmoid,
)
from convnet.checks.registry import FWD_TOL, Getter, register
from convnet.gradcheck import eval_numerical_gradient, rel_error

REDUCTIONS = ("mean", "sum", "batchmean")


def _loss_grad_check(loss_fn: Callable, pred: np.ndarray, *rest: Any) -> tuple[float, str]:
    """The loss's gradient with respect to its first argument against centred differences."""
    _, analytic = loss_fn(pred, *rest)[:2]
    numeric = eval_numerical_gradient(lambda p: loss_fn(p, *rest)[0], pred.copy())
    return rel_error(analytic, numeric), ""


def _scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    r = rng(seed)
    # Unit-scale scores: with much larger ones some probabilities (and gradient entries)
    # fall below 1e-4, where the centred difference of an O(1) scalar loss cannot resolve
    # them to 1e-7 relative (rounding floor ~ eps * loss / h ~ 2e-11 absolute).
    return r.standard_normal((6, 5)), r.integers(0, 5, size=6)


def _pair(seed: int, shape: tuple[int, ...] = (4, 6)) -> tuple[np.ndarray, np.ndarray]:
    r = rng(seed)
    return r.standard_normal(shape), r.random(shape)


def _register_classification() -> None:
    for name, ref in (("softmax_loss", ref_softmax_loss), ("svm_loss", ref_svm_loss)):
        register(name, "loss vs direct formula", (name,), FWD_TOL)(
            lambda get, n=name, f=ref: (rel_error(get(n)(*_scores(300))[0], f(*_scores(300))),
                                        ""))
        register(name, "dscores vs numerical", (name,))(
            lambda get, n=name: _loss_grad_check(get(n), *_scores(301)))


_register_classification()


@register("softmax_loss", "large logits (1e4) stay finite", ("softmax_loss",), FWD_TOL)
def _softmax_stable_case(get: Getter) -> tuple[float, str]:
    s, y = _scores(302)
    big = s * 5e3
    loss, d = get("softmax_loss")(big, y)
    if not (np.isfinite(loss) and np.all(np.isfinite(d))):
        return math.inf, "overflow: loss or gradient not finite"
    return rel_error(loss, ref_softmax_loss(big, y)), ""


def _mse_case(get: Getter, r: str) -> tuple[float, str]:
    err = rel_error(get("mse_loss")(*_pair(310), r)[0], ref_mse_loss(*_pair(310), r))
    gerr = _loss_grad_check(lambda p, t: get("mse_loss")(p, t, r), *_pair(311))[0]
    return max(err, gerr), ""


def _bce_case(get: Getter, r: str) -> tuple[float, str]:
    z, t = _pair(320)
    p = sigmoid(z)
    err = rel_error(get("bce_loss")(p, t, r)[0], ref_bce_loss(p, t, r))
    gerr = _loss_grad_check(lambda q, tt: get("bce_loss")(q, tt, r), p, t)[0]
    return max(err, gerr), ""


def _bce_logits_case(get: Getter, r: str) -> tuple[float, str]:
    z, t = _pair(330)
    fn = get("bce_with_logits_loss")
    err = rel_error(fn(z, t, r)[0], ref_bce_loss(sigmoid(z), t, r))
    gerr = _loss_grad_check(lambda q, tt: fn(q, tt, r), z, t)[0]
    return max(err, gerr), ""


for _red in REDUCTIONS:
    register("mse_loss", f"{_red}: loss vs formula, dpred vs numerical", ("mse_loss",))(
        lambda get, r=_red: _mse_case(get, r))
    register("bce_loss", f"{_red}: loss vs formula, dprobs vs numerical", ("bce_loss",))(
        lambda get, r=_red: _bce_case(get, r))
    register("bce_with_logits_loss", f"{_red}: loss vs formula, dlogits vs numerical",
             ("bce_with_logits_loss",))(lambda get, r=_red: _bce_logits_case(get, r))


@register("bce_with_logits_loss", "logits +-1000 stay finite and exact",
          ("bce_with_logits_loss",), FWD_TOL)
def _bcel_stable_case(get: Getter) -> tuple[float, str]:
    z = np.array([[1000.0, -1000.0, 800.0, -800.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0]])
    loss, d = get("bce_with_logits_loss")(z, t, "sum")
    if not (np.isfinite(loss) and np.all(np.isfinite(d))):
        return math.inf, "overflow: loss or gradient not finite"
    # Exact: log(1 + e^1000) = 1000 (+ e^-1000), twice; the other two terms are ~0.
    return max(rel_error(loss, 2000.0), rel_error(d, [[1.0, -1.0, 0.0, 0.0]])), ""


@register("bce_loss", "probabilities 0 and 1 stay finite", ("bce_loss",), FWD_TOL)
def _bce_stable_case(get: Getter) -> tuple[float, str]:
    p = np.array([[0.0, 1.0, 0.0, 1.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0]])
    loss, d = get("bce_loss")(p, t, "sum")
    ok = np.isfinite(loss) and np.all(np.isfinite(d)) and loss > 0
    return (0.0, "") if ok else (math.inf, f"loss {loss}, gradient {np.asarray(d).ravel()}")


def _kl_case(get: Getter, r: str) -> tuple[float, str]:
    rr = rng(340)
    mu, lv = rr.standard_normal((4, 3)), 0.5 * rr.standard_normal((4, 3))
    fn = get("gaussian_kl")
    kl, dmu, dlv = fn(mu, lv, r)
    err = rel_error(kl, ref_gaussian_kl(mu, lv, r))
    nmu = eval_numerical_gradient(lambda m: fn(m, lv, r)[0], mu.copy())
    nlv = eval_numerical_gradient(lambda v: fn(mu, v, r)[0], lv.copy())
    return max(err, rel_error(dmu, nmu), rel_error(dlv, nlv)), ""


for _red in ("batchmean", "mean", "sum"):
    register("gaussian_kl", f"{_red}: kl vs formula, dmu/dlogvar vs numerical",
             ("gaussian_kl",))(lambda get, r=_red: _kl_case(get, r))


@register("softmax", "vs direct formula, rows sum to 1", ("softmax",), FWD_TOL)
def _softmax_case(get: Getter) -> tuple[float, str]:
    s = _scores(303)[0]
    e = np.exp(s)
    return rel_error(get("softmax")(s), e / e.sum(axis=1, keepdims=True)), ""
