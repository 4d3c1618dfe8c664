"""Winograd F(2x2, 3x3) conv: equal to the naive loops (float64 tight, float32 within a stated
tolerance) on awkward shapes, numerical gradients, chunking/threads, errors, dispatch rule."""

from __future__ import annotations

import re

import numpy as np
import pytest

import convnet._threads
from convnet.gradcheck import check_layer
from convnet.layers import _numba_chunks as nc
from convnet.layers import conv_winograd as cw
from convnet.layers.conv_naive import conv_backward_naive, conv_forward_naive
from convnet.layers.conv_winograd import (
    conv_backward_winograd,
    conv_forward_winograd,
    prefer_winograd,
)


def cp(pad=0, stride=1, dilation=1):
    return {"stride": stride, "pad": pad, "dilation": dilation}


def make(rng, N, C, H, W, F, dtype=np.float64, k=(3, 3)):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C) + k).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


def rel_max(a, ref):
    """Largest deviation relative to the largest reference entry (a scale-free error)."""
    return float(np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max())


# (N, C, H, W, F, pad): odd and non-square sizes (cropped tile grids), pad 0/1/2 (and 3: this
# backend has no pad limit), N=1, C=1, F=1, an output of one pixel, large C.
SHAPES = [
    (2, 3, 7, 5, 4, 1),
    (1, 1, 3, 3, 1, 0),
    (2, 2, 6, 9, 3, 2),
    (3, 5, 8, 8, 6, 0),
    (1, 3, 1, 1, 2, 1),
    (2, 1, 5, 4, 1, 2),
    (1, 64, 5, 7, 2, 1),
    (1, 2, 4, 4, 2, 3),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_float64_matches_naive(shape):
    # F(2x2, 3x3)'s transform matrices hold only 0, +-1, +-1/2 (exact in binary), so in
    # float64 the result differs from direct summation by rounding only: 1e-10 absolute on
    # O(1)..O(30) values catches any wrong index, sign or crop.
    N, C, H, W, F, pad = shape
    rng = np.random.default_rng(sum(shape))
    x, w, b = make(rng, N, C, H, W, F)
    out0, cache0 = conv_forward_naive(x, w, b, cp(pad))
    out1, cache1 = conv_forward_winograd(x, w, b, cp(pad))
    assert out1.shape == out0.shape and out1.dtype == np.float64
    np.testing.assert_allclose(out1, out0, rtol=0, atol=1e-10)
    dout = rng.standard_normal(out0.shape)
    for g1, g0 in zip(conv_backward_winograd(dout, cache1), conv_backward_naive(dout, cache0),
                      strict=True):
        assert g1.shape == g0.shape and g1.dtype == np.float64
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-10)


# float32 tolerance, relative to the largest reference entry. Direct float32 summation of the
# 9*C products already errs by ~eps*sqrt(9C) ~ 1e-7..1e-6 (eps = 6e-8). Winograd adds the
# rounding of the transforms, whose entries are bounded (|B^T| row sums 2, |A^T| 3, |G| 1.5),
# so its error is a bounded multiple of that: measured 1e-7..8e-7 here vs 1e-7..6e-7 for the
# Numba im2col backend (Winograd F(2,3) costs well under the "one digit" that larger tiles
# such as F(4,3) lose). 1e-5 leaves >10x margin and is still 1e5 below an indexing bug (O(1)).
F32_TOL = 1e-5


@pytest.mark.parametrize("shape", [(2, 3, 7, 5, 4, 1), (1, 256, 6, 6, 4, 2),
                                   (2, 32, 9, 8, 8, 0), (2, 512, 4, 4, 2, 0)])
def test_float32_close_to_float64_reference(shape):
    N, C, H, W, F, pad = shape
    rng = np.random.default_rng(sum(shape))
    x32, w32, b32 = make(rng, N, C, H, W, F, np.float32)
    # The exact answer (to float64 rounding) for the float32 inputs.
    ref_out, ref_cache = conv_forward_naive(x32.astype(np.float64), w32.astype(np.float64),
                                            b32.astype(np.float64), cp(pad))
    dout32 = rng.standard_normal(ref_out.shape).astype(np.float32)
    refs = (ref_out,) + conv_backward_naive(dout32.astype(np.float64), ref_cache)
    out, cache = conv_forward_winograd(x32, w32, b32, cp(pad))
    got = (out,) + conv_backward_winograd(dout32, cache)
    for name, g, r in zip(("out", "dx", "dw", "db"), got, refs, strict=True):
        assert g.dtype == np.float32, name
        assert rel_max(g, r) < F32_TOL, (name, rel_max(g, r))


