"""The fused ReLU + max pooling layer against the two layers it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from convnet.errors import LayerInputError
from convnet.gradcheck import check_layer
from convnet.layers import (
    max_pool_backward,
    max_pool_forward,
    relu_backward,
    relu_forward,
    relu_max_pool_backward,
    relu_max_pool_forward,
)

# (x shape, pool_param): stride 2, overlapping windows (stride 1, 3x3 stride 2), padding,
# ceil_mode, odd sizes.
CASES = [
    ((2, 3, 8, 8), {"pool_height": 2, "pool_width": 2, "stride": 2}),
    ((2, 2, 7, 9), {"pool_height": 3, "pool_width": 3, "stride": 2}),
    ((1, 2, 5, 6), {"pool_height": 2, "pool_width": 2, "stride": 1}),
    ((2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2, "ceil_mode": True}),
    ((1, 3, 6, 5), {"pool_height": 3, "pool_width": 2, "stride": 2, "pad": 1}),
]


def _two_layers(x, pool_param, dout):
    r, rc = relu_forward(x)
    out, pc = max_pool_forward(r, pool_param)
    return out, relu_backward(max_pool_backward(dout, pc), rc)


@pytest.mark.parametrize("shape,pool_param", CASES)
@pytest.mark.parametrize("data", ["normal", "ties", "negative"])
def test_equals_relu_then_pool_exactly(shape, pool_param, data):
    rng = np.random.default_rng(sum(shape))
    if data == "normal":
        x = rng.standard_normal(shape)
    elif data == "ties":  # small integers: tied maxima, zeros and windows without a positive
        x = rng.integers(-2, 3, shape).astype(np.float64)
    else:
        x = -np.abs(rng.standard_normal(shape))
    out, cache = relu_max_pool_forward(x, pool_param)
    dout = rng.standard_normal(out.shape)
    ref_out, ref_dx = _two_layers(x, pool_param, dout)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(relu_max_pool_backward(dout, cache), ref_dx)


def test_float32_and_numerical_gradient():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 9))
    pp = {"pool_height": 3, "pool_width": 3, "stride": 2}
    res = check_layer(relu_max_pool_forward, relu_max_pool_backward, {"x": x}, pp)
    assert res.max_error < 1e-8, res
    x32 = x.astype(np.float32)
    out, cache = relu_max_pool_forward(x32, pp)
    assert out.dtype == np.float32
    assert relu_max_pool_backward(np.ones_like(out), cache).dtype == np.float32


def test_wrong_dout_shape_is_an_error_not_a_broadcast():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    out, cache = relu_max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(LayerInputError, match="relu_max_pool_backward"):
        relu_max_pool_backward(np.ones((2, 3, 1, 1)), cache)
