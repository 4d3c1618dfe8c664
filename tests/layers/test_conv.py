"""Convolution: numerical gradients, every backend against the naive loops, im2col/col2im
adjointness, chunking and memory bound of the Numba path, dtype, errors, dispatch, threads."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convnet
from convnet._threads import get_num_threads, worker_threads
from convnet.gradcheck import check_layer, rel_error
from convnet.layers import (
    CONV_BACKENDS,
    col2im,
    conv_backward,
    conv_backward_im2col,
    conv_backward_naive,
    conv_backward_numba,
    conv_forward,
    conv_forward_im2col,
    conv_forward_naive,
    conv_forward_numba,
    im2col,
    set_conv_backend,
)
from convnet.layers import _numba_chunks as nc
from convnet.layers import conv_numba as cn
from convnet.layers._geometry import out_size
from convnet.layers.conv import get_conv_backend

FAST = {
    "im2col": (conv_forward_im2col, conv_backward_im2col),
    "numba": (conv_forward_numba, conv_backward_numba),
}
ALL = {"naive": (conv_forward_naive, conv_backward_naive), **FAST}


def cp(stride=1, pad=0, dilation=1):
    return {"stride": stride, "pad": pad, "dilation": dilation}


def make(rng, N, C, H, W, F, HH, WW, dtype=np.float64):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


def assert_backends_match(x, w, b, param, dout_seed=1, tol=1e-10):
    """Forward and all three gradients of every fast backend equal the naive loops'."""
    out0, cache0 = conv_forward_naive(x, w, b, param)
    dout = np.random.default_rng(dout_seed).standard_normal(out0.shape)
    grads0 = conv_backward_naive(dout, cache0)
    for name, (fwd, bwd) in FAST.items():
        out, cache = fwd(x, w, b, param)
        assert out.shape == out0.shape, name
        assert rel_error(out, out0) < tol, (name, "out", rel_error(out, out0))
        for g, g0, what in zip(bwd(dout, cache), grads0, ("dx", "dw", "db"), strict=True):
            assert g.shape == g0.shape, (name, what)
            assert rel_error(g, g0) < tol, (name, what, rel_error(g, g0))


# ---------------------------------------------------------------- numerical gradients


@pytest.mark.parametrize(
    "shape, param",
    [
        ((2, 3, 6, 5, 3, 3, 3), cp(1, 1)),
        ((2, 2, 7, 8, 2, 3, 2), cp(2, 2)),
        ((1, 2, 9, 9, 2, 2, 3), cp(3, 1, 2)),
    ],
)
@pytest.mark.parametrize("backend", ["naive", "numba"])
def test_numerical_gradients(backend, shape, param):
    # Convolution is bilinear (no kinks), so centred differences in float64 are accurate to
    # ~1e-10 relative; 1e-7 leaves a wide margin yet catches any wrong index or sign.
    fwd, bwd = ALL[backend]
    x, w, b = make(np.random.default_rng(0), *shape)
    res = check_layer(fwd, bwd, {"x": x, "w": w, "b": b}, param)
    assert res.max_error < 1e-7, res.errors


# ---------------------------------------------------------------- backends vs naive


@st.composite
def conv_case(draw):
    HH = draw(st.integers(1, 5))
    WW = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, 2))
    d = draw(st.integers(1, 2))
    # Input large enough for at least one output pixel, yet small for the naive loops.
    H = draw(st.integers(max(1, d * (HH - 1) + 1 - 2 * p), 9))
    W = draw(st.integers(max(1, d * (WW - 1) + 1 - 2 * p), 9))
    N = draw(st.integers(1, 3))
    C = draw(st.integers(1, 3))
    F = draw(st.integers(1, 4))
    return (N, C, H, W, F, HH, WW), cp(s, p, d), draw(st.integers(0, 2**31))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_case())
def test_backends_match_naive_random(case):
    shape, param, seed = case
    x, w, b = make(np.random.default_rng(seed), *shape)
    assert_backends_match(x, w, b, param, dout_seed=seed)