@pytest.mark.parametrize("shape", [(2, 2, 5, 4, 3, 1), (1, 3, 4, 5, 2, 0), (1, 2, 3, 3, 2, 2)])
def test_numerical_gradients(shape):
    # Convolution is bilinear (no kinks): centred differences in float64 are accurate to
    # ~1e-10 relative; 1e-7 leaves a wide margin yet catches any wrong index or sign.
    N, C, H, W, F, pad = shape
    x, w, b = make(np.random.default_rng(0), N, C, H, W, F)
    res = check_layer(conv_forward_winograd, conv_backward_winograd,
                      {"x": x, "w": w, "b": b}, cp(pad))
    assert res.max_error < 1e-7, res.errors


def test_band_chunks_and_worker_threads_match(monkeypatch):
    # A tiny chunk budget cuts each image into bands of one tile row (whose dx scatter-adds
    # overlap: serialised by the per-image lock); 2 workers and no serial threshold exercise
    # the threaded path. The result must not depend on the chunking.
    rng = np.random.default_rng(3)
    x, w, b = make(rng, 3, 4, 11, 9, 5)
    out0, cache0 = conv_forward_naive(x, w, b, cp(1))
    dout = rng.standard_normal(out0.shape)
    grads0 = conv_backward_naive(dout, cache0)
    monkeypatch.setattr(cw, "WINOGRAD_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(nc, "PARALLEL_MIN_FLOPS", 0)
    assert len(list(nc.chunks(3, 5, 5, 16 * 5, 1, 4))) == 15
    # Only convnet's worker count matters here (BLAS runs single-threaded per chunk anyway);
    # monkeypatch restores it, whatever it was.
    monkeypatch.setattr(convnet._threads, "_num_threads", 2)
    out1, cache1 = conv_forward_winograd(x, w, b, cp(1))
    grads1 = conv_backward_winograd(dout, cache1)
    np.testing.assert_allclose(out1, out0, rtol=0, atol=1e-10)
    for g1, g0 in zip(grads1, grads0, strict=True):
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-10)


