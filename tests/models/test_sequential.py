"""Sequential (convnet/models/sequential.py) and the named models (classic.py).

Gradient checks: float64, centred differences with h = 1e-5; tolerance ``TOL = 1e-6`` on the
maximum element-wise relative error (full checks), ``SPARSE_TOL = 1e-6`` for the sparse
checks of the large MnistConvNet weights.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from convnet.errors import CheckpointError, ConvnetError
from convnet.gradcheck import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)
from convnet.models import (
    BasicConvNet,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Fire,
    Flatten,
    FullyConnectedNet,
    GlobalAvgPool,
    MaxPool2D,
    MnistConvNet,
    ReLU,
    Sequential,
    ThreeLayerConvNet,
)

TOL = 1e-6
SPARSE_TOL = 1e-6


def tiny_convnet(dtype=np.float64) -> Sequential:
    return Sequential(
        [
            Conv2D(2, 3, 3, pad=1, name="conv1", seed=0, dtype=dtype),
            ReLU(name="relu1"),
            MaxPool2D(2, name="pool1"),
            Flatten(name="flatten"),
            Dense(3 * 3 * 3, 6, name="fc1", seed=1, dtype=dtype),
            ReLU(name="relu2"),
            Dense(6, 4, name="out", seed=2, dtype=dtype),
        ],
        input_shape=(2, 6, 6),
        reg=0.1,
        name="tiny",
    )


def _randomize_biases(model, rng):
    # zero biases can put ReLU inputs exactly on the kink
    for k in list(model.params):
        if k.endswith("/b") or k.endswith("beta"):
            model.params[k] = rng.standard_normal(model.params[k].shape) * 0.1


def _reset_dropout(model):
    for k in list(model.buffers):
        if k.endswith("/calls"):
            model.buffers[k] = np.zeros((), dtype=np.int64)


def check_model_loss(model, X, y, sparse: bool = False) -> dict[str, float]:
    """Relative errors of model.loss's gradients (all params) against numerical ones."""
    _reset_dropout(model)
    _, grads = model.loss(X, y)
    grads = {k: np.array(v) for k, v in grads.items()}
    errors = {}
    for k in list(model.params):
        p = model.params[k]

        def f(_):
            _reset_dropout(model)
            return model.loss(X, y)[0]

        if sparse and p.size > 30:
            errors[k] = float(grad_check_sparse(f, p, grads[k], num_checks=15, seed=0).max())
        else:
            errors[k] = rel_error(eval_numerical_gradient(f, p), grads[k])
    return errors


# -- named models: gradient checks of loss in float64 --------------------------------------


def test_basic_convnet_loss_gradients(rng):
    model = BasicConvNet(input_dim=(2, 8, 8), num_filters=3, filter_size=3, hidden_dim=7,
                         num_classes=4, reg=0.05, dtype=np.float64, seed=0)
    assert model.layer_names == ["conv1", "relu1", "pool1", "flatten", "fc1", "relu2", "out"]
    _randomize_biases(model, rng)
    X, y = rng.standard_normal((3, 2, 8, 8)), rng.integers(0, 4, 3)
    errors = check_model_loss(model, X, y, sparse=True)
    assert set(errors) == {"conv1/W", "conv1/b", "fc1/W", "fc1/b", "out/W", "out/b"}
    assert max(errors.values()) < TOL, errors


def test_three_layer_convnet_loss_gradients(rng):
    model = ThreeLayerConvNet(input_dim=(3, 6, 6), num_filters=2, filter_size=3, hidden_dim=5,
                              num_classes=3, weight_scale=1e-1, reg=0.1, dtype=np.float64)
    _randomize_biases(model, rng)
    X, y = rng.standard_normal((2, 3, 6, 6)), rng.integers(0, 3, 2)
    errors = check_model_loss(model, X, y)
    assert max(errors.values()) < TOL, errors
    # cs231n init: N(0, weight_scale^2) weights
    big = ThreeLayerConvNet(seed=0)
    assert abs(big.params["fc1/W"].std() - 1e-3) < 1e-4


