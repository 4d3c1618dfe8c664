"""The kit's classifiers: ``fc_net`` (TwoLayerNet, FullyConnectedNet) and ``cnn``
(ThreeLayerConvNet). Each holds its parameters in a plain dict ``params`` keyed as the kit
(``W1``, ``b1``, ``gamma1``, ...) and has ``loss(X, y=None)``: scores without ``y``,
``(loss, grads)`` with it."""

from convnet.cs231n.classifiers.cnn import ThreeLayerConvNet
from convnet.cs231n.classifiers.fc_net import FullyConnectedNet, TwoLayerNet

__all__ = ["TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet"]
