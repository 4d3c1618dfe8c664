"""The numerical checks of the kit's batch-normalisation and dropout exercises, run on
``convnet.cs231n``: train/test-time statistics, gradient checks, the two batch-norm
backward passes, layer norm, keep-probability dropout with fixed seeds."""

# The kit's exercises seed and draw from NumPy's global random state; so do these tests.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

from convnet.cs231n.classifiers.fc_net import FullyConnectedNet
from convnet.cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from convnet.cs231n.layers import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
)
from convnet.errors import LayerInputError
from convnet.gradcheck import rel_error


def _two_layer_activations(N=200):
    np.random.seed(231)
    N, D1, D2, D3 = N, 50, 60, 3
    X = np.random.randn(N, D1)
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    return np.maximum(0, X.dot(W1)).dot(W2), (D1, W1, W2)


def test_batchnorm_train_time_statistics():
    a, _ = _two_layer_activations()
    assert np.abs(a.mean(axis=0)).min() > 1  # far from standardised before
    a_norm, _ = batchnorm_forward(a, np.ones(3), np.zeros(3), {"mode": "train"})
    assert np.allclose(a_norm.mean(axis=0), 0, atol=1e-7)
    assert np.allclose(a_norm.std(axis=0), 1, atol=1e-4)
    gamma, beta = np.asarray([1.0, 2.0, 3.0]), np.asarray([11.0, 12.0, 13.0])
    a_norm, _ = batchnorm_forward(a, gamma, beta, {"mode": "train"})
    assert np.allclose(a_norm.mean(axis=0), beta, atol=1e-6)
    assert np.allclose(a_norm.std(axis=0), gamma, atol=1e-4)


def test_batchnorm_integer_gamma_beta_are_accepted():
    a, _ = _two_layer_activations()
    a_norm, _ = batchnorm_forward(a, np.asarray([1, 2, 3]), np.asarray([11, 12, 13]),
                                  {"mode": "train"})
    assert a_norm.dtype == np.float64
    assert np.allclose(a_norm.mean(axis=0), [11, 12, 13], atol=1e-6)


def test_batchnorm_test_time_uses_running_statistics():
    np.random.seed(231)
    N, D1, D2, D3 = 200, 50, 60, 3
    W1 = np.random.randn(D1, D2)
    W2 = np.random.randn(D2, D3)
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(D3), np.zeros(D3)
    for _ in range(50):
        X = np.random.randn(N, D1)
        batchnorm_forward(np.maximum(0, X.dot(W1)).dot(W2), gamma, beta, bn_param)
    bn_param["mode"] = "test"
    X = np.random.randn(N, D1)
    a_norm, _ = batchnorm_forward(np.maximum(0, X.dot(W1)).dot(W2), gamma, beta, bn_param)
    # running averages of 50 batches: close to, not exactly, standardised
    assert np.all(np.abs(a_norm.mean(axis=0)) < 0.2)
    assert np.all(np.abs(a_norm.std(axis=0) - 1) < 0.2)