def test_fully_connected_net_bn_dropout_loss_gradients(rng):
    model = FullyConnectedNet([6, 5], input_dim=8, num_classes=4, batchnorm=True, dropout=0.3,
                              reg=0.05, dtype=np.float64, seed=0)
    assert model.layer_names == ["fc1", "bn1", "relu1", "dropout1", "fc2", "bn2", "relu2",
                                 "dropout2", "out"]
    _randomize_biases(model, rng)
    X, y = rng.standard_normal((6, 8)), rng.integers(0, 4, 6)
    errors = check_model_loss(model, X, y)
    # Batch norm removes the mean, so the loss does not depend on the biases before it: both
    # gradients are ~0 and their relative error is noise; check them absolutely instead.
    _reset_dropout(model)
    _, grads = model.loss(X, y)
    for k in ("fc1/b", "fc2/b"):
        assert np.abs(grads[k]).max() < 1e-12
        del errors[k]
    assert max(errors.values()) < TOL, errors


def test_mnist_convnet_architecture_and_sparse_gradients(rng):
    model = MnistConvNet(dtype=np.float64, reg=0.01, seed=0)
    shapes = model.output_shapes()
    assert shapes == [(5, 18, 18), (5, 18, 18), (1620,), (10,)]
    assert model.params["conv1/W"].shape == (5, 1, 11, 11)
    _randomize_biases(model, rng)
    X = MnistConvNet.preprocess(rng.integers(0, 256, (2, 28, 28)).astype(np.uint8), np.float64)
    assert X.shape == (2, 1, 28, 28) and X.min() >= -1 and X.max() <= 1
    errors = check_model_loss(model, X, np.array([3, 7]), sparse=True)
    assert max(errors.values()) < SPARSE_TOL, errors


# -- forward / backward to named layers ------------------------------------------------------


def test_forward_upto_equals_manual_chain(rng):
    model = tiny_convnet()
    X = rng.standard_normal((2, 2, 6, 6))
    h = X
    for layer in model.layers:
        h = layer.forward(h)
        np.testing.assert_array_equal(model.forward(X, upto=layer.name), h)
    acts = model.forward_layers(X, ["pool1", "conv1", "out"])
    np.testing.assert_array_equal(acts["out"], h)
    np.testing.assert_array_equal(acts["conv1"], model.forward(X, upto="conv1"))
    with pytest.raises(ValueError, match="no layer 'nope'"):
        model.forward(X, upto="nope")


def test_backward_from_intermediate_layer_matches_numerical(rng):
    model = tiny_convnet()
    _randomize_biases(model, rng)
    X = rng.standard_normal((2, 2, 6, 6))
    act = model.forward(X, upto="fc1")
    dout = rng.standard_normal(act.shape)
    dx = model.backward(dout, from_="fc1")
    num = eval_numerical_gradient_array(lambda x: model.forward(x, upto="fc1"), X, dout)
    assert rel_error(num, dx) < TOL
    # layers after from_ get no gradient
    assert not model.grads["out/W"].any()
    assert model.grads["fc1/W"].any()


def test_backward_layers_sums_contributions(rng):
    model = tiny_convnet()
    _randomize_biases(model, rng)
    X = rng.standard_normal((2, 2, 6, 6))
    acts = model.forward_layers(X, ["conv1", "fc1"])
    d1, d2 = rng.standard_normal(acts["conv1"].shape), rng.standard_normal(acts["fc1"].shape)
    dx = model.backward_layers({"conv1": d1, "fc1": d2})
    grad_w = model.grads["conv1/W"].copy()

    def f(x):
        a = model.forward_layers(x, ["conv1", "fc1"])
        return np.sum(a["conv1"] * d1) + np.sum(a["fc1"] * d2)

    num = eval_numerical_gradient(f, X)
    assert rel_error(num, dx) < TOL
    model.forward(X, upto="fc1")
    dx2 = model.backward(d2, from_="fc1")
    model.forward(X, upto="conv1")
    dx1 = model.backward(d1, from_="conv1")
    np.testing.assert_allclose(dx, dx1 + dx2, rtol=1e-12, atol=1e-12)
    assert not np.allclose(grad_w, model.grads["conv1/W"])  # the sum, not the last one