@pytest.mark.parametrize(
    "shape, param",
    [
        ((2, 1, 28, 28, 2, 11, 11), cp(1, 0)),  # MnistConvNet's 11x11 filters
        ((2, 3, 15, 13, 3, 11, 11), cp(2, 2)),  # 11x11, stride 2, non-square, odd
        ((3, 4, 7, 5, 5, 1, 1), cp(1, 0)),  # 1x1 kernel
        ((2, 3, 9, 9, 2, 1, 1), cp(3, 2)),  # 1x1 kernel, stride 3, only padding at the rim
        ((2, 3, 31, 31, 4, 3, 3), cp(2, 1)),  # bench_layers_naive's shape, smaller batch
        ((1, 2, 11, 7, 2, 3, 3), cp(3, 2, 2)),  # stride 3 with dilation 2
        ((2, 2, 5, 5, 2, 5, 5), cp(1, 2)),  # kernel as large as the image: 'same' padding
    ],
)
def test_backends_match_naive_cases(shape, param):
    x, w, b = make(np.random.default_rng(3), *shape)
    assert_backends_match(x, w, b, param)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("budget", [1, 50, 400])
def test_numba_chunking_matches_naive(monkeypatch, budget, threads):
    # Tiny budgets force every split: several images per chunk, one image per chunk, and
    # bands of output rows within one image (budget 1: one output row per band). With two
    # worker threads, bands of one image scatter into the same dx rows concurrently.
    monkeypatch.setattr(cn, "CHUNK_ELEMENTS", budget)
    monkeypatch.setattr(nc, "PARALLEL_MIN_FLOPS", 0)
    monkeypatch.setattr(nc, "worker_threads", lambda: threads)
    x, w, b = make(np.random.default_rng(4), 3, 2, 9, 8, 3, 3, 2)
    for param in (cp(1, 1), cp(2, 2, 2)):
        out0, c0 = conv_forward_naive(x, w, b, param)
        out, c = conv_forward_numba(x, w, b, param)
        assert rel_error(out, out0) < 1e-10
        dout = np.random.default_rng(5).standard_normal(out.shape)
        for g, g0 in zip(conv_backward_numba(dout, c), conv_backward_naive(dout, c0), strict=True):
            assert rel_error(g, g0) < 1e-10


@pytest.mark.parametrize("min_chunks", [1, 4])
def test_chunks_cover_output_once(min_chunks):
    cases = [(5, 4, 3, 7, 100), (2, 9, 4, 10, 45), (1, 3, 3, 100, 10), (1, 9, 2, 3, 10**6)]
    for N, H, W, rows, budget in cases:
        seen = np.zeros((N, H), dtype=int)
        chunks = list(nc.chunks(N, H, W, rows, budget, min_chunks))
        for n0, nb, y0, y1 in chunks:
            seen[n0 : n0 + nb, y0:y1] += 1
            assert rows * nb * (y1 - y0) * W <= max(budget, rows * W)
        assert (seen == 1).all()
        assert len(chunks) >= min(min_chunks, N * H)  # every worker gets work if it can