def test_tile_buffer_slices_avoid_cache_aliasing():
    # 32 x 512 float32 per slice is exactly 64 KiB: slices must not start 4 KiB-aligned apart.
    V = cw._tile_buffer("test", 32, 512, np.float32)
    assert V.shape == (16, 32, 512) and V[0].flags.c_contiguous
    assert V.strides[0] % 4096 != 0 and (V.strides[0] // 64) % 2 == 1


def test_transforms_are_adjoint():
    # <T d, v> == <d, T^* v> for the input and output transforms (what backward relies on).
    rng = np.random.default_rng(5)
    N, C, H, W, pad = 2, 3, 7, 6, 1
    TH, TW = cw._tiles(H + 2 * pad - 2, W + 2 * pad - 2)
    P = N * TH * TW
    plane = np.empty((2 * TH + 2, 2 * TW + 2))
    x = rng.standard_normal((N, C, H, W))
    # Tile buffers as the layer uses them (strided views): no extra Numba specialisations.
    V = cw._tile_buffer("test_V", C, P, np.float64)
    cw.winograd_input_transform(x, 0, N, 0, TH, pad, TW, V, plane)
    dV = cw._tile_buffer("test_dV", C, P, np.float64)
    dV[...] = rng.standard_normal((16, C, P))
    dx = np.zeros_like(x)
    cw.winograd_input_adjoint(dV, 0, N, 0, TH, pad, TW, dx, plane)
    assert np.isclose(np.sum(V * dV), np.sum(x * dx), rtol=1e-12)
    M = cw._tile_buffer("test_M", 4, P, np.float64)
    M[...] = rng.standard_normal((16, 4, P))
    out = np.empty((N, 4, H + 2 * pad - 2, W + 2 * pad - 2))
    cw.winograd_output_transform(M, np.zeros(4), 0, N, 0, TH, TW, out)
    dy = rng.standard_normal(out.shape)
    dM = cw._tile_buffer("test_dM", 4, P, np.float64)
    cw.winograd_output_adjoint(dy, 0, N, 0, TH, TW, dM)
    assert np.isclose(np.sum(out * dy), np.sum(M * dM), rtol=1e-12)


@pytest.mark.parametrize(
    "k, param, what",
    [
        ((3, 3), cp(1, stride=2), "stride 2"),
        ((5, 5), cp(1), "kernel (5, 5)"),
        ((3, 1), cp(1), "kernel (3, 1)"),
        ((3, 3), cp(1, dilation=2), "dilation 2"),
    ],
)
def test_unsupported_params_raise(k, param, what):
    x, w, b = make(np.random.default_rng(0), 1, 2, 8, 8, 2, k=k)
    with pytest.raises(ValueError, match="conv_forward_winograd: Winograd F.2x2, 3x3. supports"):
        conv_forward_winograd(x, w, b, param)
    with pytest.raises(ValueError, match=re.escape(what)):
        conv_forward_winograd(x, w, b, param)


def test_bad_inputs_raise():
    x, w, b = make(np.random.default_rng(0), 1, 2, 6, 6, 2)
    with pytest.raises(ValueError, match="conv_forward_winograd: x must be 4-D"):
        conv_forward_winograd(x[:, :1], w, b, cp(1))
    with pytest.raises(ValueError, match="float"):
        conv_forward_winograd(x.astype(np.int64), w, b, cp(1))
    out, cache = conv_forward_winograd(x, w, b, cp(1))
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        conv_backward_winograd(out[:, :, 1:], cache)
    _, naive_cache = conv_forward_naive(x, w, b, cp(1))
    with pytest.raises(ValueError, match="'winograd' forward pass"):
        conv_backward_winograd(out, naive_cache)
    assert cache[0] == "winograd"


def test_prefer_winograd_rule():
    p1 = cp(1)
    assert prefer_winograd((64, 32, 16, 16), (64, 32, 3, 3), p1)
    assert prefer_winograd((16, 64, 56, 56), (64, 64, 3, 3), p1)
    assert not prefer_winograd((100, 1, 28, 28), (32, 1, 3, 3), p1)  # C too small
    assert not prefer_winograd((64, 3, 32, 32), (32, 3, 3, 3), p1)
    assert not prefer_winograd((100, 1, 28, 28), (5, 1, 11, 11), p1)  # not 3x3
    assert not prefer_winograd((16, 64, 56, 56), (64, 64, 3, 3), cp(1, stride=2))
    assert not prefer_winograd((16, 64, 56, 56), (64, 64, 3, 3), cp(1, dilation=2))
    assert not prefer_winograd((1, 64, 8, 8), (64, 64, 3, 3), p1)  # 16 tiles: GEMMs too small
    assert prefer_winograd((8, 64, 8, 8), (64, 64, 3, 3), p1)  # 128 tiles
    assert not prefer_winograd((8, 16, 32, 32), (64, 16, 3, 3), p1)  # C = 16: break-even


def test_dispatch_picks_winograd_for_many_channel_3x3_and_matches_naive():
    """conv_forward's automatic choice: Winograd where prefer_winograd says so, and the cache
    tag routes conv_backward to the matching backward pass."""
    from convnet.layers import conv as dispatch
    from convnet.layers import conv_backward_naive, conv_forward_naive

    if "winograd" not in dispatch.SPECIALISED_BACKENDS:
        pytest.skip("Winograd needs Numba")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32, 10, 9))
    w = rng.standard_normal((16, 32, 3, 3))
    b = rng.standard_normal(16)
    p = {"stride": 1, "pad": 1}
    assert dispatch.select_conv_backend(x.shape, w.shape, p) == "winograd"
    assert dispatch.select_conv_backend(x.shape, w.shape, {"stride": 2, "pad": 1}) == "numba"
    assert dispatch.select_conv_backend((8, 3, 10, 9), (16, 3, 3, 3), p) == "numba"
    out, cache = dispatch.conv_forward(x, w, b, p)
    assert cache[0] == "winograd"
    ref, ref_cache = conv_forward_naive(x, w, b, p)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(dispatch.conv_backward(dout, cache),
                         conv_backward_naive(dout, ref_cache), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # Forcing a general backend turns the shape rule off.
    dispatch.set_conv_backend("im2col")
    try:
        assert dispatch.select_conv_backend(x.shape, w.shape, p) == "im2col"
    finally:
        dispatch.set_conv_backend(None)
