"""Objectives, InputSpace, the backend plumbing, transforms and the optimisation loop.

Everything here runs on a tiny hand-written model with the Sequential contract
(``forward_layers`` / ``backward_layers``) so it tests this package alone. Gradients are
checked against central differences (h=1e-5) in float64 with norm-wise relative
error < 1e-7.
"""

from __future__ import annotations

import numpy as np
import pytest
from toymodel import TOL, ToyModel, num_grad, rel_error  # noqa: F401

from convnet.inputgrad import (
    L2,
    Channel,
    ClassScore,
    CrossEntropy,
    InputSpace,
    LayerMean,
    Neuron,
    NumpyBackend,
    TotalVariation,
    UnknownLayerError,
)
from convnet.inputgrad.optimize import optimize_input, value_and_grad
from convnet.inputgrad.transforms import (
    Blur,
    Jitter,
    gaussian_blur,
    resize_bilinear,
    tile_bounds,
)


@pytest.fixture
def toy():
    return NumpyBackend(ToyModel(), InputSpace.unit_rgb())


OBJECTIVES = [
    ("logit", lambda: ClassScore(2)),
    ("softmax", lambda: ClassScore([1, 3], kind="softmax")),
    ("log_softmax", lambda: ClassScore(0, kind="log_softmax")),
    ("xent", lambda: CrossEntropy([3, 0])),
    ("neuron", lambda: Neuron("c1", 1, 2, 3)),
    ("neuron_centre", lambda: Neuron("c1", 0)),
    ("neuron_dense", lambda: Neuron("pool", 1)),
    ("channel", lambda: Channel("c1", 1)),
    ("layermean", lambda: LayerMean("c1")),
    ("layermean_sq", lambda: LayerMean("c1", squared=True)),
    ("l2", lambda: L2()),
    ("l2_centered", lambda: L2(center=[0.5, 0.4, 0.1])),
    ("l2_scaled", lambda: L2(center=0.3, scale=[2.0, 0.5, 1.5])),
    ("tv2", lambda: TotalVariation()),
    ("tv1", lambda: TotalVariation(power=1.0)),
    ("tv_layer", lambda: TotalVariation("c1", power=1.5)),
    ("tv_scaled", lambda: TotalVariation(scale=[2.0, 0.5, 1.5])),
    ("combo", lambda: ClassScore(1) - 0.3 * L2() + 2 * Channel("c1", 0) - TotalVariation()),
    ("sum_builtin", lambda: sum([LayerMean("c1"), Neuron("out", 2), 0.5 * LayerMean("c1")])),
]


@pytest.mark.parametrize("name,make", OBJECTIVES, ids=[o[0] for o in OBJECTIVES])
def test_objective_input_gradient(toy, name, make):
    """The full chain objective -> backend.vjp against central differences on x (float64)."""
    obj = make()
    x = np.random.default_rng(1).uniform(0, 1, (2, 3, 5, 6))
    _, g = toy.value_and_grad(obj, x)
    g = g.copy()
    ng = num_grad(lambda z: toy.value_and_grad(obj, z)[0], x.copy())
    assert g.shape == x.shape
    assert rel_error(g, ng) < TOL, name


@pytest.mark.parametrize("name,make", OBJECTIVES, ids=[o[0] for o in OBJECTIVES])
def test_objective_activation_gradient(toy, name, make):
    """grad(acts) against central differences on each activation directly."""
    obj = make()
    rng = np.random.default_rng(2)
    acts = toy.forward(rng.uniform(0, 1, (2, 3, 5, 6)), obj.layers)
    acts = {k: v.copy() for k, v in acts.items()}
    grads = obj.grad(acts)
    assert set(grads) <= set(obj.layers)
    for k in obj.layers:

        def f(a, k=k):
            return obj.value({**acts, k: a})

        ng = num_grad(f, acts[k].copy())
        assert rel_error(grads.get(k, np.zeros_like(ng)), ng) < TOL, (name, k)