def test_backward_errors(rng):
    model = tiny_convnet()
    X = rng.standard_normal((2, 2, 6, 6))
    model.forward(X, upto="pool1")
    with pytest.raises(RuntimeError, match="last forward pass stopped at pool1"):
        model.backward(np.zeros((2, 4)), from_="out")
    with pytest.raises(ValueError, match="pool1.*shape of its output"):
        model.backward(np.zeros((2, 3, 2, 2)), from_="pool1")


def test_loss_scores_reg_and_other_losses(rng):
    model = tiny_convnet()
    X, y = rng.standard_normal((3, 2, 6, 6)), np.array([0, 1, 3])
    scores = model.loss(X)
    assert scores.shape == (3, 4)
    loss, _ = model.loss(X, y)
    shifted = scores - scores.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    data_loss = -logp[np.arange(3), y].mean()
    l2 = 0.5 * 0.1 * sum(np.sum(model.params[k] ** 2) for k in ("conv1/W", "fc1/W", "out/W"))
    assert abs(loss - (data_loss + l2)) < 1e-10
    svm = Sequential([Dense(4, 3, name="out", dtype=np.float64, seed=0)], loss="svm")
    Xs = rng.standard_normal((5, 4))
    assert check_model_loss(svm, Xs, rng.integers(0, 3, 5))["out/W"] < TOL
    mse = Sequential([Dense(4, 4, name="dec", dtype=np.float64, seed=0)], loss="mse")
    errs = check_model_loss(mse, Xs, Xs)
    assert max(errs.values()) < TOL
    with pytest.raises(ValueError, match="unknown loss"):
        Sequential([ReLU()], loss="hinge2")
    with pytest.raises(ValueError, match="no loss"):
        Sequential([ReLU()], loss=None).loss(Xs, Xs)


# -- params view, dtype, names ------------------------------------------------------------------


