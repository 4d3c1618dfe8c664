"""Methods that optimise or differentiate the *input* of a network.

One loop, two backends: every method here takes a :class:`Backend`
(:class:`NumpyBackend` for convnet models, ``convnet.interop.tf_backend.TFBackend`` for
Keras models) and works in model input space, with epsilons and clip bounds in pixel units
converted through the backend's :class:`InputSpace`. The methods that optimise an image
(class and feature visualisation, DeepDream, style transfer, preferred inputs) are presets on
one loop, :func:`render` (an objective, a parameterisation, an optimiser, transforms).
"""

from convnet.inputgrad.adversarial import (
    AttackResult,
    fgsm,
    fooling_image,
    iterative_fgsm,
    quantize,
)
from convnet.inputgrad.attacks_minimal import carlini_wagner_l2, deepfool
from convnet.inputgrad.attribution import (
    grad_cam,
    grad_cam_plus_plus,
    guided_backprop,
    guided_grad_cam,
    integrated_gradients,
    layer_gradient,
    smoothgrad,
)
from convnet.inputgrad.backend import (
    Backend,
    InputSpace,
    NumpyBackend,
    UnknownLayerError,
    image_to_pixels,
    pixels_to_uint8,
    save_png,
)
from convnet.inputgrad.classviz import class_visualization
from convnet.inputgrad.features import caricature, maximize, visualize_channels
from convnet.inputgrad.objectives import (
    L2,
    ActivationDistance,
    ActivationMatch,
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
from convnet.inputgrad.occlusion import occlusion
from convnet.inputgrad.optimize import Monitor, Rendering, optimize_input, render, value_and_grad
from convnet.inputgrad.param import FourierParam, InputParam, PixelParam
from convnet.inputgrad.preferred import preferred_input
from convnet.inputgrad.saliency import input_gradient_pixels, saliency_map
from convnet.inputgrad.transforms import Blur, Clip, Jitter, Transform

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
    "ActivationMatch",
    "ActivationDistance",
    "maximize",
    "visualize_channels",
    "caricature",
    "L2",
    "TotalVariation",
    "optimize_input",
    "render",
    "Rendering",
    "Monitor",
    "InputParam",
    "PixelParam",
    "FourierParam",
    "value_and_grad",
    "Transform",
    "Jitter",
    "Blur",
    "Clip",
    "saliency_map",
    "input_gradient_pixels",
    "class_visualization",
    "AttackResult",
    "deepfool",
    "carlini_wagner_l2",
    "layer_gradient",
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_backprop",
    "guided_grad_cam",
    "integrated_gradients",
    "smoothgrad",
    "occlusion",
    "fgsm",
    "iterative_fgsm",
    "fooling_image",
    "quantize",
    "preferred_input",
]
