"""SqueezeNet v1.1 (Iandola et al. 2016; DeepScale Caffe release) as a convnet ``Sequential``.

Layout (Caffe, NCHW, input 227x227 **BGR 0..255, no mean subtraction**)::

    conv1   3x3/2, 64 filters, no padding         (N, 64, 113, 113)
    relu1, pool1  max 3x3/2, ceil rounding        (N, 64, 56, 56)
    fire2, fire3  squeeze 16, expand 64+64        (N, 128, 56, 56)
    pool3                                         (N, 128, 28, 28)
    fire4, fire5  squeeze 32, expand 128+128      (N, 256, 28, 28)
    pool5                                         (N, 256, 14, 14)
    fire6, fire7  squeeze 48, expand 192+192      (N, 384, 14, 14)
    fire8, fire9  squeeze 64, expand 256+256      (N, 512, 14, 14)
    drop9   dropout 0.5 (identity at test time)
    conv10  1x1, 1000 filters; relu10             (N, 1000, 14, 14)
    pool10  global average                        (N, 1000)   <- logits (pre-softmax)

Only the expand3x3 convolutions are padded (pad 1). The model is fully convolutional up to
the global pool, so other image sizes work too (at least 35x35... fewer pixels run out of
feature map); 227 is what the weights were trained at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from convnet.backend import InputSpace, NumpyBackend
from convnet.data.store import find_data_file
from convnet.errors import CheckpointError
from convnet.models.modules import Conv2D, Dropout, Fire, GlobalAvgPool, MaxPool2D, ReLU
from convnet.models.sequential import Sequential

WEIGHTS_RELPATH = "squeezenet/squeezenet1.1_fp16_weights.npz"
IMAGE_SIZE = 227

# (name, in_channels, squeeze, expand1x1, expand3x3)
FIRES = [
    ("fire2", 64, 16, 64, 64),
    ("fire3", 128, 16, 64, 64),
    ("fire4", 128, 32, 128, 128),
    ("fire5", 256, 32, 128, 128),
    ("fire6", 256, 48, 192, 192),
    ("fire7", 384, 48, 192, 192),
    ("fire8", 384, 64, 256, 256),
    ("fire9", 512, 64, 256, 256),
]


def squeezenet_input_space() -> InputSpace:
    """The input space of the DeepScale weights: BGR, 0..255, no mean."""
    return InputSpace.caffe_bgr_0_255()


def find_weights(path: str | os.PathLike | None = None) -> Path:
    """Locate ``squeezenet/squeezenet1.1_fp16_weights.npz`` (explicit path, data dirs, cache)."""
    if path is not None and Path(path).is_file():
        return Path(path)
    return find_data_file(WEIGHTS_RELPATH, path)


def SqueezeNet(
    weights: str | os.PathLike | None = "imagenet",
    dtype: Any = np.float32,
    seed: int | None = 0,
    num_classes: int = 1000,
    image_size: int = IMAGE_SIZE,
) -> Sequential:
    """Build SqueezeNet v1.1.

    Inputs:
    - weights: ``'imagenet'`` (the DeepScale fp16 file found via the data store), a path to
      an ``.npz`` with the 52 arrays ``conv1/W``, ``fire2/squeeze1x1/W``, ..., ``conv10/b``,
      or None (random He initialisation).
    - dtype: parameter dtype (the fp16 file is converted to it).
    - seed: for random initialisation and dropout.
    - num_classes: conv10 filters (must be 1000 with pretrained weights).
    - image_size: the ``input_shape`` recorded in the model (summary, Keras twin); the
      NumPy model itself takes any size >= 35.

    Returns a ``Sequential`` taking (N, 3, H, W) BGR 0..255 images (227x227 as trained) and
    returning logits (N, num_classes); ``model.input_space`` is set accordingly.
    """
    rng = np.random.default_rng(seed)
    layers: list = [
        Conv2D(3, 64, 3, stride=2, pad=0, name="conv1", dtype=dtype, seed=rng),
        ReLU(name="relu1"),
        MaxPool2D(3, 2, ceil_mode=True, name="pool1"),
    ]
    for name, cin, s, e1, e3 in FIRES:
        layers.append(Fire(cin, s, e1, e3, name=name, dtype=dtype, seed=rng))
        if name in ("fire3", "fire5"):
            layers.append(MaxPool2D(3, 2, ceil_mode=True, name=f"pool{name[-1]}"))
    layers += [
        Dropout(0.5, seed=int(rng.integers(2**31)), name="drop9"),
        Conv2D(512, num_classes, 1, name="conv10", dtype=dtype, seed=rng),
        ReLU(name="relu10"),
        GlobalAvgPool(name="pool10"),
    ]
    model = Sequential(
        layers, input_shape=(3, image_size, image_size), loss="softmax", name="squeezenet"
    )
    model.input_space = squeezenet_input_space()  # read by NumpyBackend
    if weights is not None:
        path = find_weights(None if weights == "imagenet" else weights)
        load_squeezenet_weights(model, path)
    return model


def load_squeezenet_weights(model: Sequential, path: str | os.PathLike) -> Sequential:
    """Copy the arrays of a SqueezeNet ``.npz`` into ``model`` (cast to its dtype).

    Raises CheckpointError naming missing, unexpected or mis-shaped arrays.
    """
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "__config__"}
    want = {k: tuple(v.shape) for k, v in model.params.items()}
    missing = sorted(set(want) - set(arrays))
    extra = sorted(set(arrays) - set(want))
    bad = [
        f"{k}: file {arrays[k].shape} vs model {want[k]}"
        for k in want
        if k in arrays and tuple(arrays[k].shape) != want[k]
    ]
    if missing or extra or bad:
        raise CheckpointError(
            f"SqueezeNet weights {path}: missing {missing[:5]}, unexpected {extra[:5]}, "
            f"shape mismatches {bad[:5]}"
        )
    for k in want:
        model.params[k] = arrays[k].astype(model.dtype)
    return model


def squeezenet_backend(weights: str | os.PathLike | None = "imagenet") -> NumpyBackend:
    """A :class:`NumpyBackend` over SqueezeNet with its Caffe input space."""
    model = SqueezeNet(weights)
    return NumpyBackend(model, squeezenet_input_space())


__all__ = [
    "SqueezeNet",
    "squeezenet_backend",
    "squeezenet_input_space",
    "load_squeezenet_weights",
    "find_weights",
    "WEIGHTS_RELPATH",
]
