"""Two small Keras layers that make a twin exact where Keras' own layers are not.

* ``ConstantPad2D``: pads H and W with ``-inf``, so a max pool after it sees only real values
  (ceil-mode and padded max pooling, when the input may be negative).
* ``ExactLeakyReLU``: TF's LeakyRelu op keeps the slope as a float32 attribute (about 1e-9
  relative error in float64); this layer keeps it in the layer's dtype.

Both are registered under the package ``convnet``: call :func:`constant_pad_layer_class` /
:func:`exact_leaky_relu_class` (or ``to_keras``) before ``keras.models.load_model`` of a saved
twin. The classes are built on first use so that importing this module needs no TensorFlow.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from convnet.interop._tf import import_keras


@functools.cache
def constant_pad_layer_class() -> Any:
    """The Keras layer ``ConstantPad2D(padding=((t, b), (l, r)), value=-inf)`` (NHWC)."""
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="convnet")
    class ConstantPad2D(keras.layers.Layer):
        """Pad H and W of an NHWC tensor with a constant (``-inf``: ignored by max pooling)."""

        def __init__(self, padding=((0, 0), (0, 0)), value=float("-inf"), **kwargs):
            super().__init__(**kwargs)
            self.padding = tuple(tuple(int(v) for v in p) for p in padding)
            self.value = float(value)

        def call(self, x):
            (t, b), (l, r) = self.padding
            return keras.ops.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], constant_values=self.value)

        def compute_output_shape(self, input_shape):
            (t, b), (l, r) = self.padding
            n, h, w, c = input_shape
            return (n, None if h is None else h + t + b, None if w is None else w + l + r, c)

        def get_config(self):
            return {**super().get_config(), "padding": self.padding, "value": self.value}

    return ConstantPad2D


@functools.cache
def exact_leaky_relu_class() -> Any:
    """Keras layer ``ExactLeakyReLU(negative_slope)``: ``max(x, 0) + slope * min(x, 0)`` with
    the slope in the layer's dtype (``keras.layers.LeakyReLU`` rounds it to float32)."""
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="convnet")
    class ExactLeakyReLU(keras.layers.Layer):
        def __init__(self, negative_slope=0.01, **kwargs):
            super().__init__(**kwargs)
            self.negative_slope = float(negative_slope)

        def call(self, x):
            ops = keras.ops
            slope = ops.convert_to_tensor(np.asarray(self.negative_slope, dtype=self.compute_dtype))
            return ops.where(x > 0, x, x * slope)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "negative_slope": self.negative_slope}

    return ExactLeakyReLU


__all__ = ["constant_pad_layer_class", "exact_leaky_relu_class"]