def test_numpy_fallback_kernels_match_numba():
    # The stand-ins used when Numba is missing must honour the same chunk contract.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 7, 6))
    HH, WW, s, p, d = 3, 2, 2, 1, 2
    Ho, Wo = out_size(7, HH, s, p, d), out_size(6, WW, s, p, d)
    for n0, nb, y0, y1 in [(0, 3, 0, Ho), (1, 1, 1, Ho), (0, 3, 1, Ho)]:
        a = np.full((nb, 2 * HH * WW + 1, (y1 - y0) * Wo), np.nan)
        bb = a.copy()
        cn._im2col_chunk(x, n0, nb, y0, y1, HH, WW, s, p, d, Wo, a)
        cn._im2col_chunk_numpy(x, n0, nb, y0, y1, HH, WW, s, p, d, Wo, bb)
        np.testing.assert_array_equal(a, bb)
        if (y1 - y0) % 2 == 0:  # the banded layout: two bands of half the rows
            a2 = np.full((2 * nb, 2 * HH * WW + 1, (y1 - y0) // 2 * Wo), np.nan)
            b2 = a2.copy()
            cn._im2col_chunk(x, n0, nb, y0, y1, HH, WW, s, p, d, Wo, a2)
            cn._im2col_chunk_numpy(x, n0, nb, y0, y1, HH, WW, s, p, d, Wo, b2)
            np.testing.assert_array_equal(a2, b2)
            halves = a.reshape(nb, -1, 2, (y1 - y0) // 2 * Wo).transpose(0, 2, 1, 3)
            np.testing.assert_array_equal(a2, halves.reshape(a2.shape))
        dcols = rng.standard_normal((nb, 2 * HH * WW, (y1 - y0) * Wo))
        dx1, dx2 = np.zeros_like(x), np.zeros_like(x)
        cn._col2im_chunk(dcols, n0, nb, y0, y1, HH, WW, s, p, d, Wo, dx1)
        cn._col2im_chunk_numpy(dcols, n0, nb, y0, y1, HH, WW, s, p, d, Wo, dx2)
        np.testing.assert_allclose(dx1, dx2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "N,C,H,W,F,K,s,p,d",
    [(3, 3, 9, 7, 6, 3, 2, 1, 1), (2, 2, 12, 5, 5, 5, 1, 2, 1), (5, 1, 8, 8, 7, 3, 1, 2, 2),
     (1, 3, 16, 16, 8, 7, 1, 3, 1)],
)
def test_numba_forward_in_bands_matches_naive(monkeypatch, N, C, H, W, F, K, s, p, d, threads):
    # Bands of one output row (BAND_PIXELS = 1) on every chunk, whatever its size.
    monkeypatch.setattr(cn, "BAND_MIN_BYTES", 0)
    monkeypatch.setattr(cn, "BAND_PIXELS", 1)
    before = worker_threads()
    convnet.set_num_threads(threads)
    try:
        rng = np.random.default_rng(N + C + K)
        x = rng.standard_normal((N, C, H, W))
        w = rng.standard_normal((F, C, K, K))
        b = rng.standard_normal(F)
        param = {"stride": s, "pad": p, "dilation": d}
        out, _ = cn.conv_forward_numba(x, w, b, param)
        ref, _ = conv_forward_naive(x, w, b, param)
        np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    finally:
        convnet.set_num_threads(before)


def test_band_rows_divide_the_chunk():
    assert cn._band_rows(32, 32, 148, 4) == 4  # the CIFAR-10 first layer: 128 pixels
    assert cn._band_rows(32, 32, 289, 4) == 32  # tall columns stay whole
    assert cn._band_rows(2, 32, 148, 4) == 2  # small chunks stay whole
    assert cn._band_rows(7, 200, 148, 4) == 1  # rows wider than a band: one row each
    for n in range(1, 40):
        assert n % cn._band_rows(n, 30, 100, 8) == 0


# ---------------------------------------------------------------- im2col / col2im


@settings(max_examples=25, deadline=None)
@given(conv_case())
def test_col2im_is_adjoint_of_im2col(case):
    (N, C, H, W, _, HH, WW), param, seed = case
    s, p, d = param["stride"], param["pad"], param["dilation"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    cols = im2col(x, HH, WW, s, p, d)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, HH, WW, s, p, d))
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs))


