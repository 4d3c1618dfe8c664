"""Max pooling: every backend against the naive loops, numerical gradients, ceil mode, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convnet.errors import ConvnetError, LayerInputError
from convnet.gradcheck import eval_numerical_gradient_array, rel_error
from convnet.layers import (
    POOL_BACKENDS,
    max_pool_backward,
    max_pool_backward_im2col,
    max_pool_backward_naive,
    max_pool_backward_numba,
    max_pool_forward,
    max_pool_forward_im2col,
    max_pool_forward_naive,
    max_pool_forward_numba,
    set_pool_backend,
)
from convnet.layers._geometry import out_size
from convnet.layers.pool_numba import NUMBA_AVAILABLE

FAST = {
    "im2col": (max_pool_forward_im2col, max_pool_backward_im2col),
    "numba": (max_pool_forward_numba, max_pool_backward_numba),
}
ALL = {"naive": (max_pool_forward_naive, max_pool_backward_naive), **FAST}

def pp(ph, pw, s, pad=0, ceil_mode=False):
    return {"pool_height": ph, "pool_width": pw, "stride": s, "pad": pad, "ceil_mode": ceil_mode}


@st.composite
def pool_cases(draw):
    ph = draw(st.integers(1, 4))
    pw = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    pad = draw(st.integers(0, min(ph, pw) - 1))
    ceil_mode = draw(st.booleans())
    H = draw(st.integers(max(1, ph - 2 * pad), 11))
    W = draw(st.integers(max(1, pw - 2 * pad), 11))
    N = draw(st.integers(1, 2))
    C = draw(st.integers(1, 3))
    ties = draw(st.booleans())  # integer-valued inputs: many tied maxima
    seed = draw(st.integers(0, 2**32 - 1))
    return (N, C, H, W), pp(ph, pw, s, pad, ceil_mode), ties, seed


def _inputs(shape, param, ties, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    if ties:
        x = rng.integers(-2, 2, size=shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    out, _ = max_pool_forward_naive(x, param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    return x, dout


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pool_cases())
def test_fast_backends_match_naive(case):
    shape, param, ties, seed = case
    x, dout = _inputs(shape, param, ties, seed)
    out_ref, cache = max_pool_forward_naive(x, param)
    dx_ref = max_pool_backward_naive(dout, cache)
    for name, (fwd, bwd) in FAST.items():
        out, cache = fwd(x, param)
        # The maximum is exact: no tolerance. Gradients may be summed in another order
        # where windows overlap, hence a rounding-level tolerance.
        np.testing.assert_array_equal(out, out_ref, err_msg=name)
        np.testing.assert_allclose(bwd(dout, cache), dx_ref, rtol=1e-12, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize(
    "shape,param",
    [
        ((2, 3, 8, 8), pp(2, 2, 2)),  # exact tiling fast path
        ((2, 2, 9, 7), pp(3, 3, 2)),  # overlapping (AlexNet/SqueezeNet style)
        ((1, 2, 9, 9), pp(3, 3, 2, ceil_mode=True)),
        ((2, 2, 7, 8), pp(3, 2, 2, pad=1, ceil_mode=True)),
        ((1, 2, 10, 9), pp(2, 3, 3)),  # stride > window height: skipped rows
        ((1, 1, 6, 6), pp(2, 2, 1, pad=1)),
    ],
)
@pytest.mark.parametrize("backend", list(ALL))
def test_numerical_gradient(backend, shape, param):
    fwd, bwd = ALL[backend]
    rng = np.random.default_rng(1)
    # Distinct values at least 0.01 apart: a 1e-5 step never changes any window's argmax.
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01).astype(np.float64)
    out, cache = fwd(x, param)
    dout = rng.standard_normal(out.shape)
    dx = bwd(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda z: fwd(z, param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-7


@pytest.mark.parametrize("backend", list(ALL))
def test_overlapping_windows_accumulate(backend):
    fwd, bwd = ALL[backend]
    # 2x2 stride 1 on 3x3 with the maximum in the centre: all four windows pick it.
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    out, cache = fwd(x, pp(2, 2, 1))
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 5.0))
    dout = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(bwd(dout, cache), expected)


@pytest.mark.parametrize("backend", list(ALL))
def test_ties_go_to_first_maximum_in_row_major_order(backend):
    fwd, bwd = ALL[backend]
    x = np.ones((1, 1, 4, 4))  # every cell ties
    out, cache = fwd(x, pp(2, 2, 2))
    dx = bwd(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 0, 0], expected[0, 0, 0, 2] = 1.0, 2.0
    expected[0, 0, 2, 0], expected[0, 0, 2, 2] = 3.0, 4.0
    np.testing.assert_array_equal(dx, expected)
    # A tie between the top-right and bottom-left cells: top-right comes first.
    x = np.array([[[[0.0, 7.0], [7.0, 1.0]]]])
    _, cache = fwd(x, pp(2, 2, 2))
    np.testing.assert_array_equal(bwd(np.ones((1, 1, 1, 1)), cache), [[[[0, 1.0], [0, 0]]]])


@pytest.mark.parametrize("backend", list(ALL))
def test_padding_and_overhang_only_cover_real_pixels(backend):
    fwd, bwd = ALL[backend]
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: zero padding would show
    out, cache = fwd(x, pp(2, 2, 2, ceil_mode=True))
    np.testing.assert_array_equal(out[0, 0], [[-1.0, -3.0], [-7.0, -9.0]])
    dx = bwd(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 1], [0, 0, 0], [1, 0, 1]])
    out, _ = fwd(x, pp(2, 2, 2, pad=1))
    np.testing.assert_array_equal(out[0, 0], [[-1.0, -2.0], [-4.0, -5.0]])


@pytest.mark.parametrize("backend", list(ALL))
def test_minus_infinity_inputs_pick_a_real_pixel(backend):
    fwd, bwd = ALL[backend]
    x = np.full((1, 1, 3, 3), -np.inf)
    out, cache = fwd(x, pp(2, 2, 2, pad=1, ceil_mode=True))
    assert np.all(out == -np.inf)
    _, ref_cache = max_pool_forward_naive(x, pp(2, 2, 2, pad=1, ceil_mode=True))
    dout = np.arange(1.0, 1.0 + out.size).reshape(out.shape)
    np.testing.assert_array_equal(bwd(dout, cache), max_pool_backward_naive(dout, ref_cache))


def _caffe_pooled_size(size, k, s, pad):
    # Caffe's PoolingLayer::Reshape, written independently of the code under test.
    out = int(math.ceil(float(size + 2 * pad - k) / s)) + 1
    if pad and (out - 1) * s >= size + pad:
        out -= 1
    return out


def test_ceil_mode_sizes_match_caffe():
    # SqueezeNet v1.1: 3x3 stride 2 ceil-mode pools.
    assert out_size(113, 3, 2, ceil_mode=True) == 56
    assert out_size(55, 3, 2, ceil_mode=True) == 27
    assert out_size(27, 3, 2, ceil_mode=True) == 13
    assert out_size(27, 3, 2, ceil_mode=False) == 13
    assert out_size(8, 3, 2, ceil_mode=False) == 3
    assert out_size(8, 3, 2, ceil_mode=True) == 4
    for size in range(1, 30):
        for k in range(1, 5):
            for s in range(1, k + 1):  # Caffe and we agree for stride <= window
                for pad in range(k):
                    if size + 2 * pad < k:
                        continue
                    got = out_size(size, k, s, pad, ceil_mode=True)
                    assert got == _caffe_pooled_size(size, k, s, pad), (size, k, s, pad)
    x = np.random.default_rng(0).standard_normal((1, 2, 113, 113)).astype(np.float32)
    for name in ALL:
        if name != "naive":
            out, _ = ALL[name][0](x, pp(3, 3, 2, ceil_mode=True))
            assert out.shape == (1, 2, 56, 56)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("backend", list(ALL))
def test_dtype_is_kept(backend, dtype):
    fwd, bwd = ALL[backend]
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(dtype)
    out, cache = fwd(x, pp(3, 3, 2, ceil_mode=True))
    dx = bwd(np.ones(out.shape, dtype=dtype), cache)
    assert out.dtype == dtype and dx.dtype == dtype and dx.shape == x.shape
    ref, ref_cache = max_pool_forward_naive(x, pp(3, 3, 2, ceil_mode=True))
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(dx, max_pool_backward_naive(np.ones_like(ref), ref_cache))


@pytest.mark.parametrize("backend", list(ALL))
def test_non_contiguous_input(backend):
    fwd, bwd = ALL[backend]
    base = np.random.default_rng(3).standard_normal((3, 2, 9, 8))
    x = base.transpose(1, 0, 3, 2)  # (2, 3, 8, 9) view with odd strides
    ref, ref_cache = max_pool_forward_naive(np.ascontiguousarray(x), pp(2, 2, 2))
    out, cache = fwd(x, pp(2, 2, 2))
    np.testing.assert_array_equal(out, ref)
    dout = np.ones_like(ref)
    np.testing.assert_array_equal(bwd(dout, cache), max_pool_backward_naive(dout, ref_cache))


def test_dispatch_records_backend_and_set_backend():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    ref, ref_cache = max_pool_forward_naive(x, pp(2, 2, 2))
    dout = np.random.default_rng(1).standard_normal(ref.shape)
    dx_ref = max_pool_backward_naive(dout, ref_cache)
    previous = set_pool_backend("naive")
    try:
        for name in POOL_BACKENDS:
            set_pool_backend(name)
            out, cache = max_pool_forward(x, pp(2, 2, 2))
            assert cache[0] == name
            set_pool_backend("naive" if name != "naive" else "im2col")
            # Backward follows the cache, not the backend selected now.
            np.testing.assert_array_equal(max_pool_backward(dout, cache), dx_ref)
            np.testing.assert_array_equal(out, ref)
        assert set_pool_backend(None) in POOL_BACKENDS
        # The default is the fastest backend available.
        assert max_pool_forward(x, pp(2, 2, 2))[1][0] == ("numba" if NUMBA_AVAILABLE else "im2col")
    finally:
        set_pool_backend(previous)
    with pytest.raises(ValueError, match="set_pool_backend"):
        set_pool_backend("fortran")
    with pytest.raises(ValueError, match="max_pool_backward"):
        max_pool_backward(dout, ("bogus", None))


@pytest.mark.parametrize("backend", list(ALL))
@pytest.mark.parametrize(
    "x,param,match",
    [
        (np.zeros((3, 4, 4)), pp(2, 2, 2), r"4-D \(N, C, H, W\)"),
        (np.zeros((1, 1, 4, 4), dtype=np.int64), pp(2, 2, 2), "floating-point"),
        (np.zeros((1, 1, 4, 4)), {"pool_height": 2, "stride": 2}, "pool_width"),
        (np.zeros((1, 1, 4, 4)), pp(0, 2, 2), ">= 1"),
        (np.zeros((1, 1, 4, 4)), pp(2, 2, 0), ">= 1"),
        (np.zeros((1, 1, 4, 4)), pp(2, 2, 2, pad=2), "pad"),
        (np.zeros((1, 1, 4, 4)), pp(2, 2, 2.0), "int"),
        (np.zeros((1, 1, 2, 4)), pp(3, 3, 1), r"expected H \+ 2\*pad >= 3"),
    ],
)
def test_bad_input_raises(backend, x, param, match):
    fwd, _ = ALL[backend]
    with pytest.raises(ValueError, match=f"max_pool_forward_{backend}.*{match}") as info:
        fwd(x, param)
    assert isinstance(info.value, LayerInputError) and isinstance(info.value, ConvnetError)


@pytest.mark.parametrize("backend", list(ALL))
def test_bad_dout_raises(backend):
    fwd, bwd = ALL[backend]
    out, cache = fwd(np.zeros((1, 2, 4, 4)), pp(2, 2, 2))
    with pytest.raises(ValueError, match=rf"max_pool_backward_{backend}.*\(1, 2, 2, 2\)"):
        bwd(np.zeros((1, 2, 3, 2)), cache)


def test_larger_random_batch_all_backends_agree():
    # Bigger than the hypothesis cases so the parallel Numba path and the tiling path run on
    # realistic sizes, in float32 as in training.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 8, 17, 16)).astype(np.float32)
    for param in (pp(2, 2, 2), pp(3, 3, 2, ceil_mode=True), pp(3, 3, 1, pad=1)):
        ref, ref_cache = max_pool_forward_naive(x, param)
        dout = rng.standard_normal(ref.shape).astype(np.float32)
        dx_ref = max_pool_backward_naive(dout, ref_cache)
        for name, (fwd, bwd) in FAST.items():
            out, cache = fwd(x, param)
            np.testing.assert_array_equal(out, ref, err_msg=name)
            np.testing.assert_allclose(bwd(dout, cache), dx_ref, rtol=1e-6, atol=1e-6,
                                       err_msg=name)


def test_hypothesis_strategy_covers_interesting_cases():
    # Guard against a strategy that silently stops generating overlap/stride>window/ceil cases.
    seen = set()

    @settings(max_examples=150, deadline=None, database=None)
    @given(case=pool_cases())
    def collect(case):
        _, p, _, _ = case
        k = max(p["pool_height"], p["pool_width"])
        seen.add("overlap" if p["stride"] < k else "skip" if p["stride"] > k else "tile")
        if p["ceil_mode"]:
            seen.add("ceil")
        if p["pad"]:
            seen.add("pad")

    collect()
    assert {"overlap", "skip", "tile", "ceil", "pad"} <= seen


@pytest.mark.parametrize("threshold", [0, 1 << 62])
def test_numba_parallel_and_serial_paths_agree(monkeypatch, threshold):
    # Small test inputs normally take the serial path; force each path in turn.
    import convnet.layers.pool_numba as pn

    monkeypatch.setattr(pn, "PARALLEL_MIN_FORWARD", threshold)
    monkeypatch.setattr(pn, "PARALLEL_MIN_BACKWARD", threshold)
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 3, size=(3, 5, 13, 12)).astype(np.float64)  # many ties
    for param in (pp(2, 2, 2), pp(3, 3, 2, pad=1, ceil_mode=True), pp(2, 3, 1)):
        ref, ref_cache = max_pool_forward_naive(x, param)
        dout = rng.standard_normal(ref.shape)
        out, cache = pn.max_pool_forward_numba(x, param)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_allclose(pn.max_pool_backward_numba(dout, cache),
                                   max_pool_backward_naive(dout, ref_cache), rtol=1e-12,
                                   atol=1e-12)


def test_launch_chooser_prefers_the_faster_mode_and_explores():
    from convnet.layers.pool_numba import EXPLORE_EVERY, _LaunchChooser

    ch = _LaunchChooser()
    assert ch.choose() is True  # untried modes first
    ch.record(True, 3e-3, 1000)  # parallel slow (oversubscribed cores)
    assert ch.choose() is False
    ch.record(False, 1e-3, 1000)
    picks = [ch.choose() for _ in range(2 * EXPLORE_EVERY)]
    assert picks.count(False) >= 2 * EXPLORE_EVERY - 2  # serial, except exploration
    assert picks.count(True) >= 1  # the slower mode is re-measured now and then
