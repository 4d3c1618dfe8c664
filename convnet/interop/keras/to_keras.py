"""``to_keras``: the Keras twin of a convnet ``Sequential``, one small converter per layer kind.

Each converter appends the Keras layers for one convnet layer to the functional graph and
returns the new tensor. The Keras layer whose output equals convnet layer ``name`` is
``<name>_crop`` if present, else ``name``; helper layers add a suffix (``_pad``, ``_crop``,
``_flatten``, ``_ceilpad``). Padding rules (never silently different):

* conv: ``padding='valid'`` when ``pad == 0``; ``'same'`` when ``stride == 1`` and
  ``pad == (k - 1) / 2`` for an odd (dilated) kernel, where TF pads symmetrically; otherwise a
  ``ZeroPadding2D`` ``<name>_pad`` before a ``'valid'`` conv, exact for every stride.
* transposed conv with ``pad`` p: ``Conv2DTranspose(padding='valid', output_padding=op)``
  followed by ``Cropping2D(p)`` ``<name>_crop``.
* padded or ceil-mode max pooling (SqueezeNet): a pad (bottom/right for the ceil-mode tail)
  before a ``'valid'`` pool: ``ZeroPadding2D`` when the input is known non-negative (after a
  ReLU, Sigmoid or Fire, where a zero never beats a window's real maximum), else the registered
  ``ConstantPad2D`` with ``-inf``. Average pooling counts padded zeros, as convnet does;
  ceil-mode average pooling is refused.
* LeakyReLU in float64 becomes the registered ``ExactLeakyReLU`` (TF's op rounds the slope to
  float32).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convnet.interop._tf import import_keras
from convnet.interop.keras.errors import KerasConversionError, square
from convnet.interop.keras.keras_layers import constant_pad_layer_class, exact_leaky_relu_class
from convnet.interop.keras.layout import shape_to_keras
from convnet.interop.keras.params import FIRE_PARTS, copy_to_keras, fire_part_name, param_maps
from convnet.interop.keras.walk import Step, model_dtype, walk

# Layers whose output is never negative: a zero pad before a max pool is then exact.
NONNEGATIVE_OUTPUT = frozenset({"ReLU", "Fire", "Sigmoid"})


@dataclass(frozen=True)
class _Graph:
    """What every converter needs: the Keras layers module and the dtype name."""

    L: Any
    dname: str


def _same_is_symmetric(k: int, s: int, p: int) -> bool:
    """TF 'same' equals symmetric pad p for every input size only at stride 1, odd k."""
    return s == 1 and k % 2 == 1 and p == (k - 1) // 2


def conv_layer(g: _Graph, conv: Any, t: Any, name: str) -> Any:
    """Append the Keras twin of one convnet ``Conv2D`` module (and its pad helper)."""
    k = square(conv.kernel_size, "kernel_size", name)
    s, p, d = int(conv.stride), int(conv.pad), int(conv.dilation)
    if p == 0:
        padding = "valid"
    elif _same_is_symmetric(d * (k - 1) + 1, s, p):
        padding = "same"
    else:
        t = g.L.ZeroPadding2D(p, name=f"{name}_pad", dtype=g.dname)(t)
        padding = "valid"
    return g.L.Conv2D(int(conv.filters), k, strides=s, padding=padding, dilation_rate=d,
                      name=name, dtype=g.dname)(t)


def _conv(g: _Graph, step: Step, t: Any) -> Any:
    return conv_layer(g, step.layer, t, step.name)


def _dense(g: _Graph, step: Step, t: Any) -> Any:
    if len(step.in_shape) > 1:
        # convnet's affine flattens any trailing shape; Keras Dense acts on the last axis only,
        # so flatten explicitly (the rows are permuted by the weight map).
        t = g.L.Flatten(name=f"{step.name}_flatten", dtype=g.dname)(t)
    return g.L.Dense(step.out_shape[-1], name=step.name, dtype=g.dname)(t)


def _conv_transpose(g: _Graph, step: Step, t: Any) -> Any:
    layer, name = step.layer, step.name
    k = square(layer.kernel_size, "kernel_size", name)
    s, p, op = int(layer.stride), int(layer.pad), int(layer.output_padding)
    if op >= s and op > 0:
        raise KerasConversionError(
            f"layer {name!r}: Keras needs output_padding < stride, got {op} >= {s}"
        )
    t = g.L.Conv2DTranspose(int(layer.filters), k, strides=s, padding="valid",
                            output_padding=op, name=name, dtype=g.dname)(t)
    if p > 0:
        t = g.L.Cropping2D(p, name=f"{name}_crop", dtype=g.dname)(t)
    return t


def _pool_pad(step: Step, k: int, s: int, p: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The ((top, bottom), (left, right)) pad that makes a 'valid' Keras pool give convnet's
    windows: ``pad`` on every side, plus the ceil-mode tail at the bottom/right."""
    _, H, W = step.in_shape
    _, Ho, Wo = step.out_shape
    eh = max((Ho - 1) * s + k - H - 2 * p, 0)
    ew = max((Wo - 1) * s + k - W - 2 * p, 0)
    return (p, p + eh), (p, p + ew)


