"""Whole models in both directions of conversion, and the converters' contracts.

``to_keras(model)`` must give a Keras model whose every named layer output, loss, input
gradient and parameter gradient equal convnet's (float32: rtol 1e-4, float64: rtol 1e-10, the
tolerances of ``convnet.interop.keras.compare``); ``from_keras`` must do the same from a Keras
model, or refuse with a ``KerasConversionError`` naming the layer.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convnet.interop.keras import (
    conv_transpose_weight_from_keras,
    conv_transpose_weight_to_keras,
    conv_weight_from_keras,
    conv_weight_to_keras,
    dense_weight_from_keras,
    dense_weight_to_keras,
)
from convnet.models import BasicConvNet, FullyConnectedNet, MnistConvNet, Sequential
from convnet.models import modules as M

# ------------------------------------------------------------------ pure NumPy (no TF needed)


def test_importing_convnet_and_interop_does_not_import_tensorflow():
    code = (
        "import sys, convnet, convnet.models, convnet.interop, convnet.interop.keras, "
        "convnet.commands.compare; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]


def test_weight_converters_are_inverse_and_permute_as_documented():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3, 2, 4))
    k = conv_weight_to_keras(w)
    assert k.shape == (2, 4, 3, 5)
    assert k[1, 3, 2, 4] == w[4, 2, 1, 3]  # (HH, WW, C, F) <- (F, C, HH, WW)
    np.testing.assert_array_equal(conv_weight_from_keras(k), w)
    kt = conv_transpose_weight_to_keras(w)  # (in, filters, HH, WW) -> (HH, WW, filters, in)
    assert kt[1, 0, 2, 4] == w[4, 2, 1, 0]
    np.testing.assert_array_equal(conv_transpose_weight_from_keras(kt), w)
    with pytest.raises(ValueError, match="conv_weight_to_keras"):
        conv_weight_to_keras(np.zeros((3, 3)))


def test_dense_after_flatten_permutation_makes_outputs_agree():
    """x flattened NCHW @ W == x flattened NHWC @ dense_weight_to_keras(W, chw)."""
    rng = np.random.default_rng(1)
    C, H, W = 3, 4, 5
    x = rng.standard_normal((2, C, H, W))
    w = rng.standard_normal((C * H * W, 6))
    wk = dense_weight_to_keras(w, (C, H, W))
    ours = x.reshape(2, -1) @ w
    theirs = x.transpose(0, 2, 3, 1).reshape(2, -1) @ wk
    np.testing.assert_allclose(theirs, ours, rtol=1e-12)
    assert not np.allclose(x.transpose(0, 2, 3, 1).reshape(2, -1) @ w, ours)  # needed
    np.testing.assert_array_equal(dense_weight_from_keras(wk, (C, H, W)), w)
    np.testing.assert_array_equal(dense_weight_to_keras(w, None), w)
    with pytest.raises(ValueError, match="C\\*H\\*W"):
        dense_weight_to_keras(w, (C, H, W + 1))


# ------------------------------------------------------------------ with TensorFlow

tf_only = pytest.mark.tf


@pytest.fixture(scope="module")
def keras():
    from convnet.interop import import_keras

    return import_keras()


@pytest.fixture(scope="module")
def kx():
    import convnet.interop.keras as kx

    return kx


def _classic(name: str, dtype):
    if name == "fc":
        return FullyConnectedNet([12, 8], input_dim=(2, 5, 5), batchnorm=True, dropout=0.3,
                                 reg=0.05, seed=1, dtype=dtype)
    if name == "basic":
        return BasicConvNet((1, 12, 12), num_filters=4, filter_size=3, hidden_dim=10, reg=0.1,
                            seed=2, dtype=dtype)
    return MnistConvNet(seed=3, dtype=dtype)


def _randomise_bn(model: Sequential, rng) -> None:
    """Non-trivial running statistics, so the BN conversion is actually exercised."""
    for layer in model.layers:
        if isinstance(layer, M.BatchNorm):
            d = layer.num_features
            layer.buffers["running_mean"] = rng.standard_normal(d).astype(layer.dtype)
            layer.buffers["running_var"] = rng.uniform(0.5, 2, d).astype(layer.dtype)
            layer.params["gamma"] = rng.uniform(0.5, 1.5, d).astype(layer.dtype)
            layer.params["beta"] = rng.standard_normal(d).astype(layer.dtype)


def _data(model: Sequential, dtype, n: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *model.input_shape)).astype(dtype)
    y = rng.integers(0, model.output_shapes()[-1][-1], n)
    return x, y


@tf_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["fc", "basic", "mnistconv"])
def test_classic_models_both_directions(kx, name, dtype):
    model = _classic(name, dtype)
    _randomise_bn(model, np.random.default_rng(4))
    x, y = _data(model, dtype)
    kmodel = kx.to_keras(model)
    assert [lyr.name for lyr in kmodel.layers if lyr.name in model.layer_names] == [
        n for n in model.layer_names
    ]
    report = kx.compare(model, kmodel, x, y)
    assert report.passed, str(report)
    # every layer output, the loss, dx and every parameter gradient were compared
    assert {r.name for r in report.rows if r.kind == "output"} == set(model.layer_names)
    assert {r.name for r in report.rows if r.kind == "grad"} == {"input", *model.params}
    assert report.rtol == (1e-4 if dtype == np.float32 else 1e-10)

    back = kx.from_keras(kmodel)
    assert back.layer_names == model.layer_names
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v, err_msg=k)
    for k, v in model.buffers.items():
        np.testing.assert_array_equal(back.buffers[k], v, err_msg=k)
    back.reg = model.reg
    assert kx.compare(back, kmodel, x, y).passed


@tf_only
def test_compare_catches_unpermuted_dense_weights(kx):
    """Copying the dense weight after a flatten without the row permutation is wrong, and the
    report says exactly where: conv outputs agree, ``out`` and later rows fail."""
    model = _classic("mnistconv", np.float64)
    kmodel = kx.to_keras(model)
    kmodel.get_layer("out").kernel.assign(model.params["out/W"])  # no permutation
    x, y = _data(model, np.float64)
    report = kx.compare(model, kmodel, x, y)
    assert not report.passed
    failed = {r.name for r in report.failures()}
    assert {"out", "loss", "input", "out/W"} <= failed
    assert not {"conv1", "relu1", "flatten"} & failed
    assert "FAIL" in str(report)


@tf_only
def test_from_keras_mnist_conv_model(kx, keras):
    """A one-conv Keras MNIST model (5 filters of 11x11 with a fused relu, flatten, a softmax
    dense layer) reads into the convnet layers of MnistConvNet; its final softmax moves into
    convnet's loss."""
    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(5, 11, activation="relu", name="conv1"),
        L.Flatten(name="flatten"),
        L.Dense(10, activation="softmax", name="out"),
    ])
    model = kx.from_keras(kmodel)
    assert model.layer_names == ["conv1", "conv1_relu", "flatten", "out"]
    assert model.input_shape == (1, 28, 28)
    x, y = _data(model, np.float32)
    report = kx.compare(model, kmodel, x, y)
    assert report.passed, str(report)
    # the probabilities of Keras == softmax of convnet's scores
    from convnet.layers import softmax

    np.testing.assert_allclose(softmax(model.forward(x)), kmodel(x.transpose(0, 2, 3, 1)),
                               rtol=1e-5, atol=1e-7)


