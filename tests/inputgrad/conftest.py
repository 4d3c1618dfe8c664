"""Fixtures for the tests that run every input-gradient method on both backends
(``test_backends.py``): one small network (``toymodel.small_net``) behind the NumPy backend and,
as its ``to_keras`` twin, behind the TF backend."""

from __future__ import annotations

import numpy as np
import pytest
from toymodel import SIZE, make_backend, small_net


@pytest.fixture(scope="session")
def twin_model():
    return small_net()


@pytest.fixture(scope="session")
def numpy_backend(twin_model):
    """The reference: the NumPy backend over the model."""
    return make_backend("numpy", twin_model)


@pytest.fixture(scope="session", params=["numpy", pytest.param("tf", marks=pytest.mark.tf)])
def backend(request, twin_model, numpy_backend):
    """Each backend in turn (the TF case is marked ``tf``)."""
    return numpy_backend if request.param == "numpy" else make_backend("tf", twin_model)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A smooth RGB test image, pixels (1, 3, SIZE, SIZE) float32 in [0, 255]."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    img = np.stack([128 + 100 * np.sin(6 * x), 128 + 90 * np.cos(5 * y), 255 * x * y])
    noise = np.random.default_rng(0).uniform(-10, 10, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.float32)[None]
