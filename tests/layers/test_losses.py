"""Losses against direct formulas, numerical gradients (float64, < 1e-7) and stability."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from convnet.gradcheck import eval_numerical_gradient, rel_error
from convnet.layers import (
    bce_loss,
    bce_with_logits_loss,
    gaussian_kl,
    mse_loss,
    softmax,
    softmax_loss,
    svm_loss,
)

TOL = 1e-7
REDUCTIONS = ("mean", "sum", "batchmean")


def _scores(seed: int = 0, N: int = 7, C: int = 5) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.standard_normal((N, C)), r.integers(0, C, size=N)


def _num_grad(f, x):
    return eval_numerical_gradient(f, x.copy())


def _reduce(per: np.ndarray, reduction: str) -> float:
    return {"mean": per.mean(), "sum": per.sum(), "batchmean": per.sum() / per.shape[0]}[
        reduction]


def test_softmax_loss_formula_and_gradient():
    s, y = _scores()
    loss, d = softmax_loss(s, y)
    expected = np.mean(logsumexp(s, axis=1) - s[np.arange(len(y)), y])
    assert loss == pytest.approx(expected, rel=1e-13)
    assert rel_error(d, _num_grad(lambda q: softmax_loss(q, y)[0], s)) < TOL
    # Uniform scores: the loss is log(C).
    assert softmax_loss(np.zeros((3, 10)), np.array([1, 2, 3]))[0] == pytest.approx(np.log(10))
    np.testing.assert_allclose(softmax(s).sum(axis=1), 1)


def test_softmax_loss_is_stable_for_large_logits():
    s, y = _scores(1)
    big = 1e4 * s
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        loss, d = softmax_loss(big, y)
        p = softmax(big)
    expected = np.mean(logsumexp(big, axis=1) - big[np.arange(len(y)), y])
    assert loss == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(d)) and np.all(np.isfinite(p))
    # The gradient of a mean over N rows sums to 0 per row.
    np.testing.assert_allclose(d.sum(axis=1), 0, atol=1e-15)


def test_svm_loss_formula_and_gradient():
    s, y = _scores(2)
    loss, d = svm_loss(s, y)
    expected = 0.0
    for i in range(len(y)):
        for j in range(s.shape[1]):
            if j != y[i]:
                expected += max(0.0, s[i, j] - s[i, y[i]] + 1)
    assert loss == pytest.approx(expected / len(y), rel=1e-13)
    # Random normal scores keep every margin far from the hinge at 0 (no kink within h).
    assert rel_error(d, _num_grad(lambda q: svm_loss(q, y)[0], s)) < TOL


@pytest.mark.parametrize("fn", [softmax_loss, svm_loss])
def test_classification_losses_keep_dtype_and_validate(fn):
    s, y = _scores(3)
    loss, d = fn(s.astype(np.float32), y)
    assert d.dtype == np.float32 and isinstance(loss, float)
    with pytest.raises(ValueError, match=fn.__name__ + r": y must be integer labels of shape"):
        fn(s, y[:-1])
    with pytest.raises(ValueError, match=r"labels must be in \[0, C\) == \[0, 5\)"):
        fn(s, np.full(len(y), 5))
    with pytest.raises(ValueError, match=r"scores must be 2-D \(N, C\)"):
        fn(s.ravel(), y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    r = np.random.default_rng(4)
    p, t = r.standard_normal((4, 3, 2)), r.standard_normal((4, 3, 2))
    loss, d = mse_loss(p, t, reduction)
    assert loss == pytest.approx(_reduce((p - t) ** 2, reduction), rel=1e-13)
    assert rel_error(d, _num_grad(lambda q: mse_loss(q, t, reduction)[0], p)) < TOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_from_probabilities(reduction):
    r = np.random.default_rng(5)
    p, t = expit(r.standard_normal((5, 4))), r.random((5, 4))
    loss, d = bce_loss(p, t, reduction)
    per = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert loss == pytest.approx(_reduce(per, reduction), rel=1e-12)
    assert rel_error(d, _num_grad(lambda q: bce_loss(q, t, reduction)[0], p)) < TOL


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    r = np.random.default_rng(6)
    z, t = 3 * r.standard_normal((5, 4)), (r.random((5, 4)) > 0.5).astype(float)
    loss, d = bce_with_logits_loss(z, t, reduction)
    s = expit(z)
    per = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert loss == pytest.approx(_reduce(per, reduction), rel=1e-12)
    assert rel_error(d, _num_grad(lambda q: bce_with_logits_loss(q, t, reduction)[0], z)) < TOL
    # Same function as bce_loss of the sigmoid, where both are well defined.
    assert bce_loss(s, t, reduction)[0] == pytest.approx(loss, rel=1e-10)


def test_bce_stability_at_extremes():
    z = np.array([[1000.0, -1000.0, 50.0, -50.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        loss, d = bce_with_logits_loss(z, t, "sum")
    # log(1 + e^1000) = 1000 exactly in float64; log(1 + e^-50) = e^-50.
    assert loss == pytest.approx(2000.0 + 2 * np.exp(-50.0), rel=1e-15)
    np.testing.assert_allclose(d, [[1.0, -1.0, -np.exp(-50.0), np.exp(-50.0)]], rtol=1e-12)
    # From probabilities: exactly 0 and 1 are clipped, giving a large finite loss and a
    # gradient that still points the right way.
    p = np.array([[0.0, 1.0, 0.0, 1.0]], dtype=np.float32)
    tp = np.array([[0.0, 1.0, 1.0, 0.0]], dtype=np.float32)
    with np.errstate(divide="raise", invalid="raise"):
        loss, d = bce_loss(p, tp, "sum")
    assert np.isfinite(loss) and d.dtype == np.float32 and np.all(np.isfinite(d))
    # Keras' epsilon 1e-7 in float32; 1 - 1e-7 itself rounds to a float32 just below 1.
    lo = np.float64(np.float32(1e-7))
    hi = np.float64(np.float32(1) - np.float32(1e-7))
    expected = -np.log(lo) - np.log1p(-hi) - np.log1p(-lo) - np.log(hi)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert d[0, 2] < 0 < d[0, 3]


@pytest.mark.parametrize("reduction", ("batchmean", "mean", "sum"))
def test_gaussian_kl(reduction):
    r = np.random.default_rng(7)
    mu, lv = r.standard_normal((4, 3)), 0.5 * r.standard_normal((4, 3))
    kl, dmu, dlv = gaussian_kl(mu, lv, reduction)
    # KL(N(mu, s^2) || N(0, 1)) = -log s + (s^2 + mu^2) / 2 - 1/2, per dimension.
    sd = np.exp(lv / 2)
    per = -np.log(sd) + (sd ** 2 + mu ** 2) / 2 - 0.5
    assert kl == pytest.approx(_reduce(per, reduction), rel=1e-12)
    assert rel_error(dmu, _num_grad(lambda m: gaussian_kl(m, lv, reduction)[0], mu)) < TOL
    assert rel_error(dlv, _num_grad(lambda v: gaussian_kl(mu, v, reduction)[0], lv)) < TOL
    z = np.zeros((2, 3))
    assert gaussian_kl(z, z, reduction)[0] == 0.0


def test_regression_losses_validate_and_keep_dtype():
    p = np.ones((2, 3), dtype=np.float32)
    assert mse_loss(p, np.zeros((2, 3)))[1].dtype == np.float32
    assert bce_with_logits_loss(p, np.ones((2, 3), dtype=int))[1].dtype == np.float32
    assert gaussian_kl(p, p)[2].dtype == np.float32
    with pytest.raises(ValueError, match=r"mse_loss: target must have the shape of pred \(2, 3\)"):
        mse_loss(p, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"bce_loss: reduction must be one of"):
        bce_loss(p / 2, p / 2, "avg")
    with pytest.raises(ValueError, match=r"gaussian_kl: logvar must have the shape of mu"):
        gaussian_kl(p, p[:1])
    with pytest.raises(ValueError, match="floating"):
        mse_loss(np.ones((2, 3), dtype=int), p)
