"""Layer objects, the ``Sequential`` container and named models (see docs/internals.md).

``squeezenet`` and ``autoencoder`` are submodules imported on their own
(``from convnet.models.squeezenet import SqueezeNet``).
"""

from convnet.models.classic import (
    BasicConvNet,
    FullyConnectedNet,
    MnistConvNet,
    ThreeLayerConvNet,
)
from convnet.models.init import he_normal, init_weight, xavier_uniform
from convnet.models.modules import (
    LAYER_REGISTRY,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Fire,
    Flatten,
    GlobalAvgPool,
    LeakyReLU,
    MaxPool2D,
    Module,
    ReLU,
    Reshape,
    Sigmoid,
    Tanh,
    layer_from_config,
    register_layer,
)
from convnet.models.sequential import LOSSES, Sequential

__all__ = [
    "Module",
    "Dense",
    "Conv2D",
    "ConvTranspose2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool",
    "Flatten",
    "Reshape",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Dropout",
    "BatchNorm",
    "Fire",
    "LAYER_REGISTRY",
    "register_layer",
    "layer_from_config",
    "Sequential",
    "LOSSES",
    "FullyConnectedNet",
    "BasicConvNet",
    "ThreeLayerConvNet",
    "MnistConvNet",
    "init_weight",
    "he_normal",
    "xavier_uniform",
]
