"""Layer norm, group norm and the staged batch-norm backward: float64 gradient checks
(max relative error < 1e-7), independent NumPy references and input validation."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.errors import LayerInputError
from convnet.gradcheck import check_layer, eval_numerical_gradient_array, rel_error
from convnet.layers.batchnorm import batchnorm_backward, batchnorm_forward
from convnet.layers.batchnorm_staged import batchnorm_backward_staged
from convnet.layers.groupnorm import spatial_groupnorm_backward, spatial_groupnorm_forward
from convnet.layers.layernorm import layernorm_backward, layernorm_forward

TOL = 1e-7


def _numeric_grads(fwd, inputs, dout):
    """Centred differences of <fwd(*inputs)[0], dout> for every input (the inputs are
    perturbed in place and restored)."""
    grads = []
    for k in range(len(inputs)):
        def f(_, k=k):
            return fwd(*inputs)[0]

        grads.append(eval_numerical_gradient_array(f, inputs[k], dout))
    return grads


def test_layernorm_matches_numpy_reference(rng):
    x = rng.standard_normal((6, 9)) * 3 + 7
    gamma, beta = rng.standard_normal(9), rng.standard_normal(9)
    out, _ = layernorm_forward(x, gamma, beta, {"eps": 1e-5})
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    assert rel_error(out, gamma * (x - mu) / np.sqrt(var + 1e-5) + beta) < 1e-12


def test_layernorm_gradients(rng):
    x = rng.standard_normal((4, 5)) * 5 + 12
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    _, cache = layernorm_forward(x, gamma, beta, {})
    analytic = layernorm_backward(dout, cache)
    numeric = _numeric_grads(lambda a, g, b: layernorm_forward(a, g, b, {}), [x, gamma, beta],
                             dout)
    for a, n in zip(analytic, numeric, strict=True):
        assert rel_error(a, n) < TOL


def test_layernorm_keeps_float32_and_is_mode_free(rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    g, b = np.ones(8, np.float32), np.zeros(8, np.float32)
    out, cache = layernorm_forward(x, g, b, {"mode": "test"})
    assert out.dtype == np.float32
    assert np.allclose(out.mean(axis=1), 0, atol=1e-5)
    dx, dg, db = layernorm_backward(np.ones_like(out), cache)
    assert dx.dtype == dg.dtype == db.dtype == np.float32


@pytest.mark.parametrize("G", [1, 2, 3, 6])
def test_groupnorm_matches_numpy_reference(rng, G):
    N, C, H, W = 2, 6, 3, 4
    x = rng.standard_normal((N, C, H, W)) * 4 + 10
    gamma = rng.standard_normal((1, C, 1, 1))
    beta = rng.standard_normal((1, C, 1, 1))
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-5})
    xg = x.reshape(N, G, -1)
    ref = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + 1e-5)
    assert rel_error(out, ref.reshape(x.shape) * gamma + beta) < 1e-12


@pytest.mark.parametrize("shape", [(1, 6, 1, 1), (6,)])
def test_groupnorm_gradients(rng, shape):
    N, C, H, W, G = 2, 6, 4, 5, 2
    x = rng.standard_normal((N, C, H, W)) * 5 + 12
    gamma, beta = rng.standard_normal(shape), rng.standard_normal(shape)
    dout = rng.standard_normal((N, C, H, W))

    def fwd(a, g, b):
        return spatial_groupnorm_forward(a, g, b, G, {})

    _, cache = fwd(x, gamma, beta)
    analytic = spatial_groupnorm_backward(dout, cache)
    assert analytic[1].shape == analytic[2].shape == shape
    numeric = _numeric_grads(fwd, [x, gamma, beta], dout)
    for a, n in zip(analytic, numeric, strict=True):
        assert rel_error(a, n) < TOL


def test_groupnorm_check_layer(rng):
    x = rng.standard_normal((2, 4, 3, 3))
    res = check_layer(
        lambda a, g, b: spatial_groupnorm_forward(a, g, b, 2, {}),
        spatial_groupnorm_backward,
        {"x": x, "gamma": rng.standard_normal(4), "beta": rng.standard_normal(4)},
    )
    assert res.passed(1e-6), res.errors


@pytest.mark.parametrize("mode", ["train", "test"])
def test_staged_batchnorm_backward_equals_closed_form_and_numeric(rng, mode):
    x = rng.standard_normal((4, 5)) * 5 + 12
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    param = {"mode": mode, "running_mean": rng.standard_normal(5),
             "running_var": rng.uniform(0.5, 2, 5)}
    _, cache = batchnorm_forward(x, gamma, beta, dict(param))
    staged = batchnorm_backward_staged(dout, cache)
    closed = batchnorm_backward(dout, cache)
    numeric = _numeric_grads(lambda a, g, b: batchnorm_forward(a, g, b, dict(param)),
                             [x, gamma, beta], dout)
    for s, c, n in zip(staged, closed, numeric, strict=True):
        assert rel_error(s, c) < 1e-10
        assert rel_error(s, n) < TOL


def test_bad_inputs_name_the_layer(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    with pytest.raises(LayerInputError, match="spatial_groupnorm_forward: G must be"):
        spatial_groupnorm_forward(x, np.ones(6), np.zeros(6), 4, {})
    with pytest.raises(LayerInputError, match=r"gamma must have shape \(C,\)"):
        spatial_groupnorm_forward(x, np.ones(5), np.zeros(5), 2, {})
    with pytest.raises(LayerInputError, match="layernorm_forward: x must be 2-D"):
        layernorm_forward(x, np.ones(6), np.zeros(6), {})
    with pytest.raises(LayerInputError, match="floating-point"):
        layernorm_forward(np.ones((2, 3), dtype=int), np.ones(3), np.zeros(3), {})
    with pytest.raises(LayerInputError, match="at least 2 values"):
        layernorm_forward(np.ones((2, 1)), np.ones(1), np.zeros(1), {})
    _, cache = layernorm_forward(np.ones((2, 3)) + np.arange(3), np.ones(3), np.zeros(3), {})
    with pytest.raises(LayerInputError, match="layernorm_backward: dout"):
        layernorm_backward(np.ones((3, 3)), cache)