def test_params_view_writes_into_layers(rng):
    model = tiny_convnet(np.float32)
    assert list(model.params)[:2] == ["conv1/W", "conv1/b"]
    new = rng.standard_normal((4,))
    model.params["out/b"] = new
    assert model.get_layer("out").params["b"].dtype == np.float32
    np.testing.assert_allclose(model.get_layer("out").params["b"], new, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        model.params["out/b"] = np.zeros(5)
    with pytest.raises(KeyError):
        model.params["out/nope"] = np.zeros(4)
    assert model.num_params() == sum(v.size for v in model.params.values())


def test_auto_names_and_unique_names():
    m = Sequential([Conv2D(1, 2, 3), ReLU(), Conv2D(2, 2, 3), ReLU(), GlobalAvgPool(),
                    Dense(2, 3)])
    assert m.layer_names == ["conv1", "relu1", "conv2", "relu2", "gap1", "fc1"]
    with pytest.raises(ValueError, match="unique"):
        Sequential([ReLU(name="a"), ReLU(name="a")])
    with pytest.raises(ValueError, match="fc1: expected input \\(N, 8\\)"):
        Sequential([Flatten(), Dense(8, 2, name="fc1")], input_shape=(1, 3, 3))


def test_astype_and_integer_input(rng):
    model = tiny_convnet(np.float32)
    X = rng.standard_normal((2, 2, 6, 6))
    assert model.forward(X).dtype == np.float32
    model.astype(np.float64)
    assert model.dtype == np.float64 and all(v.dtype == np.float64 for v in model.params.values())
    assert model.forward(X.astype(np.float32)).dtype == np.float64
    with pytest.raises(ValueError, match="tiny: input must be a floating array"):
        model.forward(X.astype(np.int64))


def test_summary_table(rng):
    model = BasicConvNet(input_dim=(1, 28, 28), num_filters=8, filter_size=5, hidden_dim=20)
    text = model.summary()
    for name in model.layer_names:
        assert name in text
    assert "(None, 8, 28, 28)" in text and "(None, 8, 14, 14)" in text
    total = 8 * 25 + 8 + 8 * 14 * 14 * 20 + 20 + 20 * 10 + 10
    assert f"Total params: {total:,}" in text


def test_predict_in_batches_equals_full(rng):
    model = tiny_convnet(np.float32)
    X = rng.standard_normal((7, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X, batch_size=3), model.forward(X), rtol=1e-6)
    assert model.predict_classes(X).shape == (7,)


# -- save / load ----------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path, rng):
    model = Sequential(
        [Conv2D(3, 4, 3, name="conv1", seed=0), BatchNorm(4, name="bn1"), ReLU(name="relu1"),
         Fire(4, 2, 3, 3, name="fire2", seed=1), GlobalAvgPool(name="gap"),
         Dropout(0.2, seed=4, name="drop"), Dense(6, 5, name="out", seed=2)],
        input_shape=(3, 8, 8), reg=1e-3, name="mixed",
    )
    X = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    model.loss(X, np.array([0, 1, 2, 3]))  # updates BN running stats and the dropout counter
    path = model.save(tmp_path / "m.npz")
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temp file left behind
    with np.load(path, allow_pickle=False) as z:
        assert "fire2/squeeze1x1/W" in z.files and "bn1/running_mean" in z.files
        cfg = json.loads(str(z["__config__"]))
    assert cfg["layers"][3]["class"] == "Fire"
    loaded = Sequential.load(path)
    assert loaded.layer_names == model.layer_names and loaded.reg == 1e-3
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
    np.testing.assert_array_equal(loaded.buffers["bn1/running_var"],
                                  model.buffers["bn1/running_var"])


def test_load_weights_reports_differences(tmp_path):
    a = BasicConvNet(input_dim=(1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10)
    path = a.save(tmp_path / "a.npz")
    b = BasicConvNet(input_dim=(1, 8, 8), num_filters=4, filter_size=3, hidden_dim=10, seed=9)
    b.load_weights(path)
    np.testing.assert_array_equal(b.params["fc1/W"], a.params["fc1/W"])
    c = BasicConvNet(input_dim=(1, 8, 8), num_filters=6, filter_size=3, hidden_dim=10)
    with pytest.raises(CheckpointError, match=r"conv1/W .*\(4, 1, 3, 3\) vs model \(6, 1, 3, 3\)"):
        c.load_weights(path)
    d = Sequential([Flatten(), Dense(64, 10, name="out")], input_shape=(1, 8, 8))
    with pytest.raises(CheckpointError) as exc:
        d.load_weights(path)
    msg = str(exc.value)
    assert "not in model" in msg and "conv1/W" in msg and "out/W" in msg
    assert isinstance(exc.value, ConvnetError)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.npz"):
        Sequential.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        Sequential.load(tmp_path / "missing.npz")


def test_load_weights_without_dropout_counters_but_not_without_bn_stats(tmp_path):
    a = Sequential([Dense(4, 3, name="fc", seed=0), Dropout(0.5, name="drop"),
                    Dense(3, 2, name="out", seed=1)])
    np.savez(tmp_path / "w.npz", **dict(a.params))  # a plain weights file: no buffers
    b = Sequential([Dense(4, 3, name="fc", seed=5), Dropout(0.5, name="drop"),
                    Dense(3, 2, name="out", seed=6)])
    b.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(b.params["out/W"], a.params["out/W"])
    c = Sequential([Dense(4, 3, name="fc"), BatchNorm(3, name="bn")])
    np.savez(tmp_path / "c.npz", **dict(c.params))
    with pytest.raises(CheckpointError, match="bn/running_mean"):
        c.load_weights(tmp_path / "c.npz")


def test_input_space_is_saved_with_the_model(tmp_path):
    from convnet.backend import InputSpace
    from convnet.model_spec import load_backend

    model = BasicConvNet(num_filters=2, hidden_dim=4)
    assert model.input_space is None
    model.input_space = "mnist_0_1"
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert loaded.input_space.name == "mnist_0_1"
    assert load_backend(str(tmp_path / "m.npz")).input_space.name == "mnist_0_1"
    # a custom space keeps its numbers
    custom = InputSpace("RGB", 1 / 255, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), name="mine")
    rgb = BasicConvNet((3, 8, 8), num_filters=2, hidden_dim=4)
    rgb.input_space = custom
    rgb.save(tmp_path / "rgb.npz")
    back = Sequential.load(tmp_path / "rgb.npz").input_space
    assert (back.name, back.channel_order, back.scale) == ("mine", "RGB", 1 / 255)
    np.testing.assert_array_equal(back.mean, custom.mean)
    np.testing.assert_array_equal(back.std, custom.std)
    # the one-convolution MNIST network knows its [-1, 1] inputs
    assert MnistConvNet().input_space.name == "mnist_minus1_1"
    with pytest.raises(ValueError, match="unknown input space"):
        model.input_space = "nosuch"


def test_old_model_file_without_input_space_keeps_the_old_default(tmp_path):
    from convnet.model_spec import load_backend

    model = BasicConvNet(num_filters=2, hidden_dim=4)
    arrays = model.state_dict()
    config = model.get_config()
    assert "input_space" not in config
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **arrays)
    assert Sequential.load(tmp_path / "old.npz").input_space is None
    assert load_backend(str(tmp_path / "old.npz")).input_space.name == "mnist_minus1_1"


