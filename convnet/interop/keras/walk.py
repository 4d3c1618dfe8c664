"""One walk over a convnet model's layers: each layer with its input and output shape and
the channel order of a flattened input.

Every conversion reads a model this way: building its Keras twin, mapping its weights and
comparing its activations all need, for each layer, the shapes and whether the vector a layer
sees is a flattened ``(C, H, W)`` map (whose element order differs between convnet's
``(c, h, w)`` and Keras' ``(h, w, c)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from convnet.interop.keras.errors import KerasConversionError

# Layers that act per element, so a flatten order passes through them unchanged.
ELEMENTWISE = frozenset({"Dropout", "ReLU", "Sigmoid", "Tanh", "LeakyReLU"})


@dataclass(frozen=True)
class Step:
    """One layer of a model, as :func:`walk` sees it (shapes without the batch axis).

    - layer: the convnet module.
    - in_shape, out_shape: its input and output shape, e.g. ``(C, H, W)`` or ``(D,)``.
    - in_chw, out_chw: ``(C, H, W)`` when the input (output) is the vector a Flatten made of
      such a map, possibly through element-wise layers; else None.
    - prev_kind: the class name of the layer before (Dropout skipped), None for the first.
    """

    layer: Any
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_chw: tuple[int, ...] | None
    out_chw: tuple[int, ...] | None
    prev_kind: str | None

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def kind(self) -> str:
        return type(self.layer).__name__

    @property
    def dense_chw(self) -> tuple[int, ...] | None:
        """The ``(C, H, W)`` whose flatten a Dense layer here multiplies: the map a Flatten
        upstream flattened, or the Dense's own 3-D input (convnet's affine flattens it)."""
        if len(self.in_shape) == 1:
            return self.in_chw
        return self.in_shape if len(self.in_shape) == 3 else None


def model_input_shape(model: Any) -> tuple[int, ...]:
    """``model.input_shape`` as a tuple of ints; KerasConversionError if it is unknown."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise KerasConversionError("the convnet model has no input_shape (needed for the twin)")
    return tuple(int(d) for d in shape)


def model_dtype(model: Any) -> np.dtype:
    """The floating dtype of the model's parameters (the dtype both sides compute in)."""
    return np.dtype(model.dtype)


def walk(model: Any) -> Iterator[Step]:
    """Yield a :class:`Step` for each layer of a convnet ``Sequential``, in order.

    Inputs:
    - model: a ``Sequential`` with a known ``input_shape``.

    Raises KerasConversionError when the input shape is unknown, and the layer's ValueError
    when a layer does not fit the shape before it.
    """
    layers = getattr(model, "layers", None)
    if layers is None:
        raise KerasConversionError("expected a convnet Sequential (with .layers)")
    shape = model_input_shape(model)
    chw: tuple[int, ...] | None = None
    prev: str | None = None
    for layer in layers:
        kind = type(layer).__name__
        out = tuple(int(d) for d in layer.output_shape(shape))
        if kind == "Flatten":
            out_chw = shape if len(shape) == 3 else None
        else:
            out_chw = chw if kind in ELEMENTWISE else None
        yield Step(layer, shape, out, chw, out_chw, prev)
        shape, chw = out, out_chw
        if kind != "Dropout":
            prev = kind


__all__ = ["ELEMENTWISE", "Step", "model_dtype", "model_input_shape", "walk"]
