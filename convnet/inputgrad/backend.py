"""Backends for input-gradient methods (re-exported) and the model-spec loader.

The backend contract (:class:`InputSpace`, :class:`Backend`, :class:`NumpyBackend`) lives in
:mod:`convnet.backend`, which models and interop use too; image I/O lives in
:mod:`convnet.data.images`. Both are re-exported here so existing imports keep working.
"""

from __future__ import annotations

from pathlib import Path

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


def load_backend(spec: str, input_space: str | None = None) -> Backend:
    """A backend from a model spec, as the CLI takes it.

    Inputs:
    - spec: ``"squeezenet"`` (pretrained SqueezeNet v1.1, NumPy), ``PATH.npz`` (a model saved
      with ``Sequential.save``) or ``"keras:NAME"`` (a pretrained ``keras.applications``
      model with its ImageNet classifier, TF backend; e.g. ``keras:mobilenet_v2``).
    - input_space: name of an :data:`INPUT_SPACES` preset to override the default (for .npz
      models: grey [-1, 1] for one channel, RGB [0, 1] for three).
    """
    space = None
    if input_space is not None:
        if input_space not in INPUT_SPACES:
            raise ValueError(
                f"unknown input space {input_space!r}; choose one of {', '.join(INPUT_SPACES)}"
            )
        space = INPUT_SPACES[input_space]()
    if spec == "squeezenet":
        from convnet.models.squeezenet import SqueezeNet

        return NumpyBackend(SqueezeNet("imagenet"), space)
    if spec.startswith("keras:"):
        from convnet.interop.pretrained import keras_model

        backend = keras_model(spec.split(":", 1)[1], include_top=True)
        if space is not None:
            backend.input_space = space
        return backend
    path = Path(spec)
    if path.suffix != ".npz":
        raise ValueError(
            f"--model must be 'squeezenet', a .npz model file or keras:NAME, got {spec!r}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    from convnet.models import Sequential

    model = Sequential.load(path)
    if space is None:
        shape = model.input_shape
        grey = shape is not None and shape[0] == 1
        space = InputSpace.mnist_minus1_1() if grey else InputSpace.unit_rgb()
    return NumpyBackend(model, space)
