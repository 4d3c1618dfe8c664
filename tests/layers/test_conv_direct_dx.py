"""The Numba backend's direct kernels for few filters at stride 1 (forward, dw, dx) against the
naive loops."""

from __future__ import annotations

import numpy as np
import pytest

import convnet
from convnet._threads import worker_threads
from convnet.layers import conv_backward_naive, conv_forward_naive
from convnet.layers.conv_numba import (
    DIRECT_MAX_FILTERS,
    NUMBA_AVAILABLE,
    conv_backward_numba,
    conv_forward_numba,
)
from convnet.layers.conv_winograd import prefer_winograd

pytestmark = pytest.mark.skipif(not NUMBA_AVAILABLE, reason="Numba kernel")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "N,C,H,W,F,K,pad",
    [
        (3, 2, 7, 6, 1, 3, 1),  # a decoder's last layer, small
        (1, 3, 9, 9, 2, 3, 0),  # one image: comes in bands of rows with 2 threads
        (2, 4, 8, 5, DIRECT_MAX_FILTERS, 5, 2),
        (2, 2, 4, 4, 1, 5, 3),  # padding wider than the image's border windows
        (5, 1, 6, 7, 1, 1, 0),
        (1, 1, 5, 5, 1, 5, 0),  # 1x1 output
    ],
)
def test_direct_kernels_match_naive(N, C, H, W, F, K, pad, threads):
    before = worker_threads()
    convnet.set_num_threads(threads)
    try:
        rng = np.random.default_rng(N * 100 + F)
        x = rng.standard_normal((N, C, H, W))
        w = rng.standard_normal((F, C, K, K))
        b = rng.standard_normal(F)
        cp = {"stride": 1, "pad": pad}
        out, cache = conv_forward_numba(x, w, b, cp)
        dout = rng.standard_normal(out.shape)
        ref_out, ref_cache = conv_forward_naive(x, w, b, cp)
        np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
        dx, dw, db = conv_backward_numba(dout, cache)
        rdx, rdw, rdb = conv_backward_naive(dout, ref_cache)
        np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)
    finally:
        convnet.set_num_threads(before)


def test_direct_float32_and_parallel_path():
    """Large enough for worker threads; float32 within its rounding of the float64 result."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32, 14, 14))
    w = rng.standard_normal((1, 32, 3, 3))
    b = rng.standard_normal(1)
    cp = {"stride": 1, "pad": 1}
    out64, c64 = conv_forward_numba(x, w, b, cp)
    dout = rng.standard_normal(out64.shape)
    grads64 = conv_backward_numba(dout, c64)
    out32, c32 = conv_forward_numba(x.astype(np.float32), w.astype(np.float32),
                                    b.astype(np.float32), cp)
    grads32 = conv_backward_numba(dout.astype(np.float32), c32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)
    for g32, g64 in zip(grads32, grads64, strict=True):
        assert g32.dtype == np.float32
        # dw and db sum over 16 * 14 * 14 products: scale the tolerance with the sum's size.
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * np.abs(g64).max())


def test_few_filters_do_not_go_to_winograd():
    cp = {"stride": 1, "pad": 1}
    assert not prefer_winograd((128, 32, 28, 28), (1, 32, 3, 3), cp)
    assert not prefer_winograd((128, 32, 28, 28), (DIRECT_MAX_FILTERS, 32, 3, 3), cp)
    assert prefer_winograd((128, 32, 28, 28), (DIRECT_MAX_FILTERS + 1, 32, 3, 3), cp)
