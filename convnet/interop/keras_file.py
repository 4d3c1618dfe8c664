"""A Keras classifier a user brings, from a ``.keras`` or ``.h5`` file, as an input-gradient
backend (the model spec ``keras-file:PATH``).

    backend = load_keras_file("my_classifier.keras")           # RGB in [0, 1] by default
    backend = load_keras_file("mnist.h5", InputSpace.mnist_minus1_1())

The file holds the architecture and the weights (``model.save``); it is loaded with
``keras.models.load_model(path, compile=False)`` (no optimizer or loss is needed to take
gradients) and wrapped in a :class:`convnet.interop.tf_backend.TFBackend`. A file records no
preprocessing, so the input space is the caller's, by default RGB in [0, 1] for three channels
and grey in [0, 1] for one: pass the right one when the model was trained otherwise (e.g.
``InputSpace.tf_minus1_1()`` for a fine-tuned MobileNet). The class scores are the last
layer's output; a softmax there (as an activation or as its own layer) is detected, so the
attacks and saliency work on logits either way.

TensorFlow is imported when a file is loaded, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from convnet.backend import InputSpace
from convnet.errors import ConvnetError

#: File suffixes ``keras.models.load_model`` reads (Keras 3 format and legacy HDF5).
KERAS_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def default_input_space(channels: int) -> InputSpace:
    """RGB in [0, 1] for 3 channels, grey in [0, 1] for 1; other counts -> ValueError."""
    if channels == 3:
        return InputSpace.unit_rgb()
    if channels == 1:
        return InputSpace.mnist_0_1()
    raise ValueError(f"a Keras image classifier takes 1 or 3 channels, this one {channels}")


def _outputs_probs(layer: Any) -> bool:
    if type(layer).__name__ == "Softmax":
        return True
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "") == "softmax"


def _load(path: Path) -> Any:
    from convnet.interop._tf import import_keras
    from convnet.interop.keras.keras_layers import (
        constant_pad_layer_class,
        exact_leaky_relu_class,
    )

    keras = import_keras()
    # saved Keras twins of convnet models use these two layers: register them first
    constant_pad_layer_class()
    exact_leaky_relu_class()
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, TypeError... by format
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvnetError(f"cannot load the Keras model {path}: {first}") from exc


def load_keras_file(path: str | os.PathLike, input_space: InputSpace | None = None) -> Any:
    """The classifier saved in a ``.keras`` / ``.h5`` file as a TF backend.

    Inputs:
    - path: a file written by ``keras.Model.save`` (suffix .keras, .h5 or .hdf5).
    - input_space: the model's preprocessing (default by channel count, see the module
      docstring).

    Returns a :class:`convnet.interop.tf_backend.TFBackend` (NCHW in, Keras layer names;
    ``backend.model`` is the Keras model).

    Raises FileNotFoundError for a missing file, ValueError for another suffix or a model
    whose input is not an NHWC image, ConvnetError when Keras cannot read the file.
    """
    from convnet.interop.tf_backend import TFBackend

    path = Path(path)
    if path.suffix.lower() not in KERAS_FILE_SUFFIXES:
        raise ValueError(
            f"keras-file: {path} must end in {', '.join(KERAS_FILE_SUFFIXES)} "
            "(a file written by keras.Model.save)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    model = _load(path)
    inputs = getattr(model, "inputs", None) or []
    shape = tuple(inputs[0].shape) if len(inputs) == 1 else ()
    if len(shape) != 4 or shape[3] is None:
        raise ValueError(
            f"keras-file: {path} must take one NHWC image input (batch, H, W, C), got "
            f"{[tuple(i.shape) for i in inputs]}"
        )
    if input_space is None:
        input_space = default_input_space(int(shape[3]))
    return TFBackend(model, input_space, output_is_probs=_outputs_probs(model.layers[-1]))


__all__ = ["KERAS_FILE_SUFFIXES", "default_input_space", "load_keras_file"]
