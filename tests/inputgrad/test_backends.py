"""Every input-gradient method is written once and runs on the NumPy and the TensorFlow backend.

Each test runs one method on ``backend`` (the NumPy backend, then the TF backend over the
``to_keras`` twin of the same network, see ``conftest.py``) and checks two things:

* the method does what it is for on that backend (the score, loss or objective moves the
  right way, the constraints hold);
* the result equals the NumPy backend's result from the same seed. The two backends run the
  same float32 network with sums in another order, so results agree to float32 rounding
  amplified by the steps taken; each tolerance below is in pixel levels (0..255) or relative,
  with the difference measured on this machine in a comment.

Budget: 24x24 images and a handful of steps; the whole file takes about 10 s of CPU after the
TensorFlow import.
"""

from __future__ import annotations

import numpy as np
import pytest
from toymodel import SIZE, make_backend

from convnet.inputgrad import (
    ClassScore,
    CrossEntropy,
    Jitter,
    LayerMean,
    class_visualization,
    fgsm,
    fooling_image,
    iterative_fgsm,
    optimize_input,
    preferred_input,
    saliency_map,
)
from convnet.inputgrad.deepdream import deepdream, dream_objective, zoom_dream
from convnet.inputgrad.features import feature_objective, maximize, visualize_channels
from convnet.inputgrad.param import to_model_input
from convnet.inputgrad.style import style_transfer

S = SIZE  # image side (the twin model accepts any size)


def _same(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float = 0.0) -> None:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


def _pixels(b, x):
    return b.input_space.to_pixels(x)


def _dream_value(b, layers, pixels):
    obj = dream_objective(layers)
    return obj.value(b.forward(to_model_input(b.input_space, pixels), obj.layers))


# --------------------------------------------------------------------- gradients, attacks
def test_saliency_and_smoothgrad(backend, numpy_backend, photo):
    x = backend.input_space.to_model(photo)
    sal = saliency_map(backend, x, 2)
    assert sal.shape == (1, S, S) and sal.min() >= 0 and sal.max() > 0
    _same(sal, saliency_map(numpy_backend, x, 2), 0, rtol=1e-4)  # measured 2e-6 rel
    smooth = saliency_map(backend, x, 2, smoothgrad=3, noise=0.1, seed=1)
    _same(smooth, saliency_map(numpy_backend, x, 2, smoothgrad=3, noise=0.1, seed=1), 1e-6,
          rtol=1e-4)  # fmt: skip


def test_fgsm_and_pgd(backend, numpy_backend, photo):
    x = backend.input_space.to_model(photo)
    label = int(numpy_backend.scores(x).argmax())
    ce = CrossEntropy(label)
    r = fgsm(backend, x, label, eps=4.0)
    assert backend.value_and_grad(ce, r.x_adv)[0] > backend.value_and_grad(ce, x)[0]
    np.testing.assert_allclose(r.linf, 4.0, rtol=1e-4)
    # A sign step: equal unless a gradient entry is at float32 rounding of zero (measured: 0).
    ref = fgsm(numpy_backend, x, label, 4.0)
    _same(_pixels(backend, r.x_adv), _pixels(numpy_backend, ref.x_adv), 1e-3)
    kw = dict(eps=6.0, step=1.0, iterations=6, random_start=True, seed=0)
    p = iterative_fgsm(backend, x, label, **kw)
    assert p.history[-1] > p.history[0] and p.linf[0] <= 6.0 + 1e-3
    ref = iterative_fgsm(numpy_backend, x, label, **kw)
    _same(_pixels(backend, p.x_adv), _pixels(numpy_backend, ref.x_adv), 1e-3)  # measured 0
    t = iterative_fgsm(backend, x, (label + 1) % 5, targeted=True, **kw)
    assert t.history[-1] < t.history[0]  # the target's cross-entropy went down


def test_fooling_image(backend, numpy_backend, photo):
    x = backend.input_space.to_model(photo)
    target = int(numpy_backend.scores(x).argmin())
    r = fooling_image(backend, x, target, max_steps=50, lr=30.0)
    assert r.success[0] and r.pred[0] == target
    ref = fooling_image(numpy_backend, x, target, max_steps=50, lr=30.0)
    assert r.steps == ref.steps
    _same(_pixels(backend, r.x_adv), _pixels(numpy_backend, ref.x_adv), 1e-2)  # measured 4e-5


# ------------------------------------------------------------------- optimisation presets
def test_optimize_input_generic_loop(backend, numpy_backend, photo):
    x0 = backend.input_space.to_model(photo)
    obj = ClassScore(1) + 0.5 * LayerMean("relu1")
    kw = dict(steps=5, update="adam", lr=0.05, transforms=[Jitter(2)], seed=0, progress=False,
              octave_scales=[0.7, 1.0])  # fmt: skip
    x, h = optimize_input(backend, obj, x0, **kw)
    assert h[-1] > h[0] and x.shape == x0.shape
    xr, hr = optimize_input(numpy_backend, obj, x0, **kw)
    _same(_pixels(backend, x), _pixels(numpy_backend, xr), 0.01)  # measured 3e-5 levels
    _same(h, hr, 1e-4, rtol=1e-5)


