"""Pretrained Keras applications as backends: file names, offline errors, real/random weights."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_keras_file

from convnet.errors import ConvnetError, DataNotFoundError
from convnet.interop.pretrained import build_keras_model, keras_model, weights_file


def test_weights_file_names_match_keras():
    assert weights_file("mobilenet", False, 0.25) == "mobilenet_2_5_224_tf_no_top.h5"
    assert weights_file("mobilenet", True, 1.0, (160, 160, 3)) == "mobilenet_1_0_160_tf.h5"
    # Non-square or unusual sizes fall back to the 224 weights, as Keras does.
    assert weights_file("mobilenet", False, 0.5, (200, 300, 3)) == "mobilenet_5_0_224_tf_no_top.h5"
    assert (weights_file("mobilenet_v2", False, 1.0)
            == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    assert (weights_file("inception_v3", False)
            == "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert weights_file("vgg19", True) == "vgg19_weights_tf_dim_ordering_tf_kernels.h5"
    with pytest.raises(ValueError, match="alpha"):
        weights_file("mobilenet", False, 0.3)


def test_offline_missing_weights_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("CONVNET_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        build_keras_model("vgg19", include_top=False)
    msg = str(err.value)
    want = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert str(want) in msg and "CONVNET_OFFLINE=1" in msg
    assert isinstance(err.value, ConvnetError)


def test_unknown_model_and_bad_shapes():
    with pytest.raises(ConvnetError, match="unknown model 'alexnet'"):
        build_keras_model("alexnet")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        build_keras_model("vgg19", weights=None, input_shape=(3, 64, 64))
    with pytest.raises(ConvnetError, match="at least 75x75"):
        build_keras_model("inception_v3", weights=None, input_shape=(64, 64, 3))
    with pytest.raises(DataNotFoundError, match="nope.h5"):
        build_keras_model("vgg19", weights="/nonexistent/nope.h5")


@pytest.fixture(scope="module")
def mobilenet():
    need_keras_file("models/mobilenet_2_5_224_tf_no_top.h5")
    return keras_model("mobilenet", alpha=0.25)


@pytest.mark.tf
def test_real_mobilenet_025(mobilenet):
    b = mobilenet
    assert "conv_pw_13_relu" in b.layer_names and "conv_dw_1" in b.layer_names
    assert b.input_space.name == "tf_minus1_1"
    lo, hi = b.input_space.bounds
    np.testing.assert_allclose(lo, -1) and np.testing.assert_allclose(hi, 1)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 3, 96, 96)).astype(np.float32)
    x = b.input_space.to_model(pixels)
    acts = b.forward(x, ["conv_pw_13_relu", "conv_pw_1_relu"])
    assert acts["conv_pw_13_relu"].shape == (2, 256, 3, 3)  # alpha 0.25: 1024 * 0.25 channels
    ref = b.model(x.transpose(0, 2, 3, 1)).numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(acts["conv_pw_13_relu"], ref, rtol=1e-5, atol=1e-5)
    # The ImageNet weights, not a random init: BN moving means are not Keras' zeros.
    bn = b.model.get_layer("conv1_bn")
    assert np.abs(bn.moving_mean.numpy()).max() > 1e-3


@pytest.mark.tf
def test_weights_path_loads_the_same(mobilenet):
    path = need_keras_file("models/mobilenet_2_5_224_tf_no_top.h5")
    b2 = keras_model("mobilenet", alpha=0.25, weights=path, input_shape=(64, 64, 3))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    a1 = mobilenet.forward(x, ["conv_pw_6_relu"])["conv_pw_6_relu"]
    a2 = b2.forward(x, ["conv_pw_6_relu"])["conv_pw_6_relu"]
    np.testing.assert_allclose(a1, a2, rtol=1e-5, atol=1e-6)


@pytest.mark.tf
def test_inception_v3_random_weights_dream_path():
    from convnet.inputgrad.deepdream import deepdream

    b = keras_model("inception_v3", weights=None)
    assert [f"mixed{i}" for i in range(11)] == [n for n in b.layer_names if n.startswith("mixed")
                                                and n[5:].isdigit()]
    assert b.input_space.name == "tf_minus1_1"
    img = np.random.default_rng(0).uniform(0, 255, (1, 3, 80, 80)).astype(np.float32)
    # Default layers mixed3 + mixed5, one octave: the code path runs and stays in range.
    res = deepdream(b, img, variant="simple", steps=2)
    assert res.image.shape == img.shape and len(res.history) == 2
    assert np.all(np.isfinite(res.image)) and not np.array_equal(res.image, img)


@pytest.mark.tf
def test_vgg19_random_weights_style_path():
    from convnet.inputgrad.style import VGG19_CONTENT_LAYER, VGG19_STYLE_LAYERS, style_transfer

    b = keras_model("vgg19", weights=None)
    assert b.input_space.name == "caffe_vgg" and b.input_space.channel_order == "BGR"
    assert set(VGG19_STYLE_LAYERS) | {VGG19_CONTENT_LAYER} <= set(b.layer_names)
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (1, 3, 48, 48)).astype(np.float32)
    style = rng.uniform(0, 255, (1, 3, 40, 56)).astype(np.float32)
    res = style_transfer(b, content, style, steps=3, style_weights=1e6, tv_weight=1e-3)
    assert res.image.shape == content.shape
    assert len(res.history["total"]) == 3 and np.all(np.isfinite(res.history["total"]))
