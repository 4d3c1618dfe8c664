"""Saliency, attacks and preferred inputs on small models (fast; no pretrained weights).

The MNIST preferred-input test trains MnistConvNet on 1000 digits (about 10 s) and checks
the acceptance criterion: each digit's preferred input is classified as that digit with
p > 0.99.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data
from toymodel import ToyModel, num_grad

from convnet.inputgrad import (
    ClassScore,
    CrossEntropy,
    InputSpace,
    NumpyBackend,
    fgsm,
    fooling_image,
    iterative_fgsm,
    preferred_input,
    saliency_map,
)

BGR = InputSpace("BGR", scale=1 / 100.0, mean=(0.5, 0.2, 0.1), std=(2.0, 1.0, 0.5))


@pytest.fixture
def toy():
    return NumpyBackend(ToyModel(h=6, w=7, seed=2), BGR)


def pixels(seed=0, n=1):
    return np.random.default_rng(seed).uniform(20, 235, (n, 3, 6, 7))


def test_saliency_is_max_abs_pixel_gradient(toy):
    p = pixels()
    x = BGR.to_model(p)
    sal = saliency_map(toy, x, 2)

    def score(pp):
        return toy.value_and_grad(ClassScore(2), BGR.to_model(pp))[0]

    g = num_grad(score, p.copy(), h=1e-3)
    assert sal.shape == (1, 6, 7) and sal.dtype == np.float32
    np.testing.assert_allclose(sal[0], np.abs(g[0]).max(axis=0), rtol=1e-5, atol=1e-9)


def test_smoothgrad(toy):
    x = BGR.to_model(pixels())
    plain = saliency_map(toy, x, 1)
    # Without noise SmoothGrad is the plain map; with noise it is seeded.
    np.testing.assert_allclose(saliency_map(toy, x, 1, smoothgrad=5, noise=0.0), plain, rtol=1e-6)
    a = saliency_map(toy, x, 1, smoothgrad=5, noise=0.2, seed=1, batch_size=2)
    b = saliency_map(toy, x, 1, smoothgrad=5, noise=0.2, seed=1)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(a, plain)


def test_fgsm_pixel_units_and_direction(toy):
    x = BGR.to_model(pixels(1, n=2))
    ce0 = toy.value_and_grad(CrossEntropy([0, 3]), x)[0]
    r = fgsm(toy, x, [0, 3], eps=3.0)
    d = BGR.to_pixels(r.x_adv) - BGR.to_pixels(x)
    np.testing.assert_allclose(np.abs(d).max(axis=(1, 2, 3)), 3.0, rtol=1e-9)
    np.testing.assert_allclose(r.linf, 3.0, rtol=1e-9)
    np.testing.assert_allclose(r.l2, np.sqrt((d**2).reshape(2, -1).sum(1)), rtol=1e-9)
    assert toy.value_and_grad(CrossEntropy([0, 3]), r.x_adv)[0] > ce0  # loss went up
    t = fgsm(toy, x, [1, 1], eps=3.0, targeted=True)
    assert (
        toy.value_and_grad(CrossEntropy([1, 1]), t.x_adv)[0]
        < toy.value_and_grad(CrossEntropy([1, 1]), x)[0]
    )
    assert t.target is not None and "target 1" in t.summary()


def test_iterative_fgsm_stays_in_ball_and_range(toy):
    p = pixels(2)
    p[0, 0, 0, 0] = 254.5  # near the top of the range: clipping must apply
    x = BGR.to_model(p)
    r = iterative_fgsm(toy, x, 0, eps=4.0, step=1.0, iterations=8, random_start=True, seed=0)
    d = BGR.to_pixels(r.x_adv) - p
    assert np.abs(d).max() <= 4.0 + 1e-9 and r.steps == 8 and len(r.history) == 8
    q = BGR.to_pixels(r.x_adv)
    assert q.min() >= -1e-9 and q.max() <= 255 + 1e-9
    r1 = iterative_fgsm(toy, x, 0, eps=4.0)  # Kurakin defaults: ceil(min(8, 5)) steps
    assert r1.steps == 5


class Linear:
    """out = flatten(x) @ W: class directions are nearly orthogonal in 3*6*7 dimensions."""

    layer_names = ["out"]
    input_shape = (3, 6, 7)
    name = "linear"

    def __init__(self):
        self.W = np.random.default_rng(4).standard_normal((3 * 6 * 7, 5))

    def get_layer(self, name):
        return Linear()  # no Dense/Flatten class name: treated as any-size (not used)

    def forward_layers(self, x, names, train=False):
        self.n = x.shape[0]
        return {"out": x.reshape(self.n, -1) @ self.W}

    def backward_layers(self, up):
        return (up["out"] @ self.W.T).reshape(self.n, 3, 6, 7)


def test_fooling_image_reaches_target():
    b = NumpyBackend(Linear(), BGR, fixed_size=True)
    x = BGR.to_model(pixels(3))
    orig = int(b.scores(x).argmax())
    for target in {0, 4} - {orig}:
        r = fooling_image(b, x, target, max_steps=100, lr=20.0)
        assert r.success[0] and r.pred[0] == target and 1 <= r.steps < 100
        assert r.history[-1] > r.history[0]
        # It stops at the first step where the target wins: one step less does not fool.
        r1 = fooling_image(b, x, target, max_steps=r.steps - 1, lr=20.0)
        assert not r1.success[0]
        q = fooling_image(b, x, target, max_steps=100, lr=20.0, quantized=True)
        pix = BGR.to_pixels(q.x_adv)
        np.testing.assert_allclose(pix, np.rint(pix), atol=1e-9)


def test_fixed_size_model_errors():
    from convnet.models import MnistConvNet

    b = NumpyBackend(MnistConvNet(), InputSpace.mnist_minus1_1())
    assert b.input_shape == (1, 28, 28)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\).*got \(1, 1, 32, 32\)"):
        saliency_map(b, np.zeros((1, 1, 32, 32), np.float32), 3)
    with pytest.raises(ValueError, match=r"class index 10 out of range \[0, 10\)"):
        preferred_input(b, 10)


@pytest.mark.data
def test_mnist_preferred_inputs_are_confident():
    need_data("mnist/train-images-idx3-ubyte.gz")
    from convnet.data.mnist import load_mnist
    from convnet.models import MnistConvNet
    from convnet.optim import adam

    d = load_mnist(dtype="float32", value_range=(-1.0, 1.0))
    model = MnistConvNet(seed=0)
    # A quick model (1000 digits, one pass, ~80% test accuracy) keeps this test cheap; the
    # experiment trains properly. The preferred inputs are confident either way.
    X, y = d["X_train"][:1000], d["y_train"][:1000]
    cfg: dict = {k: {"learning_rate": 5e-3} for k in model.params}
    for i in range(0, len(X), 50):
        _, grads = model.loss(X[i : i + 50], y[i : i + 50])
        for k in list(model.params):
            model.params[k], cfg[k] = adam(model.params[k], grads[k], cfg[k])
    assert model.accuracy(d["X_test"][:1000], d["y_test"][:1000]) > 0.7
    b = NumpyBackend(model, InputSpace.mnist_minus1_1())
    xs = []
    for digit in range(10):
        x, hist = preferred_input(b, digit)
        assert x.shape == (1, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
        assert hist[-1] > hist[0]
        xs.append(x)
    p = b.predict_proba(np.concatenate(xs))
    assert list(p.argmax(axis=1)) == list(range(10))
    assert p[np.arange(10), np.arange(10)].min() > 0.99
