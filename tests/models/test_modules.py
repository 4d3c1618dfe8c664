"""Layer objects (convnet/models/modules.py): gradients, shapes, errors, configs, init.

Gradient checks run in float64 with centred differences (h = 1e-5); the tolerance on the
maximum element-wise relative error is ``TOL = 1e-6`` (float64 round-off of the differences is
around 1e-10 relative, so a wrong gradient is caught with a wide margin).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convnet import layers as L
from convnet.errors import LayerInputError
from convnet.gradcheck import eval_numerical_gradient_array, rel_error
from convnet.models import init as initmod
from convnet.models.modules import (
    LAYER_REGISTRY,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Fire,
    Flatten,
    GlobalAvgPool,
    LeakyReLU,
    MaxPool2D,
    Module,
    ReLU,
    Reshape,
    Sigmoid,
    Tanh,
    layer_from_config,
)

TOL = 1e-6


def _reset(layer: Module) -> None:
    # Dropout draws a new mask per training call; rewinding the counter repeats the mask.
    if "calls" in layer.buffers:
        layer.buffers["calls"] = np.zeros((), dtype=np.int64)


def check_module(layer: Module, x: np.ndarray, train: bool = False, seed: int = 1) -> dict:
    """Numerical vs analytic gradients of <layer.forward(x), dout> w.r.t. x and every param."""
    layer.astype(np.float64)
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for k in list(layer.params):
        if k.rsplit("/", 1)[-1] == "b":
            # zero biases put ReLU inputs exactly on the kink where a unit's input is all 0
            layer.params[k] = rng.standard_normal(layer.params[k].shape)
    _reset(layer)
    out = layer.forward(x, train=train)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    analytic = {"x": dx, **{k: np.array(v) for k, v in layer.grads.items()}}

    def f(_):
        _reset(layer)
        return layer.forward(x, train=train)

    errors = {"x": rel_error(eval_numerical_gradient_array(f, x, dout), analytic["x"])}
    for k in list(layer.params):
        p = layer.params[k]  # perturbed in place: the layer reads the same array
        errors[k] = rel_error(eval_numerical_gradient_array(f, p, dout), analytic[k])
    return errors


CASES = [
    ("dense", lambda: Dense(12, 5, seed=0), (3, 3, 2, 2), False),
    ("conv", lambda: Conv2D(3, 4, 3, stride=2, pad=1, seed=0), (2, 3, 7, 6), False),
    ("conv_dilated", lambda: Conv2D(2, 3, 3, dilation=2, pad=2, seed=0), (2, 2, 6, 6), False),
    ("deconv", lambda: ConvTranspose2D(3, 2, 3, stride=2, pad=1, output_padding=1, seed=0),
     (2, 3, 3, 4), False),
    ("bn2d_train", lambda: BatchNorm(5), (6, 5), True),
    ("bn4d_train", lambda: BatchNorm(3), (4, 3, 3, 2), True),
    ("bn4d_test", lambda: BatchNorm(3), (4, 3, 3, 2), False),
    ("maxpool", lambda: MaxPool2D(2), (2, 3, 4, 6), False),
    ("maxpool_overlap_ceil", lambda: MaxPool2D(3, 2, ceil_mode=True), (2, 2, 7, 6), False),
    ("avgpool", lambda: AvgPool2D(2), (2, 3, 4, 4), False),
    ("gap", lambda: GlobalAvgPool(), (2, 3, 4, 5), False),
    ("flatten", lambda: Flatten(), (2, 3, 2, 2), False),
    ("reshape", lambda: Reshape((2, 6)), (2, 3, 4), False),
    ("relu", lambda: ReLU(), (3, 7), False),
    ("leaky", lambda: LeakyReLU(0.1), (3, 7), False),
    ("sigmoid", lambda: Sigmoid(), (3, 7), False),
    ("tanh", lambda: Tanh(), (3, 7), False),
    ("dropout_train", lambda: Dropout(0.4, seed=3), (4, 6), True),
    ("fire", lambda: Fire(4, 2, 3, 3, seed=0), (2, 4, 5, 5), False),
]


@pytest.mark.parametrize("name,make,shape,train", CASES, ids=[c[0] for c in CASES])
def test_gradients_float64(name, make, shape, train, rng):
    layer = make()
    layer.name = name
    x = rng.standard_normal(shape)
    if name == "bn4d_test":
        layer.buffers["running_mean"] = rng.standard_normal(3)
        layer.buffers["running_var"] = rng.uniform(0.5, 2.0, 3)
        layer.params["gamma"] = rng.standard_normal(3)
    errors = check_module(layer, x, train=train)
    assert max(errors.values()) < TOL, errors
    if len(layer.params):
        assert set(errors) == {"x", *layer.params}


@pytest.mark.parametrize("name,make,shape,train", CASES, ids=[c[0] for c in CASES])
def test_output_shape_matches_forward_and_config_roundtrip(name, make, shape, train, rng):
    layer = make()
    layer.name = name
    x = rng.standard_normal(shape).astype(np.float32)
    out = layer.forward(x, train=train)
    assert out.shape[1:] == layer.output_shape(shape[1:])
    assert out.dtype == np.float32
    cfg = layer.get_config()
    json.dumps(cfg)  # JSON-able
    clone = layer_from_config(cfg)
    assert type(clone) is type(layer) and clone.get_config() == cfg
    for k, v in layer.params.items():
        clone.params[k] = v.copy()
    for k, v in layer.buffers.items():
        clone.buffers[k] = np.array(v, copy=True)
    _reset(layer)
    _reset(clone)
    np.testing.assert_array_equal(clone.forward(x, train=train), layer.forward(x, train=train))


def test_registry_has_every_layer():
    expected = {"Dense", "Conv2D", "ConvTranspose2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool",
                "Flatten", "Reshape", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout",
                "BatchNorm", "Fire"}
    assert expected <= set(LAYER_REGISTRY)
    with pytest.raises(ValueError, match="unknown layer class"):
        layer_from_config({"class": "Nope"})


def test_conv_input_error_names_layer_and_shape():
    conv = Conv2D(3, 8, 3, name="conv1")
    msg = r"conv1: conv_forward\w*: x must be 4-D \(N, C, H, W\) with C == w.shape\[1\] == 3, " \
          r"got \(2, 1, 28, 28\)"
    with pytest.raises(LayerInputError, match=msg):
        conv.forward(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="conv1"):
        conv.forward(np.zeros((3, 5, 5), np.float32))  # no batch axis
    with pytest.raises(ValueError, match="conv1: .*kernel 5x5 does not fit the padded input 3x3"):
        Conv2D(3, 8, 5, name="conv1").forward(np.zeros((1, 3, 3, 3), np.float32))
    # The static shape inference a Sequential runs at build time words it for the layer.
    with pytest.raises(ValueError, match=r"conv1: expected input \(N, 3, H, W\), got \(N, 1, 2"):
        conv.output_shape((1, 28, 28))


def test_dense_and_bn_input_errors():
    with pytest.raises(ValueError, match=r"fc1: affine_forward: .* == 10, got x shape \(2, 3, 4\)"):
        Dense(10, 2, name="fc1").forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"bn1: batchnorm_forward: .*\(D,\) == \(3,\)"):
        BatchNorm(4, name="bn1").forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"pool1: max_pool_forward\w*: x must be 4-D \(N, C, H"):
        MaxPool2D(2, name="pool1").forward(np.zeros((2, 3), np.float32))


@pytest.mark.parametrize(
    "layer, x",
    [
        (Dense(4, 2, name="lay"), np.zeros((2, 5))),
        (Conv2D(2, 3, 3, name="lay"), np.zeros((1, 3, 5, 5))),
        (ConvTranspose2D(2, 3, 3, name="lay"), np.zeros((1, 3, 5, 5))),
        (BatchNorm(3, name="lay"), np.zeros((2, 4, 5, 5))),
        (MaxPool2D(2, name="lay"), np.zeros((1, 2, 1, 1))),
        (AvgPool2D(2, name="lay"), np.zeros((2, 8))),
        (GlobalAvgPool(name="lay"), np.zeros((2, 8))),
        (Flatten(name="lay"), np.zeros(3)),
        (Reshape((2, 3), name="lay"), np.zeros((2, 5))),
        (ReLU(name="lay"), np.zeros((2, 3), np.int32)),
        (LeakyReLU(name="lay"), np.zeros((2, 3), bool)),
        (Sigmoid(name="lay"), np.zeros((2, 3), np.int64)),
        (Tanh(name="lay"), np.zeros((2, 3), np.uint8)),
        (Dropout(name="lay"), np.zeros((2, 3), np.int64)),
        (Fire(3, 2, 2, 2, name="lay"), np.zeros((1, 4, 5, 5))),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, np.ndarray) else str(v.shape),
)
def test_every_layer_object_reports_bad_input_once_under_its_name(layer, x):
    # One LayerInputError from the functional layer, prefixed with the layer's name once.
    with pytest.raises(LayerInputError) as info:
        layer.forward(x, train=True)
    msg = str(info.value)
    # (Fire's children carry its name: "lay/squeeze1x1: ...")
    assert re.match(r"lay(/\w+)?: \w+_forward\w*: ", msg), msg
    assert not re.match(r"lay(/\w+)?: lay", msg), msg


def test_layer_object_backward_names_layer_on_bad_dout():
    relu = ReLU(name="r1")
    relu.forward(np.ones((2, 3), np.float32))
    with pytest.raises(LayerInputError, match=r"r1: relu_backward: dout .* \(2, 3\), got \(3, 2\)"):
        relu.backward(np.ones((3, 2), np.float32))
    dense = Dense(3, 2, name="fc")
    dense.forward(np.ones((4, 3), np.float32))
    with pytest.raises(LayerInputError, match=r"fc: affine_backward: dout"):
        dense.backward(np.ones((4, 3), np.float32))


def test_activation_objects_match_their_functional_layers(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    pairs = [
        (ReLU(), L.relu_forward, L.relu_backward, ()),
        (LeakyReLU(0.2), L.leaky_relu_forward, L.leaky_relu_backward, (0.2,)),
        (Sigmoid(), L.sigmoid_forward, L.sigmoid_backward, ()),
        (Tanh(), L.tanh_forward, L.tanh_backward, ()),
    ]
    for layer, fwd, bwd, args in pairs:
        out, cache = fwd(x, *args)
        np.testing.assert_array_equal(layer.forward(x), out)
        np.testing.assert_array_equal(layer.backward(dout), bwd(dout, cache))


def test_batchnorm_test_mode_backward_is_the_affine_map(rng):
    bn = BatchNorm(3, dtype=np.float64)
    bn.buffers["running_mean"] = rng.standard_normal(3)
    bn.buffers["running_var"] = rng.random(3) + 0.5
    bn.params["gamma"] = rng.standard_normal(3)
    x = rng.standard_normal((2, 3, 4, 4))
    out = bn.forward(x)
    scale = bn.params["gamma"] / np.sqrt(bn.buffers["running_var"] + bn.eps)
    shift = bn.params["beta"] - bn.buffers["running_mean"] * scale
    np.testing.assert_allclose(out, x * scale[:, None, None] + shift[:, None, None], rtol=1e-12)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(bn.backward(dout), dout * scale[:, None, None], rtol=1e-12)


def test_integer_input_rejected():
    for layer in (Dense(4, 2, name="fc"), ReLU(name="r"), Conv2D(1, 1, 1, name="c")):
        x = np.ones((2, 4) if isinstance(layer, Dense | ReLU) else (2, 1, 2, 2), dtype=np.uint8)
        with pytest.raises(ValueError, match="floating"):
            layer.forward(x)


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(3, 2, name="fc1").backward(np.zeros((1, 2)))


def test_layers_cast_input_to_their_dtype():
    d = Dense(4, 3, seed=0)
    out = d.forward(np.ones((2, 4), np.float64))
    assert out.dtype == np.float32
    d.astype(np.float64)
    assert d.params["W"].dtype == np.float64 and d.grads["W"].dtype == np.float64
    assert d.forward(np.ones((2, 4), np.float32)).dtype == np.float64
    # parameter-free layers keep the dtype they are given
    assert ReLU().forward(np.ones((2, 2), np.float64)).dtype == np.float64


def test_conv_same_padding_and_bad_pad():
    assert Conv2D(1, 2, 5, pad="same").pad == 2
    assert Conv2D(1, 2, 3, pad="valid").pad == 0
    with pytest.raises(ValueError, match="same"):
        Conv2D(1, 2, 3, stride=2, pad="same")


def test_pool_output_sizes_ceil_mode():
    # SqueezeNet v1.1: 3x3/2 pooling with ceil rounding: 111 -> 55, 55 -> 27, 27 -> 13
    p = MaxPool2D(3, 2, ceil_mode=True)
    assert p.output_shape((64, 111, 111)) == (64, 55, 55)
    assert p.output_shape((64, 56, 56)) == (64, 28, 28)
    assert MaxPool2D(3, 2).output_shape((64, 56, 56)) == (64, 27, 27)


def test_fire_params_are_flat_view_into_children(rng):
    fire = Fire(6, 2, 4, 3, name="fire2", seed=0)
    assert list(fire.params) == ["squeeze1x1/W", "squeeze1x1/b", "expand1x1/W", "expand1x1/b",
                                 "expand3x3/W", "expand3x3/b"]
    assert fire.params["expand3x3/W"].shape == (3, 2, 3, 3)
    assert fire.params["squeeze1x1/W"].shape == (2, 6, 1, 1)
    new = rng.standard_normal((4, 2, 1, 1)).astype(np.float32)
    fire.params["expand1x1/W"] = new
    assert fire.children["expand1x1"].params["W"] is new
    x = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    out = fire.forward(x)
    assert out.shape == (2, 7, 5, 5)
    # concat order: expand1x1 channels first, and each branch is relu(conv(relu(squeeze)))
    s = np.maximum(0, np.einsum("fc,nchw->nfhw", fire.params["squeeze1x1/W"][:, :, 0, 0], x)
                   + fire.params["squeeze1x1/b"][None, :, None, None])
    e1 = np.maximum(0, np.einsum("fc,nchw->nfhw", new[:, :, 0, 0], s)
                    + fire.params["expand1x1/b"][None, :, None, None])
    np.testing.assert_allclose(out[:, :4], e1, rtol=1e-5, atol=1e-5)
    assert fire.num_params() == 2 * 6 + 2 + 4 * 2 + 4 + 3 * 2 * 9 + 3


def test_dropout_masks_reproducible_and_fresh_per_call():
    x = np.ones((50, 40), np.float32)
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    m1, m2 = a.forward(x, train=True), a.forward(x, train=True)
    assert not np.array_equal(m1, m2)  # a new mask each training call
    np.testing.assert_array_equal(b.forward(x, train=True), m1)  # same seed, same sequence
    assert set(np.unique(m1)) == {0.0, 2.0}  # inverted dropout scale 1/(1-p)
    assert abs((m1 == 0).mean() - 0.5) < 0.05
    np.testing.assert_array_equal(a.forward(x, train=False), x)
    assert int(a.buffers["calls"]) == 2


def test_batchnorm_updates_running_stats(rng):
    bn = BatchNorm(3, momentum=0.9)
    x = rng.standard_normal((200, 3)) * 2 + 5
    bn.forward(x.astype(np.float32), train=True)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(0), rtol=1e-4)
    # test mode uses running statistics: with mean 0/var 1 stats it is gamma*x + beta
    bn2 = BatchNorm(3)
    y = bn2.forward(x.astype(np.float32), train=False)
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-5), rtol=1e-5)


def test_init_he_and_xavier_statistics_and_seed():
    w = initmod.init_weight((64, 32, 5, 5), "he", seed=0)
    assert abs(w.std() - np.sqrt(2 / (32 * 25))) < 0.02 * np.sqrt(2 / (32 * 25)) * 5
    np.testing.assert_array_equal(w, initmod.init_weight((64, 32, 5, 5), "he", seed=0))
    assert not np.array_equal(w, initmod.init_weight((64, 32, 5, 5), "he", seed=1))
    x = initmod.init_weight((300, 200), "xavier", seed=0)
    limit = np.sqrt(6 / 500)
    assert x.max() <= limit and x.min() >= -limit and x.max() > 0.95 * limit
    s = initmod.init_weight((1000, 100), 1e-3, seed=0, dtype=np.float64)
    assert s.dtype == np.float64 and abs(s.std() - 1e-3) < 5e-5
    with pytest.raises(ValueError, match="unknown init"):
        initmod.init_weight((2, 2), "nope")
    # same seed, same layer weights
    np.testing.assert_array_equal(Conv2D(3, 4, 3, seed=5).params["W"],
                                  Conv2D(3, 4, 3, seed=5).params["W"])