def test_im2col_layout():
    # cols[(c*HH + i)*WW + j, (n*H' + y)*W' + x] == x_pad[n, c, y*s + i*d, x*s + j*d]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 8, 7))
    HH, WW, s, p, d = 3, 2, 2, 1, 2
    Ho, Wo = out_size(8, HH, s, p, d), out_size(7, WW, s, p, d)
    cols = im2col(x, HH, WW, s, p, d)
    assert cols.shape == (3 * HH * WW, 2 * Ho * Wo)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    for n, c, i, j, y, xo in [(0, 0, 0, 0, 0, 0), (1, 2, 2, 1, Ho - 1, Wo - 1), (1, 1, 1, 0, 1, 2)]:
        r, q = (c * HH + i) * WW + j, (n * Ho + y) * Wo + xo
        assert cols[r, q] == xp[n, c, y * s + i * d, xo * s + j * d]
    # And the forward pass is exactly the documented GEMM.
    w = rng.standard_normal((4, 3, HH, WW))
    out, _ = conv_forward_im2col(x, w, np.zeros(4), cp(s, p, d))
    ref = (w.reshape(4, -1) @ cols).reshape(4, 2, Ho, Wo).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_im2col_errors():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="im2col"):
        im2col(x, 5, 5)
    with pytest.raises(ValueError, match="im2col.*stride"):
        im2col(x, 2, 2, stride=0)
    with pytest.raises(ValueError, match="col2im.*cols must have shape"):
        col2im(np.zeros((3, 9)), x.shape, 2, 2)