def test_class_visualization(backend, numpy_backend):
    kw = dict(steps=10, size=S, seed=3, progress=False, blur_every=3)
    x, h = class_visualization(backend, 3, **kw)
    assert h[-1] > h[0]
    q = _pixels(backend, x)
    assert q.min() >= -1e-3 and q.max() <= 255 + 1e-3
    xr, hr = class_visualization(numpy_backend, 3, **kw)
    _same(q, _pixels(numpy_backend, xr), 0.01)  # measured 3e-5 levels
    _same(h, hr, 1e-4, rtol=1e-5)


def test_preferred_input(twin_model, backend):
    kind = "numpy" if type(backend).__name__ == "NumpyBackend" else "tf"
    b = make_backend(kind, twin_model, fixed_size=True)
    x, h = preferred_input(b, 4, steps=15, lr=0.05)
    assert h[-1] > h[0] and x.shape == (1, 3, S, S)
    xr, hr = preferred_input(make_backend("numpy", twin_model, fixed_size=True), 4, steps=15,
                             lr=0.05)  # fmt: skip
    _same(x, xr, 1e-4)  # model units; measured 6e-7
    _same(h, hr, 1e-6, rtol=1e-5)


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_feature_visualization(backend, numpy_backend, param):
    obj = feature_objective("relu2", channel=5)
    # A random shift only; the default robust transforms: test_features_backends.py.
    kw = dict(size=S, steps=8, learning_rate=0.05, init="random", param=param, seed=0,
              init_std=0.5 if param == "pixel" else 0.1, transforms="jitter")  # fmt: skip
    r = maximize(backend, obj, **kw)
    assert r.history[-1] > 1.5 * r.history[0]
    assert r.images.shape == (1, 3, S, S) and 0 <= r.images.min() <= r.images.max() <= 255
    ref = maximize(numpy_backend, obj, **kw)
    _same(r.images, ref.images, 0.05)  # measured 9e-4 levels (pixel), 2e-5 (fourier)
    _same(r.history, ref.history, 1e-5, rtol=1e-4)


def test_feature_visualization_channels_with_diversity(backend, numpy_backend):
    kw = dict(size=S, steps=5, learning_rate=0.05, init="random", init_std=0.5, seed=0,
              diversity=1.0)  # fmt: skip
    r = visualize_channels(backend, "relu2", [1, 5], **kw)
    assert r.images.shape == (2, 3, S, S) and r.history[-1] > r.history[0]
    ref = visualize_channels(numpy_backend, "relu2", [1, 5], **kw)
    _same(r.images, ref.images, 0.05)  # measured 2e-3 levels
    _same(r.history, ref.history, 1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ["simple", "octaves", "tiled"])
def test_deepdream(backend, numpy_backend, photo, variant):
    layers = {"relu1": 1.0, "relu2": 0.5}
    kw = dict(variant=variant, steps=4, step_size=0.02, octaves=range(-1, 2), tile_size=12,
              seed=0)  # fmt: skip
    r = deepdream(backend, photo, layers, **kw)
    assert r.image.shape == photo.shape
    assert _dream_value(backend, layers, r.image) > _dream_value(backend, layers, photo)
    assert len(r.octaves) == (1 if variant == "simple" else 3)
    ref = deepdream(numpy_backend, photo, layers, **kw)
    _same(r.image, ref.image, 0.05)  # measured 3e-5 levels
    _same(r.history, ref.history, 1e-5, rtol=1e-4)


def test_zoom_dream(backend, numpy_backend, photo):
    kw = dict(zoom=1.25, zoom_steps=2, steps=4, max_shift=3, learning_rate=0.02, seed=0)
    r = zoom_dream(backend, photo, ["relu2"], **kw)
    assert [o.shape[2:] for o in r.octaves] == [(S, S), (30, 30)]
    assert r.history[3] > r.history[0]
    ref = zoom_dream(numpy_backend, photo, ["relu2"], **kw)
    _same(r.image, ref.image, 0.05)  # measured 7e-5 levels
    _same(r.history, ref.history, 1e-5, rtol=1e-4)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_style_transfer(backend, numpy_backend, photo, optimizer):
    style = photo[:, ::-1, ::-1, :].copy()  # another colour layout and texture
    kw = dict(style_layers=["relu1", "relu2"], content_layer="relu2", style_weights=1e4,
              content_weight=1.0, tv_weight=1e-4, steps=6, optimizer=optimizer)  # fmt: skip
    r = style_transfer(backend, photo, style, **kw)
    h = r.history
    assert h["content"][0] == pytest.approx(0.0, abs=1e-9)  # started from the content image
    assert h["style"][-1] < h["style"][0]
    assert set(h) == {"style", "content", "tv", "total", "style/relu1", "style/relu2"}
    ref = style_transfer(numpy_backend, photo, style, **kw)
    _same(r.image, ref.image, 0.05)  # measured 2e-5 levels (adam), 2e-4 (L-BFGS)
    _same(h["total"], ref.history["total"], 1e-6, rtol=1e-4)