def test_batchnorm_backward_gradients():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    bn_param = {"mode": "train"}
    dx_num = eval_numerical_gradient_array(
        lambda x: batchnorm_forward(x, gamma, beta, bn_param)[0], x, dout)
    da_num = eval_numerical_gradient_array(
        lambda a: batchnorm_forward(x, a, beta, bn_param)[0], gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(
        lambda b: batchnorm_forward(x, gamma, b, bn_param)[0], beta.copy(), dout)
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(da_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10


def test_batchnorm_backward_alt_agrees():
    np.random.seed(231)
    N, D = 100, 500
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
    dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
    # two different derivations of the same gradient
    assert rel_error(dx1, dx2) < 1e-10
    assert rel_error(dgamma1, dgamma2) < 1e-12
    assert rel_error(dbeta1, dbeta2) < 1e-12


def test_layernorm_forward_statistics():
    a, _ = _two_layer_activations(N=4)
    a_norm, _ = layernorm_forward(a, np.ones(3), np.zeros(3), {})
    assert np.allclose(a_norm.mean(axis=1), 0, atol=1e-7)
    assert np.allclose(a_norm.std(axis=1), 1, atol=1e-4)
    a_norm, _ = layernorm_forward(a, np.asarray([3.0, 3.0, 3.0]), np.asarray([5.0, 5.0, 5.0]),
                                  {})
    assert np.allclose(a_norm.mean(axis=1), 5, atol=1e-6)
    assert np.allclose(a_norm.std(axis=1), 3, atol=1e-3)


def test_layernorm_backward_gradients():
    np.random.seed(231)
    N, D = 4, 5
    x = 5 * np.random.randn(N, D) + 12
    gamma = np.random.randn(D)
    beta = np.random.randn(D)
    dout = np.random.randn(N, D)
    ln_param = {}
    dx_num = eval_numerical_gradient_array(
        lambda x: layernorm_forward(x, gamma, beta, ln_param)[0], x, dout)
    da_num = eval_numerical_gradient_array(
        lambda a: layernorm_forward(x, a, beta, ln_param)[0], gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(
        lambda b: layernorm_forward(x, gamma, b, ln_param)[0], beta.copy(), dout)
    _, cache = layernorm_forward(x, gamma, beta, ln_param)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-8
    assert rel_error(da_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_p_is_the_keep_probability(p):
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    out, _ = dropout_forward(x, {"mode": "train", "p": p})
    out_test, _ = dropout_forward(x, {"mode": "test", "p": p})
    # inverted dropout: the expected output equals the input
    assert abs(out.mean() - x.mean()) < 0.05 * x.mean()
    assert out_test.mean() == x.mean()
    assert abs((out == 0).mean() - (1 - p)) < 0.01
    assert (out_test == 0).mean() == 0
    assert np.allclose(out[out != 0], x[out != 0] / p)


def test_dropout_backward_with_fixed_seed():
    np.random.seed(231)
    x = np.random.randn(10, 10) + 10
    dout = np.random.randn(*x.shape)
    dropout_param = {"mode": "train", "p": 0.2, "seed": 123}
    out, cache = dropout_forward(x, dropout_param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda xx: dropout_forward(xx, dropout_param)[0],
                                           x, dout)
    assert rel_error(dx, dx_num) < 1e-10
    assert 0.6 < (out == 0).mean() < 0.95  # keep 20%


def test_dropout_masks_follow_numpy_global_seed():
    x = np.ones((20, 20))
    np.random.seed(5)
    a, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    b, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    np.random.seed(5)
    c, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert np.array_equal(a, c) and not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.0, 1.5, -0.1])
def test_dropout_rejects_invalid_keep_probability(p):
    with pytest.raises(LayerInputError, match="KEEPING"):
        dropout_forward(np.ones((2, 2)), {"mode": "train", "p": p})


def test_dropout_keep_one_is_identity():
    x = np.random.default_rng(0).standard_normal((5, 5))
    out, cache = dropout_forward(x, {"mode": "train", "p": 1.0})
    assert np.array_equal(out, x)
    assert np.array_equal(dropout_backward(np.ones_like(x), cache), np.ones_like(x))


@pytest.mark.parametrize("dropout", [1, 0.75, 0.5])
def test_fully_connected_net_with_dropout_gradients(dropout, grad_close):
    np.random.seed(231)
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X = np.random.randn(N, D)
    y = np.random.randint(C, size=(N,))
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2,
                              dtype=np.float64, dropout=dropout, seed=123)
    assert model.use_dropout == (dropout != 1)
    loss, grads = model.loss(X, y)
    for name in sorted(grads):
        grad_num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                           verbose=False, h=1e-5)
        grad_close(grad_num, grads[name], 1e-5)


def test_fully_connected_net_batchnorm_modes_and_running_stats():
    np.random.seed(0)
    model = FullyConnectedNet([8, 6], input_dim=5, num_classes=3, normalization="batchnorm",
                              dtype=np.float64)
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(model.params)
    assert "gamma3" not in model.params and len(model.bn_params) == 2
    X, y = np.random.randn(10, 5), np.random.randint(3, size=10)
    model.loss(X, y)
    assert model.bn_params[0]["mode"] == "train" and "running_mean" in model.bn_params[0]
    s1 = model.loss(X[:1])
    assert model.bn_params[0]["mode"] == "test" and s1.shape == (1, 3)
    with pytest.raises(ValueError, match="normalization"):
        FullyConnectedNet([4], normalization="groupnorm")
    with pytest.raises(ValueError, match="KEEPING"):
        FullyConnectedNet([4], dropout=0)
