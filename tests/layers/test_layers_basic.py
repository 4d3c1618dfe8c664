"""Non-convolution layers: numerical gradients (float64, rel. error < 1e-7), references,
dtype preservation, train/test behaviour and input validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convnet.errors import ConvnetError
from convnet.gradcheck import check_layer, rel_error
from convnet.layers import (
    affine_backward,
    affine_forward,
    avg_pool_backward,
    avg_pool_forward,
    batchnorm_backward,
    batchnorm_forward,
    concat_backward,
    concat_forward,
    dropout_backward,
    dropout_forward,
    flatten_backward,
    flatten_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    reshape_backward,
    reshape_forward,
    sigmoid_backward,
    sigmoid_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    tanh_backward,
    tanh_forward,
)
from convnet.layers._geometry import out_size

TOL = 1e-7


def _randn(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    r = np.random.default_rng(seed)
    return [r.standard_normal(s) for s in shapes]


def _concat3(a, b, c):
    return concat_forward([a, b, c], axis=1)


# name -> (forward, backward, inputs, param). Every backward of this module's layers.
def _cases() -> dict[str, tuple]:
    x4, = _randn(1, (2, 3, 5, 4))
    x2, = _randn(2, (5, 6))
    xa, w, b = _randn(3, (3, 2, 2, 3), (12, 4), (4,))
    g2, b2 = _randn(4, (6,), (6,))
    g4, b4 = _randn(5, (3,), (3,))
    ca, cb, cc = _randn(6, (2, 1, 3, 2), (2, 3, 3, 2), (2, 2, 3, 2))
    pool = {"pool_height": 3, "pool_width": 3, "stride": 2, "pad": 1}
    return {
        "affine": (affine_forward, affine_backward, {"x": xa, "w": w, "b": b}, None),
        "flatten": (flatten_forward, flatten_backward, {"x": x4}, None),
        "reshape": (reshape_forward, reshape_backward, {"x": x2}, (3, -1)),
        "relu": (relu_forward, relu_backward, {"x": x4}, None),
        "leaky_relu": (leaky_relu_forward, leaky_relu_backward, {"x": x4}, 0.2),
        "sigmoid": (sigmoid_forward, sigmoid_backward, {"x": 3 * x4}, None),
        "tanh": (tanh_forward, tanh_backward, {"x": x4}, None),
        "dropout_train": (dropout_forward, dropout_backward, {"x": x2},
                          {"p": 0.4, "mode": "train", "seed": 3}),
        "dropout_test": (dropout_forward, dropout_backward, {"x": x2}, {"p": 0.4, "mode": "test"}),
        "batchnorm_train": (batchnorm_forward, batchnorm_backward,
                            {"x": 2 * x2 + 1, "gamma": g2, "beta": b2}, {"mode": "train"}),
        "batchnorm_test": (batchnorm_forward, batchnorm_backward,
                           {"x": x2, "gamma": g2, "beta": b2},
                           {"mode": "test", "running_mean": b2 / 2, "running_var": g2 ** 2 + .5}),
        "spatial_batchnorm_train": (spatial_batchnorm_forward, spatial_batchnorm_backward,
                                    {"x": 2 * x4 - 1, "gamma": g4, "beta": b4},
                                    {"mode": "train"}),
        "concat": (_concat3, concat_backward, {"a": ca, "b": cb, "c": cc}, None),
        "global_avg_pool": (global_avg_pool_forward, global_avg_pool_backward, {"x": x4}, None),
        "avg_pool_3x3_s2_p1": (avg_pool_forward, avg_pool_backward, {"x": x4}, pool),
        "avg_pool_2x2_s1": (avg_pool_forward, avg_pool_backward, {"x": x4},
                            {"pool_height": 2, "pool_width": 2, "stride": 1}),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_backward_matches_numerical_gradient(name):
    fwd, bwd, inputs, param = CASES[name]
    res = check_layer(fwd, bwd, inputs, param, seed=0)
    assert set(res.errors) == set(inputs)
    # Batch norm's dx reaches ~1e-8 (the numerical derivative of a normalisation over a
    # small batch), still well inside 1e-7; no layer here needs 1e-6.
    assert res.max_error < TOL, (name, res.errors, res.messages)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_in_float32_out(name):
    fwd, bwd, inputs, param = CASES[name]
    args = [v.astype(np.float32) for v in inputs.values()]
    if isinstance(param, dict):
        param = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v)
                 for k, v in param.items()}
    out, cache = fwd(*args, param) if param is not None else fwd(*args)
    assert out.dtype == np.float32
    grads = bwd(np.ones_like(out), cache)
    grads = grads if isinstance(grads, (list, tuple)) else [grads]
    assert [g.dtype for g in grads] == [np.float32] * len(args)
    assert [g.shape for g in grads] == [a.shape for a in args]
    # The float32 run computes the same function as the float64 one.
    ref = fwd(*inputs.values(), param) if param is not None else fwd(*inputs.values())
    np.testing.assert_allclose(out, ref[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "call",
    [
        lambda: relu_forward(np.arange(4)),
        lambda: sigmoid_forward(np.ones(3, dtype=np.int32)),
        lambda: affine_forward(np.ones((2, 3), dtype=int), np.ones((3, 2)), np.ones(2)),
        lambda: dropout_forward(np.array([True, False]), {"p": 0.5, "mode": "train"}),
    ],
)
def test_integer_inputs_are_refused(call):
    with pytest.raises(ValueError, match="floating"):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: affine_forward(np.ones((2, 3, 2)), np.ones((5, 4)), np.ones(4)),
         r"affine_forward: x .* == 5"),
        (lambda: affine_forward(np.ones((2, 6)), np.ones((6, 4)), np.ones(3)),
         r"affine_forward: b must have shape \(M,\) == \(4,\)"),
        (lambda: affine_forward(np.ones((2, 6)), np.ones(6), np.ones(3)),
         r"affine_forward: w must be 2-D \(D, M\)"),
        (lambda: batchnorm_forward(np.ones((4, 3)), np.ones(2), np.ones(2), {"mode": "train"}),
         r"batchnorm_forward: x \(N, D\) = \(4, 3\) needs gamma and beta of shape \(D,\) == "
         r"\(3,\)"),
        (lambda: batchnorm_forward(np.ones((4, 3)), np.ones(3), np.ones(3), {"mode": "eval"}),
         r"batchnorm_forward: .*'train' or 'test'"),
        (lambda: spatial_batchnorm_forward(np.ones((4, 3)), np.ones(3), np.ones(3), {}),
         r"spatial_batchnorm_forward: x must be 4-D \(N, C, H, W\)"),
        (lambda: global_avg_pool_forward(np.ones((2, 3))),
         r"global_avg_pool_forward: x must be 4-D"),
        (lambda: avg_pool_forward(np.ones((1, 1, 2, 2)),
                                  {"pool_height": 3, "pool_width": 3, "stride": 1}),
         r"avg_pool_forward: a 3x3 window with pad 0 does not fit"),
        (lambda: avg_pool_forward(np.ones((1, 1, 6, 6)),
                                  {"pool_height": 2, "pool_width": 2, "stride": 2, "pad": 2}),
         r"avg_pool_forward: pad must be at most half the window"),
        (lambda: concat_forward([np.ones((2, 3, 4, 4)), np.ones((2, 3, 5, 4))]),
         r"concat_forward: xs\[1\] must have shape \(2, '\*', 4, 4\)"),
        (lambda: concat_forward([]), r"concat_forward: xs must be a non-empty list"),
        (lambda: reshape_forward(np.ones((2, 6)), (4, 2)), r"reshape_forward: cannot reshape"),
        (lambda: dropout_forward(np.ones(3), {"p": 1.0, "mode": "train"}),
         r"dropout_forward: dropout_param\['p'\] must be in \[0, 1\)"),
        (lambda: relu_backward(np.ones(3), relu_forward(np.ones(4))[1]),
         r"relu_backward: dout must have the forward output's shape \(4,\), got \(3,\)"),
    ],
)
def test_bad_shapes_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    # A user-caused error: the CLI prints it as one line instead of a traceback.
    assert isinstance(info.value, ConvnetError)


def test_affine_and_flatten_against_direct_formulas():
    x, w, b = _randn(10, (4, 2, 3), (6, 5), (5,))
    out, _ = affine_forward(x, w, b)
    expected = np.einsum("nd,dm->nm", x.reshape(4, 6), w) + b
    assert rel_error(out, expected) < 1e-12
    flat, cache = flatten_forward(x)
    assert flat.shape == (4, 6) and np.shares_memory(flat, x)
    assert flatten_backward(flat, cache).shape == x.shape
    r, cache = reshape_forward(flat, (3, 2))
    assert r.shape == (4, 3, 2)
    assert np.array_equal(reshape_backward(r, cache), flat)


def test_activations_against_formulas_and_stability():
    x = np.array([-1000.0, -30.0, -1.0, 0.0, 2.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        s, _ = sigmoid_forward(x)
        s32, _ = sigmoid_forward(x.astype(np.float32))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    mid = slice(1, -1)
    np.testing.assert_allclose(s[mid], 1 / (1 + np.exp(-x[mid])), rtol=1e-14)
    assert s32.dtype == np.float32 and np.all(np.isfinite(s32))
    np.testing.assert_array_equal(relu_forward(x)[0], np.where(x > 0, x, 0))
    np.testing.assert_allclose(leaky_relu_forward(x, 0.1)[0], np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(tanh_forward(x)[0], np.tanh(x))
    # ReLU's subgradient at 0 is 0.
    assert relu_backward(np.ones(1), relu_forward(np.zeros(1))[1])[0] == 0


def test_dropout_seeded_train_and_test_mode():
    x = np.ones((400, 250))
    p = 0.3
    a, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 7})
    b, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 7})
    c, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 8})
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Inverted dropout: kept units are scaled by 1/(1-p), so the mean is preserved.
    assert set(np.unique(a)) == {0.0, 1 / (1 - p)}
    assert abs((a == 0).mean() - p) < 0.01
    assert abs(a.mean() - 1) < 0.02
    t, cache = dropout_forward(x, {"p": p, "mode": "test", "seed": 7})
    assert np.array_equal(t, x)
    assert np.array_equal(dropout_backward(x, cache), x)
    # The backward mask is the forward mask.
    out, cache = dropout_forward(x, {"p": p, "mode": "train", "seed": 7})
    assert np.array_equal(dropout_backward(np.ones_like(x), cache), out)
    # A Generator draws a fresh mask each call.
    rng = np.random.default_rng(0)
    g1, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": rng})
    g2, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": rng})
    assert not np.array_equal(g1, g2)


def test_batchnorm_normalises_and_tracks_running_stats():
    r = np.random.default_rng(0)
    mean, std = np.array([5.0, -2.0, 0.5]), np.array([3.0, 0.5, 1.0])
    gamma, beta = np.ones(3), np.zeros(3)
    param: dict = {"mode": "train", "momentum": 0.9}
    for _ in range(200):
        x = mean + std * r.standard_normal((64, 3))
        out, _ = batchnorm_forward(x, gamma, beta, param)
        np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-4)
    np.testing.assert_allclose(param["running_mean"], mean, atol=0.3)
    np.testing.assert_allclose(param["running_var"], std ** 2, rtol=0.15)
    # One exact momentum step.
    p2: dict = {"mode": "train", "momentum": 0.75}
    x = mean + std * r.standard_normal((10, 3))
    batchnorm_forward(x, gamma, beta, p2)
    np.testing.assert_allclose(p2["running_mean"], 0.25 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(p2["running_var"], 0.75 + 0.25 * x.var(0), rtol=1e-12)
    # Test mode uses the running statistics and leaves them alone.
    param["mode"] = "test"
    before = param["running_mean"].copy()
    x = mean + std * r.standard_normal((5, 3))
    out, _ = batchnorm_forward(x, 2 * gamma, beta + 1, param)
    expected = 2 * (x - param["running_mean"]) / np.sqrt(param["running_var"] + 1e-5) + 1
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert np.array_equal(param["running_mean"], before)


def test_spatial_batchnorm_is_batchnorm_per_channel():
    x, g, b = _randn(11, (3, 4, 5, 2), (4,), (4,))
    out, _ = spatial_batchnorm_forward(x, g, b, {"mode": "train"})
    flat = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    ref, _ = batchnorm_forward(flat, g, b, {"mode": "train"})
    np.testing.assert_allclose(out, ref.reshape(3, 5, 2, 4).transpose(0, 3, 1, 2), rtol=1e-12)
    param: dict = {"mode": "train"}
    spatial_batchnorm_forward(x, g, b, param)
    assert param["running_mean"].shape == (4,)


def test_concat_and_global_avg_pool():
    a, b = _randn(12, (2, 3, 4, 4), (2, 5, 4, 4))
    out, cache = concat_forward([a, b])
    assert out.shape == (2, 8, 4, 4)
    da, db = concat_backward(out, cache)
    assert np.array_equal(da, a) and np.array_equal(db, b)
    g, cache = global_avg_pool_forward(a)
    np.testing.assert_allclose(g, a.reshape(2, 3, 16).sum(-1) / 16, rtol=1e-14)
    dx = global_avg_pool_backward(np.ones((2, 3)), cache)
    np.testing.assert_allclose(dx, np.full(a.shape, 1 / 16))


def test_avg_pool_against_reshape_and_padding_rule():
    x, = _randn(13, (2, 3, 6, 8))
    out, _ = avg_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    np.testing.assert_allclose(out, x.reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-13)
    # Zero padding counts in the average: with pad 1 a 3x3 window at the corner sees
    # 4 real pixels and is divided by 9.
    out, cache = avg_pool_forward(x, {"pool_height": 3, "pool_width": 3, "stride": 2, "pad": 1})
    assert out.shape == (2, 3, 3, 4)
    np.testing.assert_allclose(out[:, :, 0, 0], x[:, :, :2, :2].sum(axis=(2, 3)) / 9)
    np.testing.assert_allclose(out[:, :, 1, 1], x[:, :, 1:4, 1:4].mean(axis=(2, 3)))
    # Overlapping windows: the gradient of sum(out) counts how many windows see a pixel
    # (padded row/col 2 is shared by the windows starting at 0 and 2; 3 is not).
    dx = avg_pool_backward(np.ones(out.shape), cache)
    assert dx[0, 0, 1, 1] == pytest.approx(4 / 9) and dx[0, 0, 2, 2] == pytest.approx(1 / 9)
    assert dx[0, 0, 1, 2] == pytest.approx(2 / 9)


@settings(max_examples=40, deadline=None)
@given(
    N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
    ph=st.integers(1, 4), pw=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2),
    seed=st.integers(0, 2 ** 16),
)
def test_avg_pool_random_geometry_against_loops_and_adjoint(N, C, H, W, ph, pw, s, p, seed):
    assume(2 * p <= min(ph, pw) and H + 2 * p >= ph and W + 2 * p >= pw)
    r = np.random.default_rng(seed)
    x = r.standard_normal((N, C, H, W))
    param = {"pool_height": ph, "pool_width": pw, "stride": s, "pad": p}
    out, cache = avg_pool_forward(x, param)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = out_size(H, ph, s, p), out_size(W, pw, s, p)
    ref = np.array([[xp[:, :, i * s:i * s + ph, j * s:j * s + pw].sum(axis=(2, 3)) / (ph * pw)
                     for j in range(Wo)] for i in range(Ho)]).transpose(2, 3, 0, 1)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)
    # Average pooling is linear, so its backward is its adjoint: <P x, y> == <x, P^T y>.
    y = r.standard_normal(out.shape)
    lhs, rhs = np.sum(out * y), np.sum(x * avg_pool_backward(y, cache))
    assert abs(lhs - rhs) <= 1e-12 * (1 + abs(lhs))