@tf_only
def test_squeezenet_style_fire_and_ceil_pooling_roundtrip(kx):
    dt = np.float64
    layers = [
        M.Conv2D(3, 8, 3, stride=2, name="conv1", dtype=dt), M.ReLU(name="relu1"),
        M.MaxPool2D(3, 2, ceil_mode=True, name="pool1"),
        M.Fire(8, 4, 6, 6, name="fire2", dtype=dt), M.Fire(12, 4, 6, 6, name="fire3", dtype=dt),
        M.MaxPool2D(3, 2, ceil_mode=True, name="pool3"),
        M.Dropout(0.5, name="drop9"), M.Conv2D(12, 10, 1, name="conv10", dtype=dt),
        M.ReLU(name="relu10"), M.GlobalAvgPool(name="gap"),
    ]
    model = Sequential(layers, input_shape=(3, 25, 25), name="mini_squeezenet")
    # 25 -> conv 12 -> ceil pool 6 (floor would give 5) -> ... -> ceil pool 3 (floor 2)
    assert model.output_shapes()[2] == (8, 6, 6) and model.output_shapes()[5] == (12, 3, 3)
    kmodel = kx.to_keras(model)
    names = {lyr.name: type(lyr).__name__ for lyr in kmodel.layers}
    assert names["pool1_ceilpad"] == "ZeroPadding2D"  # after a ReLU zero padding is exact
    assert names["fire2"] == "Concatenate" and names["fire2_expand3x3"] == "Conv2D"
    x, y = _data(model, dt, n=2)
    report = kx.compare(model, kmodel, x, y)
    assert report.passed, str(report)
    assert "fire3/expand3x3/W" in {r.name for r in report.rows}
    back = kx.from_keras(kmodel)
    assert back.layer_names == model.layer_names
    assert isinstance(back.get_layer("fire2"), M.Fire)
    assert back.get_layer("pool1").ceil_mode and back.get_layer("pool3").ceil_mode
    assert kx.compare(back, kmodel, x, y).passed