def _pool(g: _Graph, step: Step, t: Any) -> Any:
    layer, name = step.layer, step.name
    k = square(layer.pool_size, "pool_size", name)
    s, p = int(layer.stride), int(layer.pad)
    pad = _pool_pad(step, k, s, p)
    if step.kind == "AvgPool2D":
        if pad[0][1] != p or pad[1][1] != p:
            raise KerasConversionError(
                f"layer {name!r}: ceil-mode average pooling has no exact Keras twin"
            )
        if p:  # convnet's avg pool counts the padded zeros (count_include_pad): zero-pad.
            t = g.L.ZeroPadding2D(pad, name=f"{name}_pad", dtype=g.dname)(t)
        return g.L.AveragePooling2D(pool_size=k, strides=s, padding="valid", name=name,
                                    dtype=g.dname)(t)
    if any(v for pp in pad for v in pp):
        if step.prev_kind in NONNEGATIVE_OUTPUT:
            # Input >= 0, so a zero in the pad never beats the real maximum of a window that
            # has at least one real element (each ceil-mode window does).
            t = g.L.ZeroPadding2D(pad, name=f"{name}_ceilpad", dtype=g.dname)(t)
        else:
            t = constant_pad_layer_class()(pad, float("-inf"), name=f"{name}_ceilpad",
                                           dtype=g.dname)(t)
    return g.L.MaxPooling2D(pool_size=k, strides=s, padding="valid", name=name,
                            dtype=g.dname)(t)


def _global_pool(g: _Graph, step: Step, t: Any) -> Any:
    return g.L.GlobalAveragePooling2D(name=step.name, dtype=g.dname)(t)


def _flatten(g: _Graph, step: Step, t: Any) -> Any:
    return g.L.Flatten(name=step.name, dtype=g.dname)(t)


def _activation(g: _Graph, step: Step, t: Any) -> Any:
    return g.L.Activation(step.kind.lower(), name=step.name, dtype=g.dname)(t)


def _leaky_relu(g: _Graph, step: Step, t: Any) -> Any:
    alpha = float(step.layer.alpha)
    if g.dname == "float64":
        cls = exact_leaky_relu_class()
        return cls(negative_slope=alpha, name=step.name, dtype=g.dname)(t)
    return g.L.LeakyReLU(negative_slope=alpha, name=step.name, dtype=g.dname)(t)


def _dropout(g: _Graph, step: Step, t: Any) -> Any:
    layer = step.layer
    return g.L.Dropout(float(layer.p), seed=layer.seed, name=step.name, dtype=g.dname)(t)


def _batchnorm(g: _Graph, step: Step, t: Any) -> Any:
    layer = step.layer
    return g.L.BatchNormalization(axis=-1, epsilon=float(layer.eps),
                                  momentum=float(layer.momentum), name=step.name,
                                  dtype=g.dname)(t)


