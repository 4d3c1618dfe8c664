"""The shared geometry and validation of every functional layer.

* ``out_size`` (the one output-size formula of conv and pooling) against brute-force counting
  of window positions, with dilation, padding, stride and ceil mode;
* every layer family, on every backend, raises ``LayerInputError`` (a ``ValueError`` and a
  ``ConvnetError``) naming the function on a bad shape and on a bad dtype, forward and backward.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnet import layers as L
from convnet.errors import ConvnetError, LayerInputError
from convnet.layers._geometry import out_size, transpose_out_size


def _count_windows(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Slide a dilated window over the padded input, one start position at a time.

    Floor mode keeps the windows that fit entirely. Ceil mode adds windows until every padded
    position is covered, but never one that starts in the trailing padding (Caffe's rule).
    Either way there is none when the window is larger than the padded input.
    """
    extent, padded = d * (k - 1) + 1, size + 2 * p
    if extent > padded:
        return 0
    count, start, covered = 0, 0, 0
    while True:
        if ceil_mode and start >= size + p:
            break
        if start + extent <= padded or (ceil_mode and start < padded and covered < padded):
            count += 1
        else:
            break
        covered = start + extent
        start += s
    return count


def test_out_size_counts_windows_floor_mode():
    for size in range(1, 14):
        for k in range(1, 5):
            for s in range(1, 5):
                for p in range(0, 4):
                    for d in range(1, 4):
                        want = _count_windows(size, k, s, p, d, False)
                        assert out_size(size, k, s, p, d) == want, (size, k, s, p, d)


def test_out_size_counts_windows_ceil_mode():
    # Pooling's precondition: pad < window, so every window covers a real pixel.
    for size in range(1, 14):
        for k in range(1, 6):
            for s in range(1, 6):
                for p in range(0, k):
                    want = _count_windows(size, k, s, p, 1, True)
                    got = out_size(size, k, s, p, ceil_mode=True)
                    assert got == want, (size, k, s, p)
                    floor = out_size(size, k, s, p)
                    assert got in (floor, floor + 1)


def test_out_size_known_values():
    assert out_size(32, 3, 1, 1) == 32  # 'same' 3x3
    assert out_size(28, 11) == 18  # MnistConvNet's 11x11 filters
    assert out_size(31, 3, 2, 1) == 16
    assert out_size(7, 3, 1, 0, 3) == 1  # dilated extent 7
    assert out_size(6, 3, 1, 0, 3) == 0  # does not fit
    assert out_size(113, 3, 2, ceil_mode=True) == 56  # SqueezeNet v1.1 pools
    assert out_size(8, 3, 2, ceil_mode=True) == 4 and out_size(8, 3, 2) == 3


def test_transpose_out_size_inverts_out_size():
    # A transposed conv's output is the largest input a conv maps to its input size; with
    # output_padding op < stride it picks the others, all mapping back to the same size.
    for size in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k):
                    for d in (1, 2):
                        for op in range(s):
                            t = transpose_out_size(size, k, s, p, d, op)
                            if t >= 1:
                                assert out_size(t, k, s, p, d) == size, (size, k, s, p, d, op)


# ------------------------------------------------------------------ every layer, every backend

_rng = np.random.default_rng(0)


def _f(*shape):
    return _rng.standard_normal(shape)


def _cp(**kw):
    return {"stride": 1, "pad": 1, **kw}


def _pp():
    return {"pool_height": 2, "pool_width": 2, "stride": 2}


_CONV = {name: fns for name, fns in
         {**L.CONV_BACKENDS, "winograd": (L.conv_forward_winograd, L.conv_backward_winograd),
          "dispatch": (L.conv_forward, L.conv_backward)}.items()}
_POOL = {**L.POOL_BACKENDS, "dispatch": (L.max_pool_forward, L.max_pool_backward)}

# id -> (forward, backward or None, good args, args with a bad shape, index of the array to
# make integer for the bad-dtype case)
CASES: dict[str, tuple] = {}
for _name, (_fwd, _bwd) in _CONV.items():
    CASES[f"conv-{_name}"] = (_fwd, _bwd, (_f(2, 3, 6, 6), _f(4, 3, 3, 3), _f(4), _cp()),
                              (_f(2, 2, 6, 6), _f(4, 3, 3, 3), _f(4), _cp()), 0)
for _name, (_fwd, _bwd) in _POOL.items():
    CASES[f"max_pool-{_name}"] = (_fwd, _bwd, (_f(2, 3, 6, 6), _pp()), (_f(3, 6, 6), _pp()), 0)