def test_broken_model_files_raise_checkpoint_errors_naming_the_file(tmp_path):
    model = BasicConvNet(num_filters=2, hidden_dim=4)
    good = model.save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    config = model.get_config()
    del config["layers"][0]["filters"]
    arrays = model.state_dict()
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(tmp_path / "nofield.npz", **arrays)
    for name in ("empty.npz", "cut.npz", "nofield.npz"):
        with pytest.raises(CheckpointError, match=name):
            Sequential.load(tmp_path / name)


def test_float16_is_computed_in_float32_and_kept(rng):
    """Layers keep the dtype they are given: float16 convolutions (which the compiled kernels
    do not take) are computed in float32 and rounded back, forward and backward."""
    from convnet.layers import (
        conv_backward,
        conv_forward,
        conv_transpose_backward,
        conv_transpose_forward,
    )

    h = np.float16
    x, w, b = (rng.standard_normal(s).astype(h) for s in ((2, 3, 7, 7), (4, 3, 3, 3), (4,)))
    param = {"stride": 2, "pad": 1}
    out, cache = conv_forward(x, w, b, param)
    ref, ref_cache = conv_forward(*(a.astype(np.float64) for a in (x, w, b)), param)
    assert out.dtype == h and out.shape == ref.shape
    # only the final rounding to float16 differs (half an ulp of the largest output)
    np.testing.assert_allclose(out, ref, rtol=0, atol=np.abs(ref).max() * 2**-11)
    dout = rng.standard_normal(out.shape).astype(h)
    grads = conv_backward(dout, cache)
    for g, r in zip(grads, conv_backward(dout.astype(np.float64), ref_cache), strict=True):
        assert g.dtype == h
        np.testing.assert_allclose(g, r, rtol=0, atol=np.abs(r).max() * 2**-10)
    out_t, cache_t = conv_transpose_forward(out, w, b[:3], {"stride": 2, "pad": 1})
    assert out_t.dtype == h
    assert all(g.dtype == h for g in conv_transpose_backward(np.ones_like(out_t), cache_t))
    # mixed float16/float64 inputs stay float64, as np.result_type says
    assert conv_forward(x, w.astype(np.float64), b, param)[0].dtype == np.float64

    model = BasicConvNet(num_filters=3, hidden_dim=8, dtype="float16")
    X = rng.random((4, 1, 28, 28)).astype(h)
    scores = model.loss(X)
    assert scores.dtype == h and scores.shape == (4, 10)
    ref_model = BasicConvNet(num_filters=3, hidden_dim=8, dtype="float16").astype(np.float64)
    np.testing.assert_allclose(scores, ref_model.loss(X.astype(np.float64)), atol=0.05)
    loss, grads = model.loss(X, np.arange(4))
    assert np.isfinite(loss) and all(g.dtype == h for g in grads.values())