def _fire(g: _Graph, step: Step, t: Any) -> Any:
    """squeeze 1x1 + relu -> [expand 1x1 + relu, expand 3x3 + relu] -> Concatenate."""
    convs = step.layer.children
    outs = {}
    for part in FIRE_PARTS:
        src = t if part == "squeeze1x1" else outs["squeeze1x1"]
        kname = fire_part_name(step.name, part)
        out = conv_layer(g, convs[part], src, kname)
        outs[part] = g.L.Activation("relu", name=f"{kname}_relu", dtype=g.dname)(out)
    return g.L.Concatenate(axis=-1, name=step.name, dtype=g.dname)(
        [outs["expand1x1"], outs["expand3x3"]])


def _reshape(g: _Graph, step: Step, t: Any) -> Any:
    raise KerasConversionError(
        f"layer {step.name!r} (Reshape): no exact Keras twin (NCHW vs NHWC reshape order)"
    )


TO_KERAS: dict[str, Callable[[_Graph, Step, Any], Any]] = {
    "Dense": _dense,
    "Conv2D": _conv,
    "ConvTranspose2D": _conv_transpose,
    "MaxPool2D": _pool,
    "AvgPool2D": _pool,
    "GlobalAvgPool": _global_pool,
    "Flatten": _flatten,
    "ReLU": _activation,
    "Sigmoid": _activation,
    "Tanh": _activation,
    "LeakyReLU": _leaky_relu,
    "Dropout": _dropout,
    "BatchNorm": _batchnorm,
    "Fire": _fire,
    "Reshape": _reshape,
}


def keras_safe(name: str) -> str:
    """A model name Keras accepts (no ``/``)."""
    return str(name).replace("/", "_")


def to_keras(model: Any, copy_weights: bool = True) -> Any:
    """Build the Keras twin of a convnet ``Sequential`` and copy its weights.

    Inputs:
    - model: a convnet ``Sequential`` whose input is ``(C, H, W)`` or ``(D,)``; its layers are
      any of Dense, Conv2D, ConvTranspose2D, MaxPool2D (incl. ceil_mode), AvgPool2D,
      GlobalAvgPool, Flatten, ReLU, LeakyReLU, Sigmoid, Tanh, Dropout, BatchNorm, Fire.
    - copy_weights: copy parameters and batch-norm statistics into the twin.

    Returns:
    - a Keras 3 functional ``keras.Model`` with input ``(None, H, W, C)`` (or ``(None, D)``)
      in the dtype of the model's parameters, whose output is convnet's scores (logits: the
      softmax of a ``loss='softmax'`` model lives in the loss, as in convnet). Layers carry the
      convnet names (helper layers add a suffix, see the module docstring).

    Raises:
    - KerasConversionError naming any layer that cannot be converted exactly.
    """
    keras = import_keras()
    maps = param_maps(model)  # first, so a layer whose weights cannot map is refused early
    g = _Graph(keras.layers, np.dtype(model_dtype(model)).name)
    steps = list(walk(model))
    inp = keras.Input(shape=shape_to_keras(steps[0].in_shape), dtype=g.dname, name="input")
    t = inp
    for step in steps:
        convert = TO_KERAS.get(step.kind)
        if convert is None:
            raise KerasConversionError(
                f"to_keras: layer {step.name!r} of type {step.kind} has no Keras twin; "
                f"supported: {', '.join(k for k in TO_KERAS if k != 'Reshape')}"
            )
        t = convert(g, step, t)
    kmodel = keras.Model(inp, t, name=keras_safe(getattr(model, "name", None) or "convnet"))
    if copy_weights:
        copy_to_keras(model, kmodel, maps)
    return kmodel


__all__ = ["NONNEGATIVE_OUTPUT", "TO_KERAS", "conv_layer", "keras_safe", "to_keras"]
