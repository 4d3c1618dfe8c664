"""Named classic models, all ``Sequential`` subclasses with seeded initialisation.

* ``FullyConnectedNet``: affine - [batch norm] - relu - [dropout], repeated, then affine.
* ``BasicConvNet``: conv - relu - 2x2 max-pool - affine - relu - affine (softmax loss), the
  the model a student writes first; layers ``conv1, relu1, pool1, flatten, fc1, relu2, out``.
* ``ThreeLayerConvNet``: the same architecture with the cs231n defaults (7x7 filters, normal
  init with ``weight_scale=1e-3``, inputs ``(3, 32, 32)``).
* ``MnistConvNet``: one wide convolution: 5 filters of 11x11 (valid), relu, flatten,
  dense 10 (softmax loss); inputs are MNIST digits scaled to [-1, 1] (``preprocess``).

A saved named model loads back (``Sequential.load``) as a plain ``Sequential`` with the same
layers and names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convnet.models.modules import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Module,
    ReLU,
)
from convnet.models.sequential import Sequential

__all__ = ["FullyConnectedNet", "BasicConvNet", "ThreeLayerConvNet", "MnistConvNet"]


def _dims(input_dim: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(input_dim, int | np.integer):
        return (int(input_dim),)
    return tuple(int(d) for d in input_dim)


class FullyConnectedNet(Sequential):
    """Fully connected network of any depth (cs231n ``FullyConnectedNet``).

    ``{fc - [bn] - relu - [dropout]} x len(hidden_dims) - out``, softmax loss.

    Inputs:
    - hidden_dims: sizes of the hidden layers, e.g. ``[100, 50]``.
    - input_dim: ``D`` or an input shape such as ``(1, 28, 28)`` (then a ``flatten`` layer
      comes first); input ``(N, D)`` or ``(N, *input_dim)``.
    - num_classes: output size; the output ``out`` is ``(N, num_classes)`` scores.
    - dropout: drop probability (0 disables the dropout layers).
    - batchnorm: insert ``bn{i}`` after every hidden affine layer.
    - reg: L2 strength. init: ``'he'``, ``'xavier'`` or a normal std. seed, dtype.
    Layer names: ``fc1, bn1, relu1, dropout1, fc2, ..., out``.
    """

    def __init__(
        self,
        hidden_dims: Sequence[int],
        input_dim: int | Sequence[int] = 3 * 32 * 32,
        num_classes: int = 10,
        dropout: float = 0.0,
        batchnorm: bool = False,
        reg: float = 0.0,
        init: str | float = "he",
        seed: int | None = 0,
        dtype: Any = np.float32,
        name: str = "fully_connected_net",
    ) -> None:
        rng = np.random.default_rng(seed)
        dims = _dims(input_dim)
        layers: list[Module] = []
        if len(dims) > 1:
            layers.append(Flatten(name="flatten"))
        d_in = int(np.prod(dims))
        for i, h in enumerate(hidden_dims, start=1):
            layers.append(Dense(d_in, h, name=f"fc{i}", dtype=dtype, init=init, seed=rng))
            if batchnorm:
                layers.append(BatchNorm(h, name=f"bn{i}", dtype=dtype))
            layers.append(ReLU(name=f"relu{i}"))
            if dropout:
                layers.append(Dropout(dropout, seed=int(rng.integers(2**31)), name=f"dropout{i}"))
            d_in = h
        layers.append(Dense(d_in, num_classes, name="out", dtype=dtype, init=init, seed=rng))
        super().__init__(layers, input_shape=dims, loss="softmax", reg=reg, name=name)


class BasicConvNet(Sequential):
    """conv - relu - 2x2 max-pool - affine - relu - affine, softmax loss.

    Inputs:
    - input_dim: ``(C, H, W)``, e.g. ``(1, 28, 28)`` for MNIST, ``(3, 32, 32)`` for CIFAR-10.
    - num_filters, filter_size: the conv layer's ``F`` and ``HH = WW``.
    - pad: conv zero padding; default ``(filter_size - 1) // 2`` keeps H and W (odd sizes).
    - hidden_dim: size of ``fc1``. num_classes: size of ``out``.
    - reg: L2 strength. init: ``'he'``, ``'xavier'`` or a float normal std. seed, dtype.

    Shapes: ``(N, C, H, W) -conv1-> (N, F, H', W') -pool1-> (N, F, H'/2, W'/2) -flatten->
    (N, F*H'/2*W'/2) -fc1-> (N, hidden_dim) -out-> (N, num_classes)``.
    """

    def __init__(
        self,
        input_dim: Sequence[int] = (1, 28, 28),
        num_filters: int = 32,
        filter_size: int = 5,
        hidden_dim: int = 100,
        num_classes: int = 10,
        pad: int | None = None,
        reg: float = 0.0,
        init: str | float = "he",
        seed: int | None = 0,
        dtype: Any = np.float32,
        name: str = "basic_convnet",
    ) -> None:
        dims = _dims(input_dim)
        if len(dims) != 3:
            raise ValueError(f"{name}: input_dim must be (C, H, W), got {input_dim!r}")
        rng = np.random.default_rng(seed)
        c, h, w = dims
        pad = (filter_size - 1) // 2 if pad is None else int(pad)
        conv = Conv2D(c, num_filters, filter_size, pad=pad, name="conv1", dtype=dtype,
                      init=init, seed=rng)
        pool = MaxPool2D(2, 2, name="pool1")
        _, hp, wp = pool.output_shape(conv.output_shape(dims))
        layers: list[Module] = [
            conv,
            ReLU(name="relu1"),
            pool,
            Flatten(name="flatten"),
            Dense(num_filters * hp * wp, hidden_dim, name="fc1", dtype=dtype, init=init,
                  seed=rng),
            ReLU(name="relu2"),
            Dense(hidden_dim, num_classes, name="out", dtype=dtype, init=init, seed=rng),
        ]
        super().__init__(layers, input_shape=dims, loss="softmax", reg=reg, name=name)


class ThreeLayerConvNet(BasicConvNet):
    """The cs231n three-layer convnet: BasicConvNet's architecture with cs231n defaults
    (inputs ``(3, 32, 32)``, 32 filters of 7x7 with 'same' padding, hidden 100, weights
    drawn from a normal with std ``weight_scale=1e-3``, biases zero)."""

    def __init__(
        self,
        input_dim: Sequence[int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        seed: int | None = 0,
        dtype: Any = np.float32,
        name: str = "three_layer_convnet",
    ) -> None:
        super().__init__(
            input_dim, num_filters, filter_size, hidden_dim, num_classes, pad=None, reg=reg,
            init=float(weight_scale), seed=seed, dtype=dtype, name=name,
        )


class MnistConvNet(Sequential):
    """A one-convolution MNIST network: ``conv1`` (5 filters 11x11, no padding) - relu -
    flatten - ``out`` (dense 10), softmax loss; Glorot-uniform init as Keras.

    Input ``(N, 1, 28, 28)`` scaled to [-1, 1] (``MnistConvNet.preprocess``); conv1 output
    ``(N, 5, 18, 18)``, flatten ``(N, 1620)``, out ``(N, 10)`` scores.
    """

    #: value range of the inputs the network is trained on
    input_range = (-1.0, 1.0)

    def __init__(
        self,
        input_dim: Sequence[int] = (1, 28, 28),
        num_filters: int = 5,
        filter_size: int = 11,
        num_classes: int = 10,
        reg: float = 0.0,
        init: str | float = "xavier",
        seed: int | None = 0,
        dtype: Any = np.float32,
        name: str = "mnist_convnet",
    ) -> None:
        dims = _dims(input_dim)
        if len(dims) != 3:
            raise ValueError(f"{name}: input_dim must be (C, H, W), got {input_dim!r}")
        rng = np.random.default_rng(seed)
        conv = Conv2D(dims[0], num_filters, filter_size, name="conv1", dtype=dtype, init=init,
                      seed=rng)
        f, ho, wo = conv.output_shape(dims)
        layers: list[Module] = [
            conv,
            ReLU(name="relu1"),
            Flatten(name="flatten"),
            Dense(f * ho * wo, num_classes, name="out", dtype=dtype, init=init, seed=rng),
        ]
        super().__init__(layers, input_shape=dims, loss="softmax", reg=reg, name=name,
                         input_space="mnist_minus1_1" if dims[0] == 1 else None)

    @staticmethod
    def preprocess(images: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """uint8 digits ``(N, 28, 28)``/``(N, 1, 28, 28)`` in 0..255 (or floats in [0, 1]) to
        ``(N, 1, 28, 28)`` in [-1, 1], i.e. ``(x/255 - 0.5) * 2``."""
        x = np.asarray(images)
        scale = 255.0 if x.dtype == np.uint8 or (x.size and x.max() > 1.0) else 1.0
        x = (x.astype(dtype) / scale - 0.5) * 2
        if x.ndim == 3:
            x = x[:, None]
        return x.astype(dtype, copy=False)