def test_objective_values_match_definitions():
    s = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    assert ClassScore([2, 0], "s").value({"s": s}) == pytest.approx(3.0)
    p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    assert CrossEntropy(1, "s").value({"s": s}) == pytest.approx(-np.log(p[:, 1]).sum())
    a = np.arange(2 * 2 * 3 * 3, dtype=float).reshape(2, 2, 3, 3)
    assert Channel("a", 1).value({"a": a}) == pytest.approx(a[:, 1].mean(axis=(1, 2)).sum())
    assert TotalVariation("a").value({"a": a}) == pytest.approx(
        np.sum(np.diff(a, axis=2) ** 2) + np.sum(np.diff(a, axis=3) ** 2)
    )
    assert (3 * L2("a") - L2("a")).value({"a": a}) == pytest.approx(2 * np.sum(a**2))


def test_bad_class_and_layer_errors(toy):
    x = np.zeros((1, 3, 5, 6))
    with pytest.raises(ValueError, match=r"out of range \[0, 4\)"):
        toy.value_and_grad(ClassScore(4), x)
    with pytest.raises(UnknownLayerError, match="unknown layer 'conv9'.*c1, pool, out"):
        toy.forward(x, ["conv9"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        toy.forward(np.zeros((1, 1, 5, 6)), ["out"])
    with pytest.raises(ValueError, match="channel 7"):
        Channel("c1", 7).value(toy.forward(x, ["c1"]))


def test_fixed_size_model_rejects_other_sizes():
    class Dense:  # a Dense layer before any global pool makes the model fixed-size
        pass

    m = ToyModel()
    m.get_layer = lambda name: Dense()
    b = NumpyBackend(m, InputSpace.unit_rgb())
    assert b.input_shape == (3, 5, 6)
    with pytest.raises(ValueError, match=r"\(N, 3, 5, 6\).*one image size.*\(1, 3, 8, 8\)"):
        b.forward(np.zeros((1, 3, 8, 8)), ["out"])


def test_vjp_several_layers_and_aliases(toy):
    x = np.random.default_rng(3).uniform(0, 1, (1, 3, 5, 6))
    acts = toy.forward(x, ["c1", "output", "input"])
    assert acts["input"] is not None and acts["output"].shape == (1, 4)
    up = {"c1": np.ones_like(acts["c1"]), "output": np.ones((1, 4)), "input": np.ones_like(x)}
    both = toy.vjp(up)
    toy.forward(x, ["c1", "out"])
    sep = toy.vjp({"c1": up["c1"]})
    toy.forward(x, ["out"])
    sep = sep + toy.vjp({"out": up["output"]}) + 1
    np.testing.assert_allclose(both, sep, rtol=1e-12)
    toy.forward(x, ["pool"])
    with pytest.raises(ValueError, match="not requested"):
        toy.vjp({"out": np.ones((1, 4))})


@pytest.mark.parametrize(
    "space",
    [
        InputSpace.caffe_bgr_0_255(),
        InputSpace.caffe_vgg(),
        InputSpace.tf_minus1_1(),
        InputSpace.torch_imagenet(),
        InputSpace.mnist_minus1_1(),
    ],
    ids=lambda s: s.name,
)
def test_input_space_roundtrip_and_scale(space):
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 255, (2, space.channels, 3, 4))
    x = space.to_model(p)
    np.testing.assert_allclose(space.to_pixels(x), p, atol=1e-9)
    # pixel_scale is the derivative of to_model (model channel order).
    d = space.to_model(p + 1.0) - x
    np.testing.assert_allclose(d.mean(axis=(0, 2, 3)), space.pixel_scale(), rtol=1e-9)
    lo, hi = space.bounds
    np.testing.assert_allclose(space.to_model(np.zeros((1, space.channels, 1, 1)))[0, :, 0, 0], lo)
    np.testing.assert_allclose(
        space.to_model(np.full((1, space.channels, 1, 1), 255.0))[0, :, 0, 0], hi
    )
    assert np.all(space.clip(x * 5) <= hi.reshape(1, -1, 1, 1) + 1e-12)


def test_caffe_bgr_reverses_channels():
    p = np.zeros((1, 3, 1, 1))
    p[0, 0] = 200.0  # red
    x = InputSpace.caffe_bgr_0_255().to_model(p)
    assert x[0, 2, 0, 0] == 200.0 and x[0, 0, 0, 0] == 0.0
    m = InputSpace.caffe_vgg().to_model(p)
    assert m[0, 2, 0, 0] == pytest.approx(200.0 - 123.68)


def test_blur_resize_tiles():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 9, 11)).astype(np.float32)
    c = np.full((1, 2, 9, 11), 3.0, np.float32)
    np.testing.assert_allclose(gaussian_blur(c, 1.0), c, rtol=1e-6)  # constants survive
    b = gaussian_blur(x, 1.0)
    assert b.dtype == np.float32 and b.std() < x.std()
    np.testing.assert_allclose(resize_bilinear(x, (9, 11)), x)
    up = resize_bilinear(c, (20, 7))
    assert up.shape == (1, 2, 20, 7)
    np.testing.assert_allclose(up, 3.0, rtol=1e-6)
    # Upsampling by 2 with half-pixel centres: interior samples are 3/4-1/4 mixes.
    r = np.arange(4, dtype=np.float64).reshape(1, 1, 1, 4)
    u = resize_bilinear(r, (1, 8))[0, 0, 0]
    np.testing.assert_allclose(u, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    assert tile_bounds(12, 4) == [(0, 4), (4, 8), (8, 12)]
    assert tile_bounds(10, 4) == [(0, 5), (5, 10)]  # no sliver tiles
    assert tile_bounds(3, 512) == [(0, 3)]


def test_tiled_gradient_equals_whole_for_local_objective(toy):
    """Per-pixel objectives (L2 on the input) do not care about tiles or rolls."""
    x = np.random.default_rng(6).uniform(0, 1, (1, 3, 10, 12))
    v, g = value_and_grad(toy, L2(), x, tile_size=4, rng=np.random.default_rng(0))
    np.testing.assert_allclose(g, 2 * x)
    assert v == pytest.approx(np.sum(x**2))


def test_jitter_roundtrip():
    j = Jitter(3)
    x = np.arange(2 * 5 * 6, dtype=float).reshape(1, 2, 5, 6)
    xt, st = j.before(x, np.random.default_rng(0), 0)
    assert np.array_equal(j.undo_grad(xt, st), x)


@pytest.mark.parametrize("update", ["adam", "sgd", "normalized_sgd"])
def test_optimize_input_increases_objective(toy, update):
    obj = ClassScore(1) - 0.1 * L2(center=0.5)
    x0 = np.full((1, 3, 5, 6), 0.5)
    lr = {"adam": 0.05, "sgd": 0.5, "normalized_sgd": 0.05}[update]
    x, hist = optimize_input(
        toy,
        obj,
        x0,
        steps=30,
        update=update,
        lr=lr,
        seed=0,
        progress=False,
        transforms=[Jitter(1), Blur(10, 0.5)],
    )
    assert len(hist) == 30 and hist[-1] > hist[0]
    assert x.shape == x0.shape and np.all(x >= 0) and np.all(x <= 1)
    assert np.array_equal(x0, np.full((1, 3, 5, 6), 0.5))  # x0 untouched


def test_optimize_input_seeded_octaves_callback(toy):
    obj = LayerMean("c1", squared=True)
    x0 = np.random.default_rng(7).uniform(0.2, 0.8, (1, 3, 12, 14))
    kw = dict(
        steps=4,
        update="normalized_sgd",
        lr=0.02,
        seed=3,
        progress=False,
        transforms=[Jitter(2)],
        octave_scales=[0.5, 1.0],
        tile_size=6,
    )
    a, ha = optimize_input(toy, obj, x0, **kw)
    b, hb = optimize_input(toy, obj, x0, **kw)
    assert np.array_equal(a, b) and ha == hb and len(ha) == 8
    assert a.shape == x0.shape
    calls = []
    _, h = optimize_input(
        toy,
        obj,
        x0,
        steps=10,
        lr=0.01,
        progress=False,
        callback=lambda s, x, v: calls.append(s) or s == 2,
    )
    assert calls == [0, 1, 2] and len(h) == 3