@tf_only
def test_from_keras_reads_a_fire_module_with_its_own_layer_names(kx, keras):
    """A Fire module written by hand in Keras (its own layer names, separate ReLU layers, the
    branches joined 1x1 first) reads into one convnet Fire whose weights come from those
    layers; a batch norm after a Flatten is refused by name."""
    L = keras.layers
    inp = keras.Input((7, 7, 3))
    s = L.ReLU(name="sq_act")(L.Conv2D(2, 1, name="sq")(inp))
    a = L.Activation("relu", name="a_act")(L.Conv2D(3, 1, name="e_small")(s))
    b = L.Conv2D(4, 3, padding="same", activation="relu", name="e_big")(s)
    out = L.Concatenate(name="fire_x")([a, b])
    kmodel = keras.Model(inp, L.GlobalAveragePooling2D(name="gap")(out))
    rng = np.random.default_rng(3)
    for layer in kmodel.layers:
        for v in layer.weights:
            v.assign(rng.standard_normal(v.shape).astype(np.float32))
    model = kx.from_keras(kmodel, dtype=np.float64)
    assert model.layer_names == ["fire_x", "gap"]
    np.testing.assert_array_equal(model.params["fire_x/expand3x3/W"],
                                  kx.conv_weight_from_keras(kmodel.get_layer("e_big").kernel.numpy()))
    x = rng.standard_normal((2, 3, 7, 7))
    np.testing.assert_allclose(model.forward(x), kmodel(x.transpose(0, 2, 3, 1).astype(np.float32)),
                               rtol=1e-5, atol=1e-6)
    bad = keras.Sequential([keras.Input((2, 2, 3)), L.Flatten(name="flat"),
                            L.BatchNormalization(name="bn_flat")])
    with pytest.raises(kx.KerasConversionError, match="bn_flat.*flattened"):
        kx.from_keras(bad)


