"""Transposed convolution: the adjoint of convolution, its output size, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convnet.gradcheck import check_layer, rel_error
from convnet.layers import (
    conv_forward_naive,
    conv_transpose_backward,
    conv_transpose_forward,
)


def tp(stride=1, pad=0, output_padding=0, dilation=1):
    return {"stride": stride, "pad": pad, "output_padding": output_padding, "dilation": dilation}


def out_len(n, k, s, p, op, d=1):
    return (n - 1) * s - 2 * p + d * (k - 1) + 1 + op


@st.composite
def transpose_case(draw):
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    HH, WW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    op = draw(st.integers(0, s - 1))
    H, W = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    # Padding may not eat the whole output.
    pmax = min(2, (out_len(H, HH, s, 0, op, d) - 1) // 2, (out_len(W, WW, s, 0, op, d) - 1) // 2)
    p = draw(st.integers(0, max(0, pmax)))
    N, F, C = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, F, H, W, C, HH, WW), tp(s, p, op, d), draw(st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(transpose_case())
def test_adjoint_of_convolution(case):
    # <conv(z), x> == <z, convT(x)> (bias removed): convT is conv's transpose, so the naive
    # loops (an independent implementation) pin it down completely.
    (N, F, H, W, C, HH, WW), param, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, F, H, W))
    w = rng.standard_normal((F, C, HH, WW))
    b = rng.standard_normal(C)
    out, _ = conv_transpose_forward(x, w, b, param)
    s, p, op, d = param["stride"], param["pad"], param["output_padding"], param["dilation"]
    assert out.shape == (N, C, out_len(H, HH, s, p, op, d), out_len(W, WW, s, p, op, d))
    z = rng.standard_normal(out.shape)
    conv_z, _ = conv_forward_naive(z, w, np.zeros(F), {"stride": s, "pad": p, "dilation": d})
    assert conv_z.shape == x.shape  # the conv maps the transposed conv's output size back
    lhs = np.sum(conv_z * x)
    rhs = np.sum(z * (out - b[None, :, None, None]))
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs))


def test_known_values():
    # One input pixel paints the kernel at stride 2; overlapping paintings add up.
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 0], x[0, 0, 1, 1] = 1.0, 2.0
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    out, _ = conv_transpose_forward(x, w, np.array([0.5]), tp(2, 0, 0))
    ref = np.zeros((5, 5))
    ref[0:3, 0:3] += w[0, 0]
    ref[2:5, 2:5] += 2 * w[0, 0]
    np.testing.assert_allclose(out[0, 0], ref + 0.5)
    # pad crops the border; output_padding adds a last row/column that gets only the bias.
    out, _ = conv_transpose_forward(x, w, np.array([0.5]), tp(2, 1, 1))
    np.testing.assert_allclose(out[0, 0, :3, :3], ref[1:4, 1:4] + 0.5)
    np.testing.assert_allclose(out[0, 0, 3, :3], ref[4, 1:4] + 0.5)
    assert out.shape == (1, 1, 4, 4)


@pytest.mark.parametrize(
    "shape, param",
    [
        ((2, 3, 3, 4, 2, 3, 3), tp(2, 1, 1)),
        ((1, 2, 4, 3, 3, 4, 4), tp(2, 1, 0)),  # the autoencoder's 4x4 stride-2 upsampling
        ((2, 2, 3, 3, 2, 2, 3), tp(3, 0, 2, 2)),
        ((2, 3, 4, 5, 2, 3, 3), tp(1, 1, 0)),  # stride 1, few channels: the direct kernels
    ],
)
def test_numerical_gradients(shape, param):
    # Bilinear in (x, w): no kinks, float64 centred differences agree to ~1e-10.
    N, F, H, W, C, HH, WW = shape
    rng = np.random.default_rng(0)
    inputs = {
        "x": rng.standard_normal((N, F, H, W)),
        "w": rng.standard_normal((F, C, HH, WW)),
        "b": rng.standard_normal(C),
    }
    res = check_layer(conv_transpose_forward, conv_transpose_backward, inputs, param)
    assert res.max_error < 1e-7, res.errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    out, cache = conv_transpose_forward(x, w, b, tp(2, 1, 1))
    assert out.dtype == dtype and out.shape == (2, 2, 8, 8)
    for g in conv_transpose_backward(np.ones_like(out), cache):
        assert g.dtype == dtype
    if dtype == np.float32:
        ref, _ = conv_transpose_forward(*(a.astype(np.float64) for a in (x, w, b)), tp(2, 1, 1))
        assert rel_error(out, ref) < 1e-3


def test_large_input_chunks_match_small_calls():
    # Big enough for the parallel kernels and several chunks; compare with per-image calls.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 16, 40, 40)).astype(np.float32)
    w = rng.standard_normal((16, 8, 4, 4)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    out, cache = conv_transpose_forward(x, w, b, tp(2, 1))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, dw, db = conv_transpose_backward(dout, cache)
    dw_sum = np.zeros_like(dw)
    for n in range(3):
        o, c = conv_transpose_forward(x[n : n + 1].astype(np.float64), w.astype(np.float64),
                                      b.astype(np.float64), tp(2, 1))
        np.testing.assert_allclose(out[n : n + 1], o, rtol=1e-4, atol=1e-3)
        gx, gw, _ = conv_transpose_backward(dout[n : n + 1].astype(np.float64), c)
        np.testing.assert_allclose(dx[n : n + 1], gx, rtol=1e-4, atol=1e-3)
        dw_sum += gw
    np.testing.assert_allclose(dw, dw_sum, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)), rtol=1e-4)


def test_bad_inputs_raise_clear_errors():
    x, w, b = np.zeros((2, 3, 4, 4)), np.zeros((3, 2, 3, 3)), np.zeros(2)
    name = "conv_transpose_forward"
    cases = [
        ((x[:, :2], w, b, tp()), r"x must be 4-D \(N, F, H, W\) with F == w.shape\[0\] == 3"),
        ((x, w[0], b, tp()), r"w must be 4-D \(F, C, HH, WW\)"),
        ((x, w, np.zeros(3), tp()), r"b must have shape \(C,\) == \(2,\)"),
        ((x, w, b, tp(2, 0, 2)), r"output_padding'\] must be < stride == 2"),
        ((x, w, b, tp(1, 5)), "output size would be"),
        ((x, w, b, tp(stride=0)), r"stride'\] must be >= 1"),
        ((x.astype(np.int64), w, b, tp()), "x must be a floating-point array"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=name + ".*" + msg):
            conv_transpose_forward(*args)
    out, cache = conv_transpose_forward(x, w, b, tp(2, 1, 1))
    with pytest.raises(ValueError, match=r"conv_transpose_backward.*\(2, 2, 8, 8\)"):
        conv_transpose_backward(out[:, :1], cache)
    with pytest.raises(ValueError, match="cache must come from the 'conv_transpose'"):
        conv_transpose_backward(out, ("naive", x, w, b, {}))


@pytest.mark.tf
def test_matches_tensorflow():
    # tf.nn.conv2d_transpose takes the weight of the conv it transposes, (HH, WW, C, F) in
    # NHWC terms: our (F, C, HH, WW) convention must be the same operator.
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(2)
    for s, op in [(1, 0), (2, 0), (2, 1)]:
        out, _ = conv_transpose_forward(x, w, b, tp(s, 0, op))
        ref = tf.nn.conv2d_transpose(
            tf.constant(x.transpose(0, 2, 3, 1)),
            tf.constant(w.transpose(2, 3, 1, 0)),
            output_shape=(2, out.shape[2], out.shape[3], 2),
            strides=s,
            padding="VALID",
        ).numpy().transpose(0, 3, 1, 2)
        np.testing.assert_allclose(out, ref + b[None, :, None, None], rtol=1e-9, atol=1e-12)
