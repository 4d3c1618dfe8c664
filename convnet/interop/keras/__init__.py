"""Keras twins of convnet models, exact weight conversion, and a layer-by-layer cross-check.

TensorFlow is imported lazily (``convnet.interop._tf.import_tf``) inside the functions, never
at import time. The package, one idea a module:

* ``layout``: the pure NumPy NCHW <-> NHWC converters (weights, activations, the channel
  order of a flattened map);
* ``walk``: one walk over a convnet model's layers with their shapes and flatten order;
* ``params``: which convnet array goes into which Keras variable (copy both ways);
* ``to_keras`` / ``from_keras``: one converter per layer kind, in a table
  (``TO_KERAS``, ``FROM_KERAS``); ``fire`` finds SqueezeNet's Fire module in a Keras graph;
* ``keras_layers``: the two registered Keras layers a twin may need (``ConstantPad2D``,
  ``ExactLeakyReLU``); ``keras_graph``: reading a Keras graph;
* ``compare``: outputs, loss and every gradient of a model and its twin.

Layout rules (convnet is NCHW, Keras is NHWC):

* images: ``x_keras = x.transpose(0, 2, 3, 1)``;
* conv weights ``(F, C, HH, WW)`` <-> Keras ``(HH, WW, C, F)``;
* transposed conv: convnet ``W (in_channels, filters, HH, WW)`` (the weight of the conv it is
  the adjoint of) <-> Keras ``Conv2DTranspose`` kernel ``(HH, WW, filters, in_channels)``:
  the same ``transpose(2, 3, 1, 0)`` as a conv, no spatial flip;
* dense weights ``(D, M)`` are shared, except after a flatten of a ``(C, H, W)`` map: convnet
  flattens in ``(c, h, w)`` order, Keras in ``(h, w, c)`` order, so the rows are permuted
  (:func:`dense_weight_to_keras`) and the outputs agree exactly;
* batch norm: ``gamma, beta`` and running mean/variance map one to one (Keras ``epsilon`` and
  ``momentum`` are taken from the convnet layer; both use
  ``running = momentum * running + (1 - momentum) * batch``).

The padding rules of each direction are in the docstrings of ``to_keras`` and ``from_keras``
(the modules). Helper layers get the convnet name plus a suffix (``_pad``, ``_crop``,
``_flatten``, ``_ceilpad``); the Keras layer whose output equals convnet layer ``name`` is
``<name>_crop`` if present, else ``name``. A ``Fire`` module ``fire2`` becomes Keras layers
``fire2_squeeze1x1``, ``fire2_squeeze1x1_relu``, ``fire2_expand1x1`` (+ ``_relu``),
``fire2_expand3x3`` (+ ``_relu``) and ``fire2`` (the ``Concatenate``); Keras 3 does not allow
``/`` in layer names. The registered layers exist once :func:`constant_pad_layer_class` /
:func:`exact_leaky_relu_class` (or ``to_keras``) ran: call them before
``keras.models.load_model`` of a saved twin.
"""

from convnet.interop.keras.compare import DEFAULT_RTOL, CompareReport, CompareRow, compare
from convnet.interop.keras.errors import KerasConversionError
from convnet.interop.keras.from_keras import from_keras
from convnet.interop.keras.keras_layers import constant_pad_layer_class, exact_leaky_relu_class
from convnet.interop.keras.layout import (
    conv_transpose_weight_from_keras,
    conv_transpose_weight_to_keras,
    conv_weight_from_keras,
    conv_weight_to_keras,
    dense_weight_from_keras,
    dense_weight_to_keras,
    nchw_to_nhwc,
    nhwc_to_nchw,
)
from convnet.interop.keras.params import (
    ParamMap,
    copy_weights_from_keras,
    copy_weights_to_keras,
    param_maps,
)
from convnet.interop.keras.to_keras import to_keras
from convnet.interop.keras.walk import Step, walk

__all__ = [
    "KerasConversionError",
    "CompareReport",
    "CompareRow",
    "DEFAULT_RTOL",
    "ParamMap",
    "Step",
    "compare",
    "constant_pad_layer_class",
    "exact_leaky_relu_class",
    "conv_transpose_weight_from_keras",
    "conv_transpose_weight_to_keras",
    "conv_weight_from_keras",
    "conv_weight_to_keras",
    "copy_weights_from_keras",
    "copy_weights_to_keras",
    "dense_weight_from_keras",
    "dense_weight_to_keras",
    "from_keras",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "param_maps",
    "to_keras",
    "walk",
]
