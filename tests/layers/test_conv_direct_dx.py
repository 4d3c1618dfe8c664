"""The Numba backend's direct input gradient for few filters (stride 1) against the naive loops."""

from __future__ import annotations

import numpy as np
import pytest

import convnet
from convnet._threads import worker_threads
from convnet.layers import conv_backward_naive, conv_forward_naive
from convnet.layers.conv_numba import (
    DIRECT_DX_MAX_FILTERS,
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
        (2, 4, 8, 5, DIRECT_DX_MAX_FILTERS, 5, 2),
        (2, 2, 4, 4, 1, 5, 3),  # padding wider than the image's border windows
        (5, 1, 6, 7, 1, 1, 0),
        (1, 1, 5, 5, 1, 5, 0),  # 1x1 output
    ],
)
def test_direct_dx_matches_naive(N, C, H, W, F, K, pad, threads):
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
        _, ref_cache = conv_forward_naive(x, w, b, cp)
        dx, dw, db = conv_backward_numba(dout, cache)
        rdx, rdw, rdb = conv_backward_naive(dout, ref_cache)
        np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dw, rdw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(db, rdb, rtol=1e-10, atol=1e-12)
    finally:
        convnet.set_num_threads(before)


def test_direct_dx_float32_and_parallel_path():
    """Large enough for worker threads; float32 within its rounding of the float64 result."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32, 14, 14))
    w = rng.standard_normal((1, 32, 3, 3))
    b = np.zeros(1)
    cp = {"stride": 1, "pad": 1}
    out64, c64 = conv_forward_numba(x, w, b, cp)
    dout = rng.standard_normal(out64.shape)
    dx64 = conv_backward_numba(dout, c64)[0]
    _, c32 = conv_forward_numba(x.astype(np.float32), w.astype(np.float32),
                                b.astype(np.float32), cp)
    dx32 = conv_backward_numba(dout.astype(np.float32), c32)[0]
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-4)


def test_few_filters_do_not_go_to_winograd():
    cp = {"stride": 1, "pad": 1}
    assert not prefer_winograd((128, 32, 28, 28), (1, 32, 3, 3), cp)
    assert not prefer_winograd((128, 32, 28, 28), (DIRECT_DX_MAX_FILTERS, 32, 3, 3), cp)
    assert prefer_winograd((128, 32, 28, 28), (DIRECT_DX_MAX_FILTERS + 1, 32, 3, 3), cp)
