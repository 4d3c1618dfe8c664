"""Feature visualisation: objectives (diversity, caricature, inversion), the presets, and
end-to-end runs on real weights."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data, need_keras_file

from convnet.gradcheck import eval_numerical_gradient, rel_error
from convnet.inputgrad.features import (
    BatchChannels,
    Diversity,
    caricature,
    feature_objective,
    feature_transforms,
    grid,
    maximize,
    visualize_channels,
)
from convnet.inputgrad.objectives import (
    ActivationDistance,
    ActivationMatch,
    Channel,
    LayerMean,
    Neuron,
)
from convnet.inputgrad.transforms import Jitter, RandomCrop


def _check_grad(obj, a, tol):
    g = obj.grad({obj.layer: a})[obj.layer]
    num = eval_numerical_gradient(lambda v: obj.value({obj.layer: v}), a.copy(), verbose=False)
    assert rel_error(g, num) < tol


def test_diversity_value_and_gradient(rng):
    a = rng.uniform(0, 1, (3, 4, 3, 3))  # activations after a ReLU are >= 0
    d = Diversity("l")
    # Brute force: 1/N sum_{i != j} cos(G_i, G_j).
    g = np.einsum("nchw,ndhw->ncd", a, a)
    gh = g / np.linalg.norm(g.reshape(3, -1), axis=1)[:, None, None]
    ref = sum(np.sum(gh[i] * gh[j]) for i in range(3) for j in range(3) if i != j) / 3
    assert d.value({"l": a}) == pytest.approx(ref, rel=1e-8)  # the 1e-10 guard in the norm
    _check_grad(d, a, 1e-6)  # float64, centred differences
    assert d.value({"l": a[:1]}) == pytest.approx(0.0, abs=1e-12)


def test_batch_channels_value_and_gradient(rng):
    a = rng.standard_normal((3, 5, 4, 2))
    obj = BatchChannels("l", [4, 0, 2])
    assert obj.value({"l": a}) == pytest.approx(
        a[0, 4].mean() + a[1, 0].mean() + a[2, 2].mean()
    )
    _check_grad(obj, a, 1e-8)
    with pytest.raises(ValueError, match="BatchChannels.*N=3"):
        obj.value({"l": a[:2]})
    with pytest.raises(ValueError, match=r"channels \[9\]"):
        BatchChannels("l", [9, 0, 1]).value({"l": a})


@pytest.mark.parametrize("k", [0.0, 1.0, 2.5])
def test_activation_match_value_and_gradient(rng, k):
    a = rng.uniform(0, 1, (3, 4, 3, 2))  # after a ReLU
    t = rng.uniform(0, 1, (4, 3, 2))
    obj = ActivationMatch("l", t, cossim_pow=k)
    af, tf = a.reshape(3, -1), t.ravel()
    cos = af @ tf / (np.linalg.norm(af, axis=1) * np.linalg.norm(tf))
    assert obj.value({"l": a}) == pytest.approx(np.sum(af @ tf * cos**k), rel=1e-9)
    _check_grad(obj, a, 1e-7)  # float64, centred differences


def test_activation_match_with_the_reference_in_the_batch(rng):
    a = rng.uniform(0, 1, (3, 4, 3, 2))
    inb = ActivationMatch("l", cossim_pow=1.0)
    explicit = ActivationMatch("l", a[:1], cossim_pow=1.0)
    assert inb.value({"l": a}) == pytest.approx(explicit.value({"l": a[1:]}), rel=1e-12)
    g = inb.grad({"l": a})["l"]
    assert not np.any(g[0])  # the reference is a constant
    num = eval_numerical_gradient(lambda v: inb.value({"l": np.concatenate([a[:1], v])}),
                                  a[1:].copy(), verbose=False)  # fmt: skip
    assert rel_error(g[1:], num) < 1e-7
    with pytest.raises(ValueError, match="need N >= 2"):
        inb.value({"l": a[:1]})
    with pytest.raises(ValueError, match="target must have the activation's shape"):
        ActivationMatch("l", a[:, :2]).value({"l": a})
    with pytest.raises(ValueError, match="cossim_pow must be >= 0"):
        ActivationMatch("l", cossim_pow=-1)


def test_activation_distance_value_and_gradient(rng):
    a = rng.standard_normal((2, 3, 4, 4))
    t = rng.standard_normal((1, 3, 4, 4))
    obj = ActivationDistance("l", t)
    ref = sum(np.sum((a[n] - t[0]) ** 2) for n in range(2)) / np.sum(t * t)
    assert obj.value({"l": a}) == pytest.approx(ref, rel=1e-9)
    assert obj.value({"l": np.concatenate([t, t])}) == pytest.approx(0.0, abs=1e-12)
    _check_grad(obj, a, 1e-7)
    inb = ActivationDistance("l")
    g = inb.grad({"l": a})["l"]
    assert not np.any(g[0])
    num = eval_numerical_gradient(lambda v: inb.value({"l": np.concatenate([a[:1], v])}),
                                  a[1:].copy(), verbose=False)  # fmt: skip
    assert rel_error(g[1:], num) < 1e-7


def test_feature_transforms_defaults():
    b = _Linear()
    robust = feature_transforms(b, None, "fourier", None)
    assert [type(t).__name__ for t in robust] == ["Pad", "RandomCrop", "RandomScale",
                                                  "RandomRotate", "RandomCrop"]  # fmt: skip
    assert (robust[1].d, robust[-1].d) == (8, 4)
    assert (feature_transforms(b, "robust", "pixel", 6)[1].d,
            feature_transforms(b, "robust", "pixel", 6)[-1].d) == (6, 3)  # fmt: skip
    (j,) = feature_transforms(b, None, "pixel", None)
    assert isinstance(j, Jitter) and j.max_shift == 4
    b.input_shape = (3, 16, 16)  # a model that takes one size: the chain ends there
    assert feature_transforms(b, None, "fourier", None)[-1].size == (16, 16)
    mine = [RandomCrop(1)]
    assert feature_transforms(b, mine, "fourier", None) == mine
    with pytest.raises(ValueError, match="transforms must be one of"):
        feature_transforms(b, "blur", "fourier", None)


def test_feature_objective_kinds():
    assert isinstance(feature_objective("mixed1", unit=(30, 9, 9)), Neuron)
    assert isinstance(feature_objective("mixed1", channel=30), Channel)
    assert isinstance(feature_objective("mixed1"), LayerMean)
    n = feature_objective("mixed1", unit=(30, 9, 9))
    # Keras' unit [:, 9, 9, 30] in NHWC is channel 30 at y=9, x=9 in NCHW.
    assert (n.channel, n.y, n.x) == (30, 9, 9)


def test_grid_figure():
    imgs = np.random.default_rng(0).uniform(0, 255, (5, 3, 8, 8))
    fig = grid(imgs, titles=[f"c{i}" for i in range(5)], suptitle="layer")
    assert len([ax for ax in fig.axes if ax.images]) == 5
    with pytest.raises(ValueError, match="grid: 2 titles for 5"):
        grid(imgs, titles=["a", "b"])


class _Linear:
    """A tiny backend: one 'layer' = a fixed linear map of the [0, 1] image (for fast tests)."""

    def __init__(self):
        from convnet.inputgrad.backend import InputSpace

        self.input_space = InputSpace.unit_rgb()
        self.w = np.random.default_rng(1).standard_normal((2, 3, 1, 1))

    def forward(self, x, layers):
        self._x = x
        return {"lin": np.einsum("fc,nchw->nfhw", self.w[:, :, 0, 0], x)}

    def vjp(self, up):
        return np.einsum("fc,nfhw->nchw", self.w[:, :, 0, 0], up["lin"]).astype(np.float32)


def test_maximize_increases_objective_and_clips():
    b = _Linear()
    res = maximize(b, Channel("lin", 0), size=8, steps=50, learning_rate=0.05, max_shift=2,
                   param="pixel")  # fmt: skip
    assert res.images.shape == (1, 3, 8, 8)
    assert res.images.min() >= 0 and res.images.max() <= 255
    # The optimum of a linear channel puts every pixel at 0 or 255 according to the sign
    # of its weight: after 50 steps of 0.05 half-ranges the pixels are already saturated.
    want = np.where(b.w[0, :, 0, 0] > 0, 255.0, 0.0)
    np.testing.assert_allclose(res.images[0, :, 0, 0], want, atol=1.0)
    assert res.history[-1] > res.history[0]


def test_maximize_fourier_default_with_robust_transforms():
    b = _Linear()
    res = maximize(b, Channel("lin", 0), size=16, steps=60, seed=1)
    assert res.images.shape == (1, 3, 16, 16)
    assert 0 <= res.images.min() and res.images.max() <= 255  # the sigmoid keeps the range
    assert res.history[-1] > res.history[0] + 0.05  # measured 0.75 -> 0.83 (unit pixels)
    # Colours move towards the sign of each weight, as in the pixel case above.
    mean = res.images[0].mean(axis=(1, 2)) - 127.5
    assert np.all(np.sign(mean) == np.sign(b.w[0, :, 0, 0]))
    with pytest.raises(ValueError, match="redirect_relu=True needs a NumPy backend"):
        maximize(b, Channel("lin", 0), size=8, steps=1, redirect_relu=True)


def test_caricature_matches_and_inverts_on_the_linear_backend():
    b = _Linear()
    img = np.zeros((3, 12, 12), np.float32)
    img[0], img[1], img[2] = 220, 40, 128  # a reddish image
    t = b.forward(img[None] / 255.0, ["lin"])["lin"]
    inv = caricature(b, img, "lin", invert=True, steps=80, seed=0, param="pixel",
                     learning_rate=0.05, transforms=[])  # fmt: skip
    assert inv.images.shape == (1, 3, 12, 12)
    assert inv.history[-1] < 0.1 * inv.history[0]  # the relative distance fell tenfold
    got = b.forward(inv.images / 255.0, ["lin"])["lin"]
    assert np.linalg.norm(got - t) < 0.3 * np.linalg.norm(t)
    car = caricature(b, img, "lin", steps=30, seed=0, size=10, transforms=[])
    assert car.images.shape == (1, 3, 10, 10) and car.history[-1] > 1.1 * car.history[0]
    # With the default robust transforms the reference is transformed with the images.
    car = caricature(b, img, "lin", steps=3, seed=0, batch=2)
    assert car.images.shape == (2, 3, 12, 12) and len(car.history) == 3
    with pytest.raises(ValueError, match="caricature: image must be pixels"):
        caricature(b, img[:2], "lin", steps=1)


def test_maximize_from_an_image_in_both_parameterisations():
    b = _Linear()
    img = np.random.default_rng(2).uniform(20, 235, (1, 3, 8, 8)).astype(np.float32)
    for param in ("pixel", "fourier"):
        res = maximize(b, Channel("lin", 0), init=img, steps=0, param=param)
        np.testing.assert_allclose(res.images, img, atol=1e-3)  # starts exactly there


def test_maximize_bad_input():
    b = _Linear()
    with pytest.raises(ValueError, match="param must be"):
        maximize(b, Channel("lin", 0), size=8, steps=1, param="wavelet")
    with pytest.raises(ValueError, match="init image"):
        maximize(b, Channel("lin", 0), init=np.zeros((3, 8, 8)), steps=1)


@pytest.fixture(scope="module")
def squeezenet():
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    from convnet.models.squeezenet import squeezenet_backend

    return squeezenet_backend()


def test_squeezenet_channel_and_unit(squeezenet):
    # Channel 1 of fire3 from a random start: 64x64, 15 Adam steps of 0.05 half-ranges.
    res = maximize(squeezenet, feature_objective("fire3", channel=1), size=64, init="random",
                   steps=15, learning_rate=0.05, seed=0, param="pixel")  # fmt: skip
    assert res.history[0] > 0
    assert res.history[-1] > 20 * res.history[0]  # measured ~1000x after 20 steps
    res = maximize(squeezenet, feature_objective("fire3", unit=(12, 3, 3)), size=64,
                   init="random", steps=10, learning_rate=0.05, seed=0, param="pixel")
    assert res.history[0] > 0
    assert res.history[-1] > 2 * res.history[0]


def _channel_mean(backend, layer, channel, pixels):
    from convnet.inputgrad.param import to_model_input

    a = backend.forward(to_model_input(backend.input_space, pixels), [layer])[layer]
    return float(a[:, channel].mean())


def test_squeezenet_fourier_default_raises_a_channel_well_above_grey(squeezenet):
    # fire3 channel 1 is nearly off on mid grey; the defaults (Fourier, robust transforms,
    # Adam 0.05, redirected ReLU) from Lucid's near-grey start.
    grey = _channel_mean(squeezenet, "fire3", 1, np.full((1, 3, 64, 64), 127.5, np.float32))
    res = maximize(squeezenet, feature_objective("fire3", channel=1), size=64, steps=12)
    got = _channel_mean(squeezenet, "fire3", 1, res.images)
    assert got > 50 * grey  # measured: grey 0.040, after 12 steps 10.2


def test_squeezenet_redirected_relu_wakes_a_dead_deep_channel(squeezenet):
    # fire9 channel 0 is 0 on grey and on Lucid's start: without the redirected ReLU gradient
    # it never moves; with it (the Fourier default) it switches on within a few steps.
    obj = feature_objective("fire9", channel=0)
    kw = dict(size=64, steps=14, transforms="jitter")
    with pytest.warns(UserWarning, match="zero gradient"):
        off = maximize(squeezenet, obj, redirect_relu=False, **kw)
    assert max(off.history) == 0.0
    on = maximize(squeezenet, obj, **kw)
    assert on.history[-1] > 1.0  # measured: on from step 10, 19 at step 12
    assert _channel_mean(squeezenet, "fire9", 0, on.images) > 1.0


@pytest.fixture(scope="module")
def mobilenet():
    need_keras_file("models/mobilenet_2_5_224_tf_no_top.h5")
    from convnet.interop.pretrained import keras_model

    return keras_model("mobilenet", alpha=0.25)


@pytest.mark.tf
def test_mobilenet_channel_unit_fourier_diversity(mobilenet):
    obj = feature_objective("conv_pw_5_relu", channel=10)
    res = maximize(mobilenet, obj, size=96, steps=30, learning_rate=0.05, seed=0, param="pixel")
    assert res.history[-1] > 3 * res.history[0]  # measured 0.41 -> 4.4
    unit = feature_objective("conv_pw_5_relu", unit=(10, 3, 3))
    res = maximize(mobilenet, unit, size=96, steps=30, learning_rate=0.05, seed=0,
                   param="pixel")  # fmt: skip
    assert res.history[-1] > 3 * res.history[0]
    # Only the unit's receptive field changes: the far corner stays grey.
    assert np.allclose(res.images[0, :, -8:, -8:], 127.5, atol=1.0)
    res = maximize(mobilenet, obj, size=96, steps=30, param="fourier", seed=0)
    assert res.history[-1] > 2 * res.history[0]
    div = visualize_channels(mobilenet, "conv_pw_5_relu", [10, 10], size=64, steps=20,
                             learning_rate=0.05, diversity=5.0, init="random", seed=0,
                             param="pixel")  # fmt: skip
    d = Diversity("conv_pw_5_relu")
    from convnet.inputgrad.param import to_model_input

    same = visualize_channels(mobilenet, "conv_pw_5_relu", [10, 10], size=64, steps=20,
                              learning_rate=0.05, init="random", seed=0, param="pixel")
    sim = [d.value(mobilenet.forward(to_model_input(mobilenet.input_space, r.images),
                                     ["conv_pw_5_relu"])) for r in (div, same)]
    assert sim[0] < sim[1]  # the diversity term makes the two images less alike


def test_cli_features_and_errors(tmp_path, capsys):
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    from convnet.cli import main

    rc = main(["features", "fire3", "--channel", "1", "--size", "48", "--steps", "2",
               "--init", "random", "--lr", "0.05", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    assert (tmp_path / "features_fire3_channel_1.png").is_file()
    assert main(["features", "fire3", "--unit", "a,b", "--out", str(tmp_path)]) == 2
    assert "--unit must be comma-separated integers" in capsys.readouterr().err
    assert main(["features", "fire3", "--model", "resnet", "--out", str(tmp_path)]) == 2
