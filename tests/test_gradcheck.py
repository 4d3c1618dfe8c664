"""The numerical-gradient helpers and ``check_layer`` (kinks, wrong gradients, reporting)."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.gradcheck import (
    check_layer,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)
from convnet.layers import (
    affine_backward,
    affine_forward,
    max_pool_backward_naive,
    max_pool_forward_naive,
    relu_backward,
    relu_forward,
)


def test_rel_error_definition():
    assert rel_error(1.0, 2.0) == pytest.approx(1 / 3)
    assert rel_error(np.array([1.0, 0.0]), np.array([1.0, 1e-12])) == pytest.approx(1e-4)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    # The max over elements, not an average.
    assert rel_error([1.0, 1.0, 1.0], [1.0, 1.0, 3.0]) == pytest.approx(0.5)
    assert rel_error([np.nan], [1.0]) == float("inf")
    assert rel_error(np.zeros(2), np.zeros(3)) == float("inf")


def test_eval_numerical_gradient_scalar_and_restores_x():
    x = np.random.default_rng(0).standard_normal((3, 4))
    before = x.copy()
    g = eval_numerical_gradient(lambda a: np.sum(a ** 3) + a[0, 0] * a[1, 1], x)
    expected = 3 * x ** 2
    expected[0, 0] += x[1, 1]
    expected[1, 1] += x[0, 0]
    # 1e-7: the smallest entry is ~5e-3, and a scalar f of size ~10 has a rounding floor
    # of ~eps * 10 / h ~ 2e-10 absolute.
    assert rel_error(g, expected) < 1e-7
    assert np.array_equal(x, before)  # bitwise: the saved value is written back


def test_eval_numerical_gradient_array():
    r = np.random.default_rng(1)
    x, w, df = r.standard_normal((4, 3)), r.standard_normal((3, 2)), r.standard_normal((4, 2))
    before = x.copy()
    g = eval_numerical_gradient_array(lambda a: np.tanh(a @ w), x, df)
    expected = ((1 - np.tanh(x @ w) ** 2) * df) @ w.T
    assert rel_error(g, expected) < 1e-8
    assert np.array_equal(x, before)


def test_grad_check_sparse_tells_right_from_wrong():
    x = np.random.default_rng(2).standard_normal((5, 6))
    f = lambda a: float(np.sum(np.sin(a)))
    good = grad_check_sparse(f, x, np.cos(x), num_checks=8, seed=0)
    bad = grad_check_sparse(f, x, np.cos(x) * 1.01, num_checks=8, seed=0)
    assert good.shape == (8,) and good.max() < 1e-8
    assert bad.min() > 1e-3


def test_check_layer_passes_correct_and_catches_wrong_backward():
    r = np.random.default_rng(3)
    inputs = {"x": r.standard_normal((4, 5)), "w": r.standard_normal((5, 3)),
              "b": r.standard_normal(3)}
    ok = check_layer(affine_forward, affine_backward, inputs)
    assert ok.passed(1e-7) and set(ok.errors) == {"x", "w", "b"}
    assert ok.inputs["x"].dtype == np.float64

    def wrong_db(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db / dout.shape[0]  # a mean instead of a sum

    bad = check_layer(affine_forward, wrong_db, inputs)
    assert bad.errors["b"] > 0.1 and bad.errors["x"] < 1e-7
    only_x = check_layer(affine_forward, wrong_db, inputs, wrt=["x"])
    assert list(only_x.errors) == ["x"] and only_x.passed(1e-7)
    with pytest.raises(ValueError, match="check_layer: wrt names"):
        check_layer(affine_forward, affine_backward, inputs, wrt=["y"])


def test_check_layer_runs_in_float64_and_reports_shape_and_exceptions():
    x = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    res = check_layer(relu_forward, lambda d, c: d[:, :2], {"x": x})
    assert res.errors["x"] == float("inf") and "shape" in res.messages[0]
    assert res.inputs["x"].dtype == np.float64

    def boom(dout, cache):
        raise RuntimeError("student bug")

    res = check_layer(relu_forward, boom, {"x": x})
    assert res.max_error == float("inf") and "student bug" in res.messages[0]


def test_check_layer_nudges_relu_inputs_off_the_kink():
    x = np.random.default_rng(5).standard_normal((8, 10))
    x[0, :3] = [0.0, 3e-6, -7e-6]  # at and within h = 1e-5 of the kink
    res = check_layer(relu_forward, relu_backward, {"x": x})
    assert res.nudged >= 3 and res.kinks["x"] == 0
    assert res.passed(1e-7)
    assert np.all(np.abs(res.inputs["x"][0, :3]) > 1e-5)
    # Without nudging the kinks are reported and left out of the error.
    res = check_layer(relu_forward, relu_backward, {"x": x}, max_nudges=0)
    assert res.nudged == 0 and res.kinks["x"] >= 3 and res.passed(1e-7)
    # A centred difference right at 0 would have said 0.5 where the subgradient is 0:
    # that is exactly the error the kink handling avoids.
    num = eval_numerical_gradient(lambda a: relu_forward(a)[0].sum(), np.zeros(1))
    assert num[0] == pytest.approx(0.5)


def test_check_layer_handles_tied_maxima_in_pooling_windows():
    # Small integers: almost every 3x3 window has tied maxima, where max is not
    # differentiable; check_layer must find and separate them.
    x = np.random.default_rng(6).integers(0, 3, size=(1, 2, 7, 7)).astype(np.float64)
    param = {"pool_height": 3, "pool_width": 3, "stride": 2}
    res = check_layer(max_pool_forward_naive, max_pool_backward_naive, {"x": x}, param)
    assert res.nudged > 0
    assert res.passed(1e-7), (res.errors, res.kinks)


def test_check_layer_does_not_let_params_drift():
    # Batch norm updates running statistics in its param dict: every evaluation must see
    # the caller's dict unchanged.
    from convnet.layers import batchnorm_backward, batchnorm_forward

    r = np.random.default_rng(7)
    param = {"mode": "train", "running_mean": np.zeros(3), "running_var": np.ones(3)}
    inputs = {"x": r.standard_normal((5, 3)), "g": np.ones(3), "b": np.zeros(3)}
    res = check_layer(batchnorm_forward, batchnorm_backward, inputs, param)
    assert res.passed(1e-7)
    assert np.array_equal(param["running_mean"], np.zeros(3))


def test_check_layer_refuses_random_or_everywhere_kinked_forward():
    from convnet.layers import dropout_backward, dropout_forward

    x = np.random.default_rng(8).standard_normal((6, 5))
    # Unseeded dropout draws a new mask per call: the check must not pass vacuously.
    res = check_layer(dropout_forward, dropout_backward, {"x": x}, {"p": 0.5, "mode": "train"})
    assert res.max_error == float("inf") and "not deterministic" in res.messages[0]
    # A staircase with steps of 2.5 h is kinked (discontinuous) almost everywhere at the
    # scale of h.
    stairs = lambda a: (np.round(a / 2.5e-5) * 2.5e-5, None)
    res = check_layer(stairs, lambda d, c: d, {"x": x}, max_nudges=1)
    assert res.max_error == float("inf") and "kinks" in res.messages[-1]