@tf_only
def test_misc_layers_roundtrip_float64(kx):
    """BN with real statistics, LeakyReLU, Tanh, Sigmoid, average pooling, a stride-2 conv with
    pad 1 (not 'same'), a dilated conv, ceil-mode pooling of a possibly negative input (the
    -inf pad) and a transposed conv with pad and output_padding."""
    dt = np.float64
    rng = np.random.default_rng(5)
    layers = [
        M.Conv2D(3, 4, 4, stride=2, pad=1, name="c1", dtype=dt),
        M.BatchNorm(4, eps=1e-3, momentum=0.99, name="bn", dtype=dt),
        M.LeakyReLU(0.1, name="lrelu"),
        M.MaxPool2D(3, 2, ceil_mode=True, name="p1"),
        M.ConvTranspose2D(4, 3, 3, stride=2, pad=1, output_padding=1, name="up", dtype=dt),
        M.Tanh(name="tanh"),
        M.AvgPool2D(2, 2, name="ap"),
        M.Sigmoid(name="sig"),
        M.Conv2D(3, 3, 3, pad=2, dilation=2, name="c2", dtype=dt),
        M.Flatten(name="flat"),
        M.Dense(3 * 4 * 4, 5, name="out", dtype=dt),
    ]
    model = Sequential(layers, input_shape=(3, 17, 16), name="misc")
    _randomise_bn(model, rng)
    kmodel = kx.to_keras(model)
    kinds = {lyr.name: type(lyr).__name__ for lyr in kmodel.layers}
    assert kinds["c1_pad"] == "ZeroPadding2D"
    assert kinds["p1_ceilpad"] == "ConstantPad2D"  # input may be negative: pad with -inf
    assert kinds["up_crop"] == "Cropping2D"
    x, y = _data(model, dt, n=2)
    report = kx.compare(model, kmodel, x, y)
    assert report.passed, str(report)
    assert kmodel.get_layer("bn").epsilon == 1e-3 and kmodel.get_layer("bn").momentum == 0.99


@tf_only
def test_from_keras_same_padding_rules(kx, keras):
    L = keras.layers

    def build(size, stride):
        return keras.Sequential([
            keras.Input((size, size, 2)),
            L.Conv2D(3, 3, strides=stride, padding="same", name="conv_same"),
            L.Flatten(name="flatten"),
            L.Dense(4, name="out"),
        ])

    # stride 2 on an odd size: TF pads 1 + 1, symmetric -> converted exactly
    kmodel = build(9, 2)
    model = kx.from_keras(kmodel)
    assert model.get_layer("conv_same").pad == 1
    x, y = _data(model, np.float32)
    assert kx.compare(model, kmodel, x, y).passed
    # stride 2 on an even size: TF pads 0 on top and 1 at the bottom -> refused, by name
    with pytest.raises(kx.KerasConversionError, match="conv_same.*asymmetric"):
        kx.from_keras(build(8, 2))


@tf_only
@pytest.mark.parametrize("size,pad,ceil", [(8, 0, True), (7, 1, False)])
def test_from_keras_same_max_pooling(kx, keras, size, pad, ceil):
    """TF's 'same' max pooling ignores its padding: on 8 it pads (0, 1) = convnet's ceil mode,
    on 7 it pads (1, 1) = convnet's pad 1; both convert exactly (here without a ReLU before,
    so the pad must really be ignored, not zero)."""
    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((size, size, 2)),
        L.Conv2D(3, 3, padding="same", name="conv"),
        L.MaxPooling2D(3, 2, padding="same", name="pool"),
        L.Flatten(name="flatten"),
        L.Dense(4, name="out"),
    ], name="same_pool")
    model = kx.from_keras(kmodel, dtype=np.float64)
    pool = model.get_layer("pool")
    assert (pool.pad, pool.ceil_mode) == (pad, ceil)
    x, y = _data(model, np.float64)
    twin = kx.to_keras(model)  # and back: -inf padding in the twin
    assert type(twin.get_layer("pool_ceilpad")).__name__ == "ConstantPad2D"
    report = kx.compare(model, twin, x, y)
    assert report.passed, str(report)
    # the original Keras model (float32) agrees with the float64 convnet model too
    np.testing.assert_allclose(model.forward(x), kmodel(x.transpose(0, 2, 3, 1).astype("f4")),
                               rtol=1e-4, atol=1e-5)


@tf_only
def test_from_keras_refuses_unsupported_layers_by_name(kx, keras):
    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((6, 6, 1)), L.UpSampling2D(name="upsample_me"), L.Flatten(), L.Dense(2),
    ])
    with pytest.raises(kx.KerasConversionError, match="upsample_me.*UpSampling2D"):
        kx.from_keras(kmodel)
    mid_softmax = keras.Sequential([
        keras.Input((4,)), L.Dense(3, activation="softmax", name="early"), L.Dense(2),
    ])
    with pytest.raises(kx.KerasConversionError, match="early.*softmax"):
        kx.from_keras(mid_softmax)
    from convnet.errors import ConvnetError

    assert issubclass(kx.KerasConversionError, ConvnetError)


