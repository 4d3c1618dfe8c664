"""Feature visualisation's defaults (Fourier parameterisation, Lucid's transformation
robustness) and caricatures on the NumPy and the TF backend (see ``conftest.py``): the method
works on each, and the TF result equals the NumPy one from the same seed to float32 rounding
amplified by the steps (tolerances in pixel levels, measured differences in comments).

The NumPy backend redirects the gradient of ReLUs that are off for a whole image, the TF one
does not; on this small network (positive biases) no ReLU is off for a whole image, so the
two runs are the same computation.
"""

from __future__ import annotations

import numpy as np
from toymodel import SIZE

from convnet.inputgrad.features import caricature, feature_objective, maximize
from convnet.inputgrad.param import to_model_input


def _same(got, ref, atol, rtol=0.0):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(ref, np.float64),
                               rtol=rtol, atol=atol)  # fmt: skip


def test_feature_visualization_robust_defaults(backend, numpy_backend):
    obj = feature_objective("relu2", channel=5)
    kw = dict(size=SIZE, steps=10, seed=0, batch=2)
    r = maximize(backend, obj, **kw)
    assert r.images.shape == (2, 3, SIZE, SIZE)
    assert 0 <= r.images.min() and r.images.max() <= 255
    # The value seen through the transforms is noisy from step to step: compare the images'
    # own channel means before and after.
    x = to_model_input(backend.input_space, r.images)
    grey = to_model_input(backend.input_space, np.full_like(r.images, 127.5))
    got = backend.forward(x, ["relu2"])["relu2"][:, 5].mean()
    start = backend.forward(grey, ["relu2"])["relu2"][:, 5].mean()
    assert got > 1.2 * start
    ref = maximize(numpy_backend, obj, **kw)
    _same(r.images, ref.images, 0.05)  # measured 5e-5 levels
    _same(r.history, ref.history, 1e-5, rtol=1e-4)


def test_caricature_and_inversion(backend, numpy_backend, photo):
    kw = dict(steps=8, seed=0)
    r = caricature(backend, photo, "relu2", **kw)
    assert r.images.shape == photo.shape
    ref = caricature(numpy_backend, photo, "relu2", **kw)
    _same(r.images, ref.images, 0.05)  # measured 8e-5 levels
    _same(r.history, ref.history, 1e-5, rtol=1e-4)
    assert r.history[-1] > r.history[0]  # measured 58 -> 91
    inv = caricature(backend, photo, "relu2", invert=True, transforms="jitter", **kw)
    assert inv.history[-1] < 0.9 * inv.history[0]  # measured 0.83 -> 0.64
    ref = caricature(numpy_backend, photo, "relu2", invert=True, transforms="jitter", **kw)
    _same(inv.images, ref.images, 0.05)  # measured 2e-5 levels
