"""Methods that optimise or differentiate the *input* of a network.

One loop, two backends: every method here takes a :class:`Backend`
(:class:`NumpyBackend` for convnet models, ``convnet.interop.tf_backend.TFBackend`` for
Keras models) and works in model input space, with epsilons and clip bounds in pixel units
converted through the backend's :class:`InputSpace`.
"""

from convnet.inputgrad.backend import (
    Backend,
    InputSpace,
    NumpyBackend,
    UnknownLayerError,
    image_to_pixels,
    pixels_to_uint8,
    save_png,
)
from convnet.inputgrad.objectives import (
    L2,
    Channel,
    ClassScore,
    CrossEntropy,
    LayerMean,
    Neuron,
    Objective,
    Scaled,
    Sum,
    TotalVariation,
)

__all__ = [
    "Backend",
    "InputSpace",
    "NumpyBackend",
    "UnknownLayerError",
    "image_to_pixels",
    "pixels_to_uint8",
    "save_png",
    "Objective",
    "Sum",
    "Scaled",
    "ClassScore",
    "CrossEntropy",
    "Neuron",
    "Channel",
    "LayerMean",
    "L2",
    "TotalVariation",
]