# ---------------------------------------------------------------- dtype and errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", sorted(ALL))
def test_dtype_preserved(backend, dtype):
    fwd, bwd = ALL[backend]
    x, w, b = make(np.random.default_rng(8), 2, 3, 7, 6, 4, 3, 3, dtype)
    out, cache = fwd(x, w, b, cp(2, 1))
    assert out.dtype == dtype
    for g in bwd(np.ones_like(out), cache):
        assert g.dtype == dtype
    if dtype == np.float32:  # float32 results agree with a float64 computation to ~1e-6
        ref, _ = conv_forward_naive(*(a.astype(np.float64) for a in (x, w, b)), cp(2, 1))
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", sorted(ALL))
def test_bad_inputs_raise_clear_errors(backend):
    fwd, bwd = ALL[backend]
    name = f"conv_forward_{backend}"
    x, w, b = make(np.random.default_rng(9), 2, 3, 8, 8, 4, 3, 3)
    cases = [
        ((x[0], w, b, cp()), r"x must be 4-D \(N, C, H, W\) with C == w.shape\[1\] == 3"),
        ((x[:, :2], w, b, cp()), r"got \(2, 2, 8, 8\)"),
        ((x, w[0], b, cp()), r"w must be 4-D \(F, C, HH, WW\)"),
        ((x, w, b[:3], cp()), r"b must have shape \(F,\) == \(4,\)"),
        ((x, np.zeros((4, 3, 11, 11)), b, cp(1, 1)), "output size"),
        ((x, w, b, cp(stride=0)), r"conv_param\['stride'\] must be >= 1"),
        ((x, w, b, cp(stride=1.0)), r"conv_param\['stride'\] must be an int"),
        ((x, w, b, cp(pad=-1)), r"conv_param\['pad'\] must be >= 0"),
        ((x, w, b, cp(dilation=0)), r"conv_param\['dilation'\] must be >= 1"),
        ((x.astype(int), w, b, cp()), "x must be a floating-point array"),
        ((x, w, b, "stride=1"), "conv_param must be a dict"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=name + ".*" + msg):
            fwd(*args)
    out, cache = fwd(x, w, b, cp(1, 1))
    with pytest.raises(ValueError, match=rf"conv_backward_{backend}.*dout.*\(2, 4, 8, 8\)"):
        bwd(out[:, :2], cache)
    other = "naive" if backend != "naive" else "im2col"
    _, other_cache = ALL[other][0](x, w, b, cp(1, 1))
    with pytest.raises(ValueError, match=f"cache must come from the '{backend}'"):
        bwd(out, other_cache)


# ---------------------------------------------------------------- dispatch


def test_dispatch_records_backend():
    x, w, b = make(np.random.default_rng(10), 2, 2, 6, 6, 3, 3, 3)
    assert get_conv_backend() == ("numba" if "numba" in CONV_BACKENDS else "im2col")
    assert set(CONV_BACKENDS) >= {"naive", "im2col"}
    ref, ref_cache = conv_forward_naive(x, w, b, cp(1, 1))
    dout = np.random.default_rng(11).standard_normal(ref.shape)
    ref_grads = conv_backward_naive(dout, ref_cache)
    try:
        for name in CONV_BACKENDS:
            set_conv_backend(name)
            out, cache = conv_forward(x, w, b, cp(1, 1))
            assert cache[0] == name
            # Switching backend between forward and backward must not matter.
            set_conv_backend("naive" if name != "naive" else "im2col")
            for g, g0 in zip(conv_backward(dout, cache), ref_grads, strict=True):
                assert rel_error(g, g0) < 1e-10
            assert rel_error(out, ref) < 1e-10
        with pytest.raises(ValueError, match="set_conv_backend: unknown backend 'cuda'"):
            set_conv_backend("cuda")
    finally:
        set_conv_backend(None)
    with pytest.raises(ValueError, match="conv_backward: cache must come from"):
        conv_backward(dout, ("pool", 1))


def test_outputs_do_not_alias_workspace():
    # The Numba path reuses scratch buffers between calls; results must never live in them.
    rng = np.random.default_rng(12)
    x, w, b = make(rng, 2, 3, 8, 8, 4, 3, 3)
    out1, c1 = conv_forward_numba(x, w, b, cp(1, 1))
    keep = out1.copy()
    dx1, dw1, db1 = conv_backward_numba(np.ones_like(out1), c1)
    keep_g = [g.copy() for g in (dx1, dw1, db1)]
    x2, w2, b2 = make(rng, 2, 3, 8, 8, 4, 3, 3)
    out2, c2 = conv_forward_numba(x2, w2, b2, cp(1, 1))
    conv_backward_numba(out2, c2)
    np.testing.assert_array_equal(out1, keep)
    for g, k in zip((dx1, dw1, db1), keep_g, strict=True):
        np.testing.assert_array_equal(g, k)


def test_numba_memory_bounded():
    # Batch 1, a large image, 64 filters of 3x3x3 (DeepDream-like, scaled down for speed): the
    # only big allocation beyond the output may be one column chunk (CHUNK_ELEMENTS entries),
    # so peak memory stays a small multiple of the output, not HH*WW times the input.
    x, w, b = make(np.random.default_rng(13), 1, 3, 300, 300, 64, 3, 3, np.float32)
    # Compile (serial and parallel kernels) outside the measurement: compiling allocates too.
    small, small_cache = conv_forward_numba(x[:, :, :100, :100], w, b, cp(1, 1))
    conv_backward_numba(small, small_cache)
    nc.WORKSPACE.buffers.clear()
    out_bytes = 64 * 300 * 300 * 4
    chunk_bytes = cn.CHUNK_ELEMENTS * 4
    tracemalloc.start()
    try:
        out, cache = conv_forward_numba(x, w, b, cp(1, 1))
        _, peak_fwd = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        dx, dw, db = conv_backward_numba(out, cache)
        _, peak_bwd = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_fwd <= out_bytes + 2 * chunk_bytes + 1e6, (peak_fwd, out_bytes)
    # Backward also holds dout (== out here) and produces dx.
    assert peak_bwd <= 2 * out_bytes + x.nbytes + 2 * chunk_bytes + 1e6, (peak_bwd, out_bytes)


# ---------------------------------------------------------------- threads


def test_set_num_threads():
    before = get_num_threads()
    try:
        convnet.set_num_threads(1)
        now = get_num_threads()
        assert now["numba"] in (None, 1)
        assert now["blas"] in (None, 1)
        x, w, b = make(np.random.default_rng(14), 2, 2, 6, 6, 3, 3, 3)
        assert_backends_match(x, w, b, cp(1, 1))  # still correct on one thread
    finally:
        convnet.set_num_threads(max(1, before["numba"] or 1))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            convnet.set_num_threads(bad)


def test_works_without_numba():
    # With Numba missing, conv falls back to pure NumPy: im2col for conv_forward, NumPy
    # stand-ins for the chunk kernels (used by conv_transpose). Run in a fresh interpreter.
    code = """
import sys
sys.modules["numba"] = None  # makes `import numba` raise ImportError
import numpy as np
from convnet.layers import conv_forward, conv_backward, conv_forward_naive, conv_backward_naive
from convnet.layers import conv_transpose_forward, conv_transpose_backward, CONV_BACKENDS
from convnet.layers.conv import get_conv_backend
assert "numba" not in CONV_BACKENDS and get_conv_backend() == "im2col"
rng = np.random.default_rng(0)
x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
p = {"stride": 2, "pad": 1}
out, cache = conv_forward(x, w, b, p)
ref, ref_cache = conv_forward_naive(x, w, b, p)
assert np.allclose(out, ref)
for g, g0 in zip(conv_backward(out, cache), conv_backward_naive(out, ref_cache)):
    assert np.allclose(g, g0)
y, tcache = conv_transpose_forward(out, w, np.zeros(3), {"stride": 2, "pad": 1})
z = rng.standard_normal(y.shape)
assert np.isclose(np.sum(z * y), np.sum(conv_forward_naive(z, w, b, p)[0] * out))
conv_transpose_backward(z, tcache)
print("ok")
"""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_single_threaded_blas_restores_count():
    from convnet._threads import single_threaded_blas

    before = get_num_threads()["blas"]
    with single_threaded_blas() as reached:
        if reached:
            assert get_num_threads()["blas"] in (None, 1)
        with single_threaded_blas():  # nested (another conv on another thread): still 1
            if reached:
                assert get_num_threads()["blas"] in (None, 1)
    assert get_num_threads()["blas"] == before


@pytest.mark.parametrize("backend", sorted(FAST))
def test_non_contiguous_and_readonly_inputs(backend):
    rng = np.random.default_rng(15)
    big = rng.standard_normal((2, 6, 9, 14))
    x = big[:, ::2, :, ::2]  # strided view
    w = np.asfortranarray(rng.standard_normal((3, 3, 3, 2)))
    b = rng.standard_normal(3)
    x.flags.writeable = False
    out0, c0 = conv_forward_naive(x, w, b, cp(2, 1))
    out, c = FAST[backend][0](x, w, b, cp(2, 1))
    assert rel_error(out, out0) < 1e-10
    dout = rng.standard_normal(out.shape)[:, :, ::-1]  # negative strides
    for g, g0 in zip(FAST[backend][1](dout, c), conv_backward_naive(dout, c0), strict=True):
        assert rel_error(g, g0) < 1e-10


@pytest.mark.tf
def test_matches_tensorflow():
    # Cross-check the conventions (NCHW vs NHWC, (F, C, HH, WW) vs (HH, WW, C, F), padding)
    # against TensorFlow, forward and both gradients, including stride 2 and dilation.
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(16)
    x, w, b = make(rng, 2, 3, 9, 8, 4, 3, 3)
    for s, d in [(1, 1), (2, 1), (1, 2)]:
        param = cp(s, 0, d)
        out, cache = conv_forward(x, w, b, param)
        dout = rng.standard_normal(out.shape)
        dx, dw, db = conv_backward(dout, cache)
        xt = tf.constant(x.transpose(0, 2, 3, 1))
        wt = tf.constant(w.transpose(2, 3, 1, 0))
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            # tf.nn.convolution does dilation by space-to-batch, which has CPU gradients.
            yt = tf.nn.convolution(xt, wt, strides=s, padding="VALID", dilations=d) + b
        dt = tf.constant(dout.transpose(0, 2, 3, 1))
        gx, gw = tape.gradient(yt, [xt, wt], output_gradients=dt)
        np.testing.assert_allclose(out, yt.numpy().transpose(0, 3, 1, 2), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dx, gx.numpy().transpose(0, 3, 1, 2), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dw, gw.numpy().transpose(3, 2, 0, 1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)), rtol=1e-12)
