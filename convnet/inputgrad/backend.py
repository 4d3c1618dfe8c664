"""Backends for input-gradient methods and the model-spec loader (re-exported).

The backend contract (:class:`InputSpace`, :class:`Backend`, :class:`NumpyBackend`) lives in
:mod:`convnet.backend`, which models and interop use too; image I/O lives in
:mod:`convnet.data.images`; ``load_backend`` (``"squeezenet"``, ``PATH.npz``, ``keras:NAME``)
lives in :mod:`convnet.model_spec`. All are re-exported here so existing imports keep working.
"""

from __future__ import annotations

from convnet.backend import (
    INPUT,
    INPUT_SPACES,
    OUTPUT,
    PIXEL_MAX,
    Backend,
    InputSpace,
    NumpyBackend,
    UnknownLayerError,
)
from convnet.data.images import image_to_pixels, pixels_to_uint8, save_png
from convnet.model_spec import load_backend

__all__ = [
    "INPUT",
    "INPUT_SPACES",
    "OUTPUT",
    "PIXEL_MAX",
    "Backend",
    "InputSpace",
    "NumpyBackend",
    "UnknownLayerError",
    "image_to_pixels",
    "load_backend",
    "pixels_to_uint8",
    "save_png",
]
