"""The numerical checks of the kit's convolutional-network exercises, run on
``convnet.cs231n``: published conv/pool outputs, gradient checks, fast versus naive layers,
the sandwich layers, ThreeLayerConvNet, spatial batch norm and group norm."""

# The kit's exercises seed and draw from NumPy's global random state; so do these tests.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

from convnet.cs231n.classifiers.cnn import ThreeLayerConvNet
from convnet.cs231n.fast_layers import (
    conv_backward_fast,
    conv_backward_im2col,
    conv_backward_strides,
    conv_forward_fast,
    conv_forward_im2col,
    conv_forward_strides,
    max_pool_backward_fast,
    max_pool_backward_im2col,
    max_pool_backward_reshape,
    max_pool_forward_fast,
    max_pool_forward_im2col,
    max_pool_forward_reshape,
)
from convnet.cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
from convnet.cs231n.layer_utils import (
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from convnet.cs231n.layers import (
    conv_backward_naive,
    conv_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from convnet.gradcheck import rel_error


def test_conv_forward_naive_expected_values():
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    correct_out = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                             [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                             [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                            [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                             [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                             [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    assert rel_error(out, correct_out) < 1e-7


def test_conv_backward_naive_gradients():
    np.random.seed(231)
    x = np.random.randn(4, 3, 5, 5)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2,)
    dout = np.random.randn(4, 2, 5, 5)
    conv_param = {"stride": 1, "pad": 1}
    dx_num = eval_numerical_gradient_array(
        lambda x: conv_forward_naive(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(
        lambda w: conv_forward_naive(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(
        lambda b: conv_forward_naive(x, w, b, conv_param)[0], b, dout)
    _, cache = conv_forward_naive(x, w, b, conv_param)
    dx, dw, db = conv_backward_naive(dout, cache)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


def test_max_pool_forward_naive_expected_values():
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = max_pool_forward_naive(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    correct_out = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                             [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                             [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                            [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                             [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                             [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    assert rel_error(out, correct_out) < 1e-7


def test_max_pool_backward_naive_gradients():
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 8)
    dout = np.random.randn(3, 2, 4, 4)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    dx_num = eval_numerical_gradient_array(
        lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)
    _, cache = max_pool_forward_naive(x, pool_param)
    assert rel_error(max_pool_backward_naive(dout, cache), dx_num) < 1e-10


@pytest.fixture(scope="module")
def naive_conv_problem():
    """The kit's fast-versus-naive problem with 4 images instead of 100 (the naive
    loops are slow); the naive results are computed once."""
    np.random.seed(231)
    x = np.random.randn(4, 3, 31, 31)
    w = np.random.randn(25, 3, 3, 3)
    b = np.random.randn(25,)
    dout = np.random.randn(4, 25, 16, 16)
    conv_param = {"stride": 2, "pad": 1}
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    return (x, w, b, dout, conv_param), out_naive, conv_backward_naive(dout, cache_naive)


@pytest.mark.parametrize("fwd,bwd", [
    (conv_forward_fast, conv_backward_fast),
    (conv_forward_im2col, conv_backward_im2col),
    (conv_forward_strides, conv_backward_strides),
])
def test_fast_conv_matches_naive(fwd, bwd, naive_conv_problem):
    (x, w, b, dout, conv_param), out_naive, grads_naive = naive_conv_problem
    out_fast, cache_fast = fwd(x, w, b, conv_param)
    assert rel_error(out_naive, out_fast) < 1e-9
    for a, f in zip(grads_naive, bwd(dout, cache_fast), strict=True):
        assert rel_error(a, f) < 1e-9


def test_fast_conv_backward_accepts_any_conv_cache():
    np.random.seed(0)
    x, w, b = np.random.randn(2, 3, 6, 6), np.random.randn(4, 3, 3, 3), np.random.randn(4)
    dout = np.random.randn(2, 4, 6, 6)
    _, cache = conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    ref = conv_backward_naive(dout, cache)
    for r, f in zip(ref, conv_backward_fast(dout, cache), strict=True):
        assert rel_error(r, f) < 1e-12


@pytest.mark.parametrize("fwd,bwd", [
    (max_pool_forward_fast, max_pool_backward_fast),
    (max_pool_forward_reshape, max_pool_backward_reshape),
    (max_pool_forward_im2col, max_pool_backward_im2col),
])
def test_fast_pool_matches_naive(fwd, bwd):
    np.random.seed(231)
    x = np.random.randn(20, 3, 32, 32)
    dout = np.random.randn(20, 3, 16, 16)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
    out_fast, cache_fast = fwd(x, pool_param)
    assert rel_error(out_naive, out_fast) < 1e-12
    assert rel_error(max_pool_backward_naive(dout, cache_naive), bwd(dout, cache_fast)) < 1e-12


def test_overlapping_pool_fast_and_im2col_match_naive():
    np.random.seed(1)
    x = np.random.randn(2, 3, 9, 9)
    pool_param = {"pool_height": 3, "pool_width": 3, "stride": 2}
    ref, _ = max_pool_forward_naive(x, pool_param)
    for fwd in (max_pool_forward_fast, max_pool_forward_im2col):
        assert rel_error(ref, fwd(x, pool_param)[0]) < 1e-12
    with pytest.raises(ValueError, match="max_pool_forward_reshape"):
        max_pool_forward_reshape(x, pool_param)


def test_conv_relu_pool_gradients():
    np.random.seed(231)
    x = np.random.randn(2, 3, 16, 16)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3,)
    dout = np.random.randn(2, 3, 8, 8)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    _, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    dx, dw, db = conv_relu_pool_backward(dout, cache)

    def f(x=x, w=w, b=b):
        return conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0]

    assert rel_error(dx, eval_numerical_gradient_array(lambda x: f(x=x), x, dout)) < 1e-7
    assert rel_error(dw, eval_numerical_gradient_array(lambda w: f(w=w), w, dout)) < 1e-7
    assert rel_error(db, eval_numerical_gradient_array(lambda b: f(b=b), b, dout)) < 1e-7


def test_conv_relu_gradients():
    np.random.seed(231)
    x = np.random.randn(2, 3, 8, 8)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3,)
    dout = np.random.randn(2, 3, 8, 8)
    conv_param = {"stride": 1, "pad": 1}
    _, cache = conv_relu_forward(x, w, b, conv_param)
    dx, dw, db = conv_relu_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(
        lambda x: conv_relu_forward(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(
        lambda w: conv_relu_forward(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(
        lambda b: conv_relu_forward(x, w, b, conv_param)[0], b, dout)
    assert max(rel_error(dx, dx_num), rel_error(dw, dw_num), rel_error(db, db_num)) < 1e-7


def test_conv_bn_relu_gradients(grad_close):
    np.random.seed(231)
    x = np.random.randn(2, 3, 6, 6)
    w = np.random.randn(4, 3, 3, 3)
    b = np.random.randn(4)
    gamma, beta = np.random.randn(4), np.random.randn(4)
    dout = np.random.randn(2, 4, 6, 6)
    conv_param = {"stride": 1, "pad": 1}
    inputs = [x, w, b, gamma, beta]
    _, cache = conv_bn_relu_forward(*inputs, conv_param, {"mode": "train"})
    analytic = conv_bn_relu_backward(dout, cache)
    assert np.abs(analytic[2]).max() < 1e-10  # the bias is cancelled by batch norm
    for k in (0, 1, 3, 4):
        def f(_, k=k):
            return conv_bn_relu_forward(*inputs, conv_param, {"mode": "train"})[0]
        grad_close(eval_numerical_gradient_array(f, inputs[k], dout), analytic[k], 1e-6)


def test_three_layer_convnet_initial_loss_and_params():
    np.random.seed(231)
    model = ThreeLayerConvNet()
    assert sorted(model.params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert model.params["W1"].shape == (32, 3, 7, 7)
    assert model.params["W2"].shape == (32 * 16 * 16, 100)
    assert model.params["W3"].shape == (100, 10)
    assert model.params["W1"].dtype == np.float32
    N = 50
    X = np.random.randn(N, 3, 32, 32)
    y = np.random.randint(10, size=N)
    loss, _ = model.loss(X, y)
    assert abs(loss - np.log(10)) < 0.01
    model.reg = 0.5
    loss_reg, _ = model.loss(X, y)
    assert loss_reg > loss


def test_three_layer_convnet_gradients(grad_close):
    np.random.seed(231)
    num_inputs, input_dim, num_classes = 2, (3, 16, 16), 10
    X = np.random.randn(num_inputs, *input_dim)
    y = np.random.randint(num_classes, size=num_inputs)
    model = ThreeLayerConvNet(num_filters=3, filter_size=3, input_dim=input_dim, hidden_dim=7,
                              dtype=np.float64, reg=0.1)
    loss, grads = model.loss(X, y)
    for name in sorted(model.params):
        grad_num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name],
                                           verbose=False, h=1e-6)
        grad_close(grad_num, grads[name], 1e-5)


def test_spatial_batchnorm_forward_statistics():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 4 * np.random.randn(N, C, H, W) + 10
    out, _ = spatial_batchnorm_forward(x, np.ones(C), np.zeros(C), {"mode": "train"})
    assert np.allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-7)
    assert np.allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)
    # the kit's ConvolutionalNetworks exercise passes integer gamma and beta
    gamma, beta = np.asarray([3, 4, 5]), np.asarray([6, 7, 8])
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert np.allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-6)
    assert np.allclose(out.std(axis=(0, 2, 3)), gamma, atol=1e-3)


def test_spatial_batchnorm_test_time():
    np.random.seed(231)
    N, C, H, W = 10, 4, 11, 12
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(C), np.zeros(C)
    for _ in range(50):
        x = 2.3 * np.random.randn(N, C, H, W) + 13
        spatial_batchnorm_forward(x, gamma, beta, bn_param)
    bn_param["mode"] = "test"
    x = 2.3 * np.random.randn(N, C, H, W) + 13
    a_norm, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    assert np.all(np.abs(a_norm.mean(axis=(0, 2, 3))) < 0.1)
    assert np.all(np.abs(a_norm.std(axis=(0, 2, 3)) - 1) < 0.1)


def test_spatial_batchnorm_backward_gradients():
    np.random.seed(231)
    N, C, H, W = 2, 3, 4, 5
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma = np.random.randn(C)
    beta = np.random.randn(C)
    dout = np.random.randn(N, C, H, W)
    bn_param = {"mode": "train"}
    dx_num = eval_numerical_gradient_array(
        lambda x: spatial_batchnorm_forward(x, gamma, beta, bn_param)[0], x, dout)
    da_num = eval_numerical_gradient_array(
        lambda a: spatial_batchnorm_forward(x, a, beta, bn_param)[0], gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(
        lambda b: spatial_batchnorm_forward(x, gamma, b, bn_param)[0], beta.copy(), dout)
    _, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert rel_error(dx_num, dx) < 1e-6
    assert rel_error(da_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10


def test_spatial_groupnorm_forward_statistics():
    np.random.seed(231)
    N, C, H, W = 2, 6, 4, 5
    G = 2
    x = 4 * np.random.randn(N, C, H, W) + 10
    gamma = np.ones((1, C, 1, 1))
    beta = np.zeros((1, C, 1, 1))
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {"mode": "train"})
    out_g = out.reshape((N * G, -1))
    assert np.abs(x.reshape((N * G, -1)).mean(axis=1)).min() > 5
    assert np.allclose(out_g.mean(axis=1), 0, atol=1e-7)
    assert np.allclose(out_g.std(axis=1), 1, atol=1e-4)


def test_spatial_groupnorm_backward_gradients():
    np.random.seed(231)
    N, C, H, W = 2, 6, 4, 5
    G = 2
    x = 5 * np.random.randn(N, C, H, W) + 12
    gamma = np.random.randn(1, C, 1, 1)
    beta = np.random.randn(1, C, 1, 1)
    dout = np.random.randn(N, C, H, W)
    gn_param = {}
    dx_num = eval_numerical_gradient_array(
        lambda x: spatial_groupnorm_forward(x, gamma, beta, G, gn_param)[0], x, dout)
    da_num = eval_numerical_gradient_array(
        lambda a: spatial_groupnorm_forward(x, a, beta, G, gn_param)[0], gamma.copy(), dout)
    db_num = eval_numerical_gradient_array(
        lambda b: spatial_groupnorm_forward(x, gamma, b, G, gn_param)[0], beta.copy(), dout)
    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == (1, C, 1, 1)
    assert rel_error(dx_num, dx) < 1e-6
    assert rel_error(da_num, dgamma) < 1e-10
    assert rel_error(db_num, dbeta) < 1e-10