@tf_only
def test_from_keras_folds_symmetric_zero_padding_into_conv(kx, keras):
    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((7, 7, 2)),
        L.ZeroPadding2D(2, name="zp"),
        L.Conv2D(3, 3, strides=2, name="conv"),
        L.ReLU(name="relu"),
        L.GlobalAveragePooling2D(name="gap"),
    ])
    model = kx.from_keras(kmodel, dtype=np.float64)
    assert model.layer_names == ["conv", "relu", "gap"]
    assert model.get_layer("conv").pad == 2
    x, y = _data(model, np.float64)
    kmodel64 = kx.to_keras(model)
    assert kx.compare(model, kmodel64, x, y).passed


@tf_only
def test_cli_compare(capsys, tmp_path):
    from convnet.cli import main

    assert main(["compare", "--model", "mnistconv", "--dtype", "float64", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "conv1/W" in out
    # a saved model file; an impossible tolerance makes the verdict (and exit status) fail
    path = _classic("basic", np.float32).save(tmp_path / "basic.npz")
    assert main(["compare", "--model", str(path), "--json", str(tmp_path / "r.json")]) == 0
    assert '"passed": true' in (tmp_path / "r.json").read_text()
    assert main(["compare", "--model", str(path), "--rtol", "1e-30"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["compare", "--model", "nosuch"]) == 2


@tf_only
@pytest.mark.data
def test_pretrained_squeezenet_twin_float64():
    """The real SqueezeNet v1.1 (pretrained fp16 weights, ceil-mode pooling after conv1, fire3
    and fire5, Fire modules) and its Keras twin agree to 1e-10 in float64. A 49x49 input
    keeps it fast and makes all three ceil-mode pools differ from floor mode
    (24 -> 12 -> 6 -> 3 instead of 11 -> 5 -> 2)."""
    from conftest import need_data

    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    import convnet.interop.keras as kx
    from convnet.models.squeezenet import SqueezeNet

    model = SqueezeNet(dtype=np.float64, image_size=49)
    assert [model.output_shapes()[model.layer_names.index(n)][1]
            for n in ("pool1", "pool3", "pool5")] == [12, 6, 3]
    kmodel = kx.to_keras(model)
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 49, 49))
    report = kx.compare(model, kmodel, x, np.array([817, 208]))
    assert report.passed, str(report)


@tf_only
def test_from_keras_conv2d_transpose(kx, keras):
    """Keras 'same' transposed conv crops floor(total/2) rows at the top: with kernel 4 and
    stride 2 that is symmetric (pad 1, the DCGAN setting) and converts; with kernel 3 and
    stride 2 it is asymmetric and is refused by name."""
    L = keras.layers
    kmodel = keras.Sequential([
        keras.Input((5, 5, 2)),
        L.Conv2DTranspose(3, 4, strides=2, padding="same", name="up"),
        L.Conv2DTranspose(2, 3, strides=2, padding="valid", activation="tanh", name="up2"),
        L.Flatten(name="flatten"),
        L.Dense(3, name="out"),
    ], name="decoder")
    model = kx.from_keras(kmodel)
    up = model.get_layer("up")
    assert (up.pad, up.output_padding) == (1, 0)
    assert model.output_shapes()[0] == (3, 10, 10) and model.output_shapes()[1] == (2, 21, 21)
    x, y = _data(model, np.float32)
    report = kx.compare(model, kmodel, x, y)
    assert report.passed, str(report)
    bad = keras.Sequential([
        keras.Input((5, 5, 2)), L.Conv2DTranspose(3, 3, strides=2, padding="same", name="odd"),
    ])
    with pytest.raises(kx.KerasConversionError, match="odd.*asymmetric"):
        kx.from_keras(bad)
