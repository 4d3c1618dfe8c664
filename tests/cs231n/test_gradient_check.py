"""The kit's ``gradient_check`` names on convnet.gradcheck: blobs, nets, sparse checks."""

# The kit's sparse check picks its positions from NumPy's global random state.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np

from convnet.cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_blobs,
    eval_numerical_gradient_net,
    grad_check_sparse,
)


class Blob:
    def __init__(self, vals: np.ndarray) -> None:
        self.vals = vals
        self.diffs = np.zeros_like(vals)


def _product(a: Blob, b: Blob, out: Blob) -> None:
    out.vals = a.vals * b.vals + np.sin(a.vals)


def test_blobs_give_the_gradient_of_each_input():
    rng = np.random.default_rng(0)
    a, b = Blob(rng.standard_normal((3, 4))), Blob(rng.standard_normal((3, 4)))
    out = Blob(np.zeros((3, 4)))
    out.diffs = rng.standard_normal((3, 4))
    a0, b0 = a.vals.copy(), b.vals.copy()
    da, db = eval_numerical_gradient_blobs(_product, [a, b], out)
    assert np.allclose(da, out.diffs * (b0 + np.cos(a0)), rtol=1e-7, atol=1e-9)
    assert np.allclose(db, out.diffs * a0, rtol=1e-7, atol=1e-9)
    assert np.array_equal(a.vals, a0) and np.array_equal(b.vals, b0)  # restored


def test_net_forward_is_used():
    rng = np.random.default_rng(1)
    a, b = Blob(rng.standard_normal(5)), Blob(rng.standard_normal(5))
    out = Blob(np.zeros(5))
    out.diffs = np.ones(5)

    class Net:
        def forward(self):
            _product(a, b, out)

    (db,) = eval_numerical_gradient_net(Net(), [b], out)
    assert np.allclose(db, a.vals, rtol=1e-7)


def test_verbose_default_prints_like_the_kit(capsys):
    x = np.array([1.0, 2.0])
    g = eval_numerical_gradient(lambda v: float(np.sum(v**2)), x)
    assert np.allclose(g, 2 * x)
    assert capsys.readouterr().out.count("\n") == 2


def test_grad_check_sparse_reports_small_errors_for_a_right_gradient(capsys):
    x = np.random.default_rng(2).standard_normal((4, 6))
    np.random.seed(0)
    errors = grad_check_sparse(lambda v: float(np.sum(v**3)), x, 3 * x**2, num_checks=5)
    assert errors.shape == (5,) and errors.max() < 1e-8
    assert capsys.readouterr().out.count("relative error") == 5
    wrong = grad_check_sparse(lambda v: float(np.sum(v**3)), x, 2 * x**2, num_checks=5)
    assert wrong.min() > 0.1