CASES.update({
    "conv_transpose": (L.conv_transpose_forward, L.conv_transpose_backward,
                       (_f(2, 4, 5, 5), _f(4, 3, 3, 3), _f(3), _cp()),
                       (_f(2, 3, 5, 5), _f(4, 3, 3, 3), _f(3), _cp()), 0),
    "avg_pool": (L.avg_pool_forward, L.avg_pool_backward, (_f(2, 3, 6, 6), _pp()),
                 (_f(2, 6, 6), _pp()), 0),
    "affine": (L.affine_forward, L.affine_backward, (_f(2, 3, 4), _f(12, 5), _f(5)),
               (_f(2, 3, 5), _f(12, 5), _f(5)), 0),
    "flatten": (L.flatten_forward, L.flatten_backward, (_f(2, 3, 4),), (_f(3),), 0),
    "reshape": (L.reshape_forward, L.reshape_backward, (_f(2, 12), (3, 4)),
                (_f(2, 10), (3, 4)), 0),
    "relu": (L.relu_forward, L.relu_backward, (_f(2, 3),), None, 0),
    "leaky_relu": (L.leaky_relu_forward, L.leaky_relu_backward, (_f(2, 3), 0.1), None, 0),
    "sigmoid": (L.sigmoid_forward, L.sigmoid_backward, (_f(2, 3),), None, 0),
    "tanh": (L.tanh_forward, L.tanh_backward, (_f(2, 3),), None, 0),
    "dropout": (L.dropout_forward, L.dropout_backward,
                (_f(2, 3), {"p": 0.5, "mode": "train", "seed": 0}), None, 0),
    "batchnorm": (L.batchnorm_forward, L.batchnorm_backward,
                  (_f(4, 3), _f(3), _f(3), {"mode": "train"}),
                  (_f(4, 3, 2), _f(3), _f(3), {"mode": "train"}), 0),
    "spatial_batchnorm": (L.spatial_batchnorm_forward, L.spatial_batchnorm_backward,
                          (_f(2, 3, 4, 4), _f(3), _f(3), {"mode": "train"}),
                          (_f(2, 3, 4), _f(3), _f(3), {"mode": "train"}), 0),
    "global_avg_pool": (L.global_avg_pool_forward, L.global_avg_pool_backward,
                        (_f(2, 3, 4, 4),), (_f(2, 3),), 0),
    "softmax_loss": (L.softmax_loss, None, (_f(4, 3), np.array([0, 1, 2, 0])),
                     (_f(4, 3, 1), np.array([0, 1, 2, 0])), 0),
    "svm_loss": (L.svm_loss, None, (_f(4, 3), np.array([0, 1, 2, 0])),
                 (_f(4), np.array([0, 1, 2, 0])), 0),
    "mse_loss": (L.mse_loss, None, (_f(4, 3), _f(4, 3)), (_f(4, 3), _f(3, 4)), 0),
    "bce_loss": (L.bce_loss, None, (_rng.random((4, 3)), _rng.random((4, 3))),
                 (_rng.random((4, 3)), _rng.random((4, 2))), 0),
    "bce_with_logits_loss": (L.bce_with_logits_loss, None, (_f(4, 3), _rng.random((4, 3))),
                             (_f(4, 3), _rng.random(3)), 0),
    "gaussian_kl": (L.gaussian_kl, None, (_f(4, 3), _f(4, 3)), (_f(4, 3), _f(4, 2)), 0),
})


def _raises_layer_error(call, fn_name_part: str) -> str:
    with pytest.raises(LayerInputError) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, ConvnetError)
    msg = str(info.value)
    assert fn_name_part in msg.split(":")[0], msg  # the message starts with the function
    return msg


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_shape_and_dtype_raise_layer_input_error(case):
    fwd, bwd, good, bad_shape, int_at = CASES[case]
    stem = case.split("-")[0]
    out = fwd(*good)  # the good arguments work
    if bad_shape is not None:
        msg = _raises_layer_error(lambda: fwd(*bad_shape), stem)
        assert "got" in msg  # says what it got, next to what it expected
    as_int = list(good)
    as_int[int_at] = np.round(as_int[int_at] * 10).astype(np.int64)
    msg = _raises_layer_error(lambda: fwd(*as_int), stem)
    assert "floating-point" in msg and "int64" in msg
    if bwd is None:
        return
    y, cache = out
    _raises_layer_error(lambda: bwd(np.zeros(y.shape + (1,)), cache), "backward")
    _raises_layer_error(lambda: bwd(np.zeros(y.shape, np.int32), cache), "backward")
