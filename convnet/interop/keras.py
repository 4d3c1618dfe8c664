"""Keras twins of convnet models, exact weight conversion, and a layer-by-layer cross-check.

TensorFlow is imported lazily (``convnet.interop._tf.import_tf``) inside the functions below,
never at import time.

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

Padding rules (never silently different):

* convnet conv pads symmetrically by ``pad``. ``to_keras`` uses ``padding='valid'`` when
  ``pad == 0``, ``'same'`` when ``stride == 1`` and ``pad == (k - 1) / 2`` for an odd kernel
  (TF pads symmetrically then), and otherwise an explicit ``ZeroPadding2D`` named
  ``<name>_pad`` followed by a ``'valid'`` conv, which is exact for every stride.
* ``from_keras`` maps ``'same'`` to the symmetric pad TF would use for the model's input size.
  TF's ``'same'`` is *asymmetric* when the total padding is odd (stride 2 on even sizes pads one
  more row at the bottom/right); convnet cannot express that, so ``from_keras`` raises
  :class:`KerasConversionError` naming the layer (put an explicit ``ZeroPadding2D`` with a
  symmetric pad in the Keras model instead).
* ceil-mode max pooling (SqueezeNet) becomes a bottom/right pad followed by a ``'valid'`` pool:
  ``ZeroPadding2D`` when the input is known non-negative (after a ReLU or a Fire module, where
  zero is never larger than a real maximum), else a ``ConstantPad2D`` with ``-inf`` (a small
  registered Keras layer), so the extra windows see only real values. A padded max pool
  (``pad > 0``) is converted the same way, with the pad on all four sides.
* ``from_keras`` reads ``'same'`` max pooling (TF ignores its padding) as convnet's ``pad``
  and/or ``ceil_mode`` when the windows coincide, and ``'same'`` average pooling only when it
  needs no padding (TF leaves padding out of the count; convnet counts zeros).
* The registered layers (``ConstantPad2D``, ``ExactLeakyReLU``, package ``convnet``) exist
  once :func:`constant_pad_layer_class` / :func:`exact_leaky_relu_class` (or ``to_keras``)
  ran: call them before ``keras.models.load_model`` of a saved twin.
* LeakyReLU in float64 becomes the registered ``ExactLeakyReLU`` layer: TF's own LeakyRelu op
  stores the slope as a float32 attribute (a ~1e-9 relative error in float64).
* transposed conv with ``pad`` p becomes ``Conv2DTranspose(padding='valid',
  output_padding=op)`` followed by ``Cropping2D(p)`` named ``<name>_crop``.

Helper layers get the convnet name plus a suffix (``_pad``, ``_crop``, ``_flatten``,
``_ceilpad``); the Keras layer whose output equals convnet layer ``name`` is ``<name>_crop`` if
present, else ``name``. A ``Fire`` module ``fire2`` becomes Keras layers ``fire2_squeeze1x1``,
``fire2_squeeze1x1_relu``, ``fire2_expand1x1`` (+ ``_relu``), ``fire2_expand3x3`` (+ ``_relu``)
and ``fire2`` (the ``Concatenate``); Keras 3 does not allow ``/`` in layer names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.errors import ConvnetError
from convnet.interop._tf import import_keras, import_tf


class KerasConversionError(ConvnetError):
    """A model (or one of its layers) cannot be converted exactly between convnet and Keras."""


# --------------------------------------------------------------------------------------------
# Weight layout converters (pure NumPy; usable without TensorFlow)
# --------------------------------------------------------------------------------------------


def conv_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """Conv weight ``(F, C, HH, WW)`` -> Keras kernel ``(HH, WW, C, F)``."""
    if w.ndim != 4:
        raise ValueError(f"conv_weight_to_keras: w must be 4-D (F, C, HH, WW), got {w.shape}")
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_weight_from_keras(k: np.ndarray) -> np.ndarray:
    """Keras kernel ``(HH, WW, C, F)`` -> conv weight ``(F, C, HH, WW)``."""
    if k.ndim != 4:
        raise ValueError(
            f"conv_weight_from_keras: kernel must be 4-D (HH, WW, C, F), got {k.shape}"
        )
    return np.ascontiguousarray(k.transpose(3, 2, 0, 1))


def conv_transpose_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """Transposed-conv weight ``(in, filters, HH, WW)`` -> Keras ``(HH, WW, filters, in)``."""
    if w.ndim != 4:
        raise ValueError(
            f"conv_transpose_weight_to_keras: w must be 4-D (in, filters, HH, WW), got {w.shape}"
        )
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def conv_transpose_weight_from_keras(k: np.ndarray) -> np.ndarray:
    """Keras ``Conv2DTranspose`` kernel ``(HH, WW, filters, in)`` -> ``(in, filters, HH, WW)``."""
    if k.ndim != 4:
        raise ValueError(
            "conv_transpose_weight_from_keras: kernel must be 4-D (HH, WW, filters, in), "
            f"got {k.shape}"
        )
    return np.ascontiguousarray(k.transpose(3, 2, 0, 1))


def dense_weight_to_keras(w: np.ndarray, chw: Sequence[int] | None = None) -> np.ndarray:
    """Dense weight ``(D, M)`` -> Keras kernel ``(D, M)``.

    Inputs:
    - w: ``(D, M)``.
    - chw: ``(C, H, W)`` of the map that was flattened right before this layer (``D = C*H*W``),
      or None when the input was already a vector. convnet row ``c*H*W + h*W + w`` becomes Keras
      row ``h*W*C + w*C + c``.
    """
    if w.ndim != 2:
        raise ValueError(f"dense_weight_to_keras: w must be 2-D (D, M), got {w.shape}")
    if chw is None:
        return w.copy()
    C, H, W = chw
    if w.shape[0] != C * H * W:
        raise ValueError(
            f"dense_weight_to_keras: w must have C*H*W = {C * H * W} rows for chw={tuple(chw)}, "
            f"got {w.shape}"
        )
    M = w.shape[1]
    return np.ascontiguousarray(w.reshape(C, H, W, M).transpose(1, 2, 0, 3).reshape(-1, M))


def dense_weight_from_keras(k: np.ndarray, chw: Sequence[int] | None = None) -> np.ndarray:
    """Inverse of :func:`dense_weight_to_keras` (``k (D, M)``, ``chw = (C, H, W)`` or None)."""
    if k.ndim != 2:
        raise ValueError(f"dense_weight_from_keras: kernel must be 2-D (D, M), got {k.shape}")
    if chw is None:
        return k.copy()
    C, H, W = chw
    if k.shape[0] != C * H * W:
        raise ValueError(
            f"dense_weight_from_keras: kernel must have C*H*W = {C * H * W} rows for "
            f"chw={tuple(chw)}, got {k.shape}"
        )
    M = k.shape[1]
    return np.ascontiguousarray(k.reshape(H, W, C, M).transpose(2, 0, 1, 3).reshape(-1, M))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, H, W, C)``; other ranks are returned unchanged."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, C, H, W)``; other ranks are returned unchanged."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def _flat_keras_to_convnet(a: np.ndarray, chw: Sequence[int]) -> np.ndarray:
    """Keras-flattened ``(N, H*W*C)`` activations -> convnet order ``(N, C*H*W)``."""
    C, H, W = chw
    return np.ascontiguousarray(a.reshape(-1, H, W, C).transpose(0, 3, 1, 2).reshape(len(a), -1))


# --------------------------------------------------------------------------------------------
# Reading convnet modules (written against docs/internals.md; tolerant of attribute spelling)
# --------------------------------------------------------------------------------------------


_MISSING = object()


def _opt(layer: Any, *names: str, default: Any = _MISSING) -> Any:
    """A constructor argument of a convnet module, from ``get_config()`` or its attributes."""
    cfg: dict = {}
    if hasattr(layer, "get_config"):
        try:
            cfg = layer.get_config() or {}
        except NotImplementedError:
            cfg = {}
    for n in names:
        if n in cfg:
            return cfg[n]
    for n in names:
        if hasattr(layer, n):
            return getattr(layer, n)
    if default is _MISSING:
        raise KerasConversionError(
            f"layer {getattr(layer, 'name', layer)!r} ({type(layer).__name__}): cannot read "
            f"option {names[0]!r} from get_config() or attributes"
        )
    return default


def _pair(v: Any, what: str, lname: str) -> int:
    """A square size given as int or (a, a); anything else is refused."""
    if isinstance(v, (tuple, list)):
        if len(set(int(t) for t in v)) != 1:
            raise KerasConversionError(
                f"layer {lname!r}: non-square {what} {tuple(v)} not supported"
            )
        return int(v[0])
    return int(v)


def _kind(layer: Any) -> str:
    return type(layer).__name__


def _model_input_shape(model: Any) -> tuple[int, ...]:
    for attr in ("input_shape", "in_shape"):
        s = getattr(model, attr, None)
        if s is not None:
            return tuple(int(d) for d in s)
    raise KerasConversionError("to_keras: the model has no input_shape (needed for the twin)")


def _model_layers(model: Any) -> list:
    layers = getattr(model, "layers", None)
    if layers is None:
        raise KerasConversionError("to_keras: expected a convnet Sequential (with .layers)")
    return list(layers.values()) if isinstance(layers, dict) else list(layers)


def _model_dtype(model: Any) -> np.dtype:
    for v in model.params.values():
        return np.asarray(v).dtype
    return np.dtype(getattr(model, "dtype", np.float32))


# A parameter mapping entry: convnet key, keras layer name, keras attribute, converters.
@dataclass
class _ParamMap:
    key: str  # "conv1/W" (a key of model.params) or "bn1/running_mean" (a buffer)
    keras_layer: str
    attr: str  # kernel, bias, gamma, beta, moving_mean, moving_variance
    to_keras: Callable[[np.ndarray], np.ndarray]
    from_keras: Callable[[np.ndarray], np.ndarray]
    buffer: bool = False


_NONNEGATIVE_OUTPUT = {"ReLU", "Fire", "Sigmoid"}
# Layers that act per element, so a pending flatten order passes through them unchanged.
_ELEMENTWISE = ("Dropout", "ReLU", "Sigmoid", "Tanh", "LeakyReLU")


# --------------------------------------------------------------------------------------------
# The -inf pad used to emulate ceil-mode pooling (a registered, serialisable Keras layer)
# --------------------------------------------------------------------------------------------

_CONSTANT_PAD_CLS: Any = None


def constant_pad_layer_class() -> Any:
    """The Keras layer ``ConstantPad2D(padding=((t, b), (l, r)), value=-inf)`` (NHWC)."""
    global _CONSTANT_PAD_CLS
    if _CONSTANT_PAD_CLS is not None:
        return _CONSTANT_PAD_CLS
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

    _CONSTANT_PAD_CLS = ConstantPad2D
    return ConstantPad2D


_LEAKY_CLS: Any = None


def exact_leaky_relu_class() -> Any:
    """Keras layer ``ExactLeakyReLU(negative_slope)``: ``max(x, 0) + slope * min(x, 0)`` with
    the slope in the layer's dtype (``keras.layers.LeakyReLU`` rounds it to float32)."""
    global _LEAKY_CLS
    if _LEAKY_CLS is not None:
        return _LEAKY_CLS
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

    _LEAKY_CLS = ExactLeakyReLU
    return ExactLeakyReLU


# --------------------------------------------------------------------------------------------
# to_keras
# --------------------------------------------------------------------------------------------


def _same_is_symmetric(k: int, s: int, p: int) -> bool:
    """TF 'same' equals symmetric pad p for every input size only at stride 1, odd k."""
    return s == 1 and k % 2 == 1 and p == (k - 1) // 2


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
    dtype = _model_dtype(model)
    dname = np.dtype(dtype).name
    in_shape = _model_input_shape(model)
    layers = _model_layers(model)

    keras_in = (in_shape[1], in_shape[2], in_shape[0]) if len(in_shape) == 3 else in_shape
    inp = keras.Input(shape=keras_in, dtype=dname, name="input")
    t = inp
    shape = in_shape  # convnet shape (no batch) of the current tensor
    flat_chw: tuple | None = None  # set while the current vector is a Keras-order flatten
    prev_kind = None
    pmaps: list[_ParamMap] = []
    L = keras.layers

    for layer in layers:
        name = layer.name
        kind = _kind(layer)
        out_shape = tuple(int(d) for d in layer.output_shape(shape))

        if kind == "Dense":
            chw = flat_chw
            if len(shape) > 1:
                # convnet's affine flattens any trailing shape (NCHW order); Keras Dense acts
                # on the last axis only, so flatten explicitly and permute rows.
                t = L.Flatten(name=f"{name}_flatten", dtype=dname)(t)
                chw = tuple(shape) if len(shape) == 3 else None
            units = out_shape[-1]
            t = L.Dense(units, name=name, dtype=dname)(t)
            pmaps += [
                _ParamMap(f"{name}/W", name, "kernel",
                          lambda w, c=chw: dense_weight_to_keras(w, c),
                          lambda k, c=chw: dense_weight_from_keras(k, c)),
                _ParamMap(f"{name}/b", name, "bias", np.copy, np.copy),
            ]
            flat_chw = None
        elif kind == "Conv2D":
            t = _conv_to_keras(keras, layer, t, dname, pmaps, prefix=name)
            flat_chw = None
        elif kind == "ConvTranspose2D":
            k = _pair(_opt(layer, "kernel_size"), "kernel_size", name)
            s = _pair(_opt(layer, "stride", default=1), "stride", name)
            p = _pair(_opt(layer, "pad", default=0), "pad", name)
            op = _pair(_opt(layer, "output_padding", default=0), "output_padding", name)
            filters = int(_opt(layer, "filters"))
            if op >= s and op > 0:
                raise KerasConversionError(
                    f"layer {name!r}: Keras needs output_padding < stride, got {op} >= {s}"
                )
            t = L.Conv2DTranspose(filters, k, strides=s, padding="valid", output_padding=op,
                                  name=name, dtype=dname)(t)
            if p > 0:
                t = L.Cropping2D(p, name=f"{name}_crop", dtype=dname)(t)
            pmaps += [
                _ParamMap(f"{name}/W", name, "kernel", conv_transpose_weight_to_keras,
                          conv_transpose_weight_from_keras),
                _ParamMap(f"{name}/b", name, "bias", np.copy, np.copy),
            ]
        elif kind in ("MaxPool2D", "AvgPool2D"):
            k = _pair(_opt(layer, "pool_size", "pool_height"), "pool_size", name)
            s = _pair(_opt(layer, "stride", default=None) or k, "stride", name)
            p = _pair(_opt(layer, "pad", default=0), "pad", name)
            C, H, W = shape
            Ho, Wo = out_shape[1], out_shape[2]
            # Total rows needed by the output windows: whatever exceeds H + 2p is the ceil-mode
            # tail, padded at the bottom/right only.
            eh = (Ho - 1) * s + k - H - 2 * p
            ew = (Wo - 1) * s + k - W - 2 * p
            eh, ew = max(eh, 0), max(ew, 0)
            pad = ((p, p + eh), (p, p + ew))
            if any(v for pp in pad for v in pp):
                if kind == "AvgPool2D":
                    if eh or ew:
                        raise KerasConversionError(
                            f"layer {name!r}: ceil-mode average pooling has no exact Keras twin"
                        )
                    # convnet's avg pool counts padded zeros (count_include_pad): zero-pad.
                    t = L.ZeroPadding2D(pad, name=f"{name}_pad", dtype=dname)(t)
                elif prev_kind in _NONNEGATIVE_OUTPUT:
                    # Input >= 0, so a zero in the pad never beats the real maximum of a window
                    # that has at least one real element (each ceil-mode window does).
                    t = L.ZeroPadding2D(pad, name=f"{name}_ceilpad", dtype=dname)(t)
                else:
                    t = constant_pad_layer_class()(pad, float("-inf"), name=f"{name}_ceilpad",
                                                   dtype=dname)(t)
            cls = L.MaxPooling2D if kind == "MaxPool2D" else L.AveragePooling2D
            t = cls(pool_size=k, strides=s, padding="valid", name=name, dtype=dname)(t)
        elif kind == "GlobalAvgPool":
            t = L.GlobalAveragePooling2D(name=name, dtype=dname)(t)
        elif kind == "Flatten":
            t = L.Flatten(name=name, dtype=dname)(t)
            flat_chw = tuple(shape) if len(shape) == 3 else None
        elif kind == "ReLU":
            t = L.Activation("relu", name=name, dtype=dname)(t)
        elif kind == "Sigmoid":
            t = L.Activation("sigmoid", name=name, dtype=dname)(t)
        elif kind == "Tanh":
            t = L.Activation("tanh", name=name, dtype=dname)(t)
        elif kind == "LeakyReLU":
            alpha = float(_opt(layer, "alpha", "negative_slope", default=0.01))
            if dname == "float64":
                # TF's LeakyRelu op stores alpha as a float32 attribute, so in float64 it is
                # off by ~1e-9 relative; this layer keeps the slope in float64.
                t = exact_leaky_relu_class()(negative_slope=alpha, name=name, dtype=dname)(t)
            else:
                t = L.LeakyReLU(negative_slope=alpha, name=name, dtype=dname)(t)
        elif kind == "Dropout":
            seed = _opt(layer, "seed", default=None)
            t = L.Dropout(float(_opt(layer, "p", "rate", default=0.5)), seed=seed, name=name,
                          dtype=dname)(t)
        elif kind == "BatchNorm":
            if flat_chw is not None:
                raise KerasConversionError(
                    f"layer {name!r}: batch norm of a flattened map has no exact Keras twin "
                    "(per-feature statistics in a different flatten order)"
                )
            eps = float(_opt(layer, "eps", "epsilon", default=1e-5))
            mom = float(_opt(layer, "momentum", default=0.9))
            t = L.BatchNormalization(axis=-1, epsilon=eps, momentum=mom, name=name,
                                     dtype=dname)(t)
            pmaps += [
                _ParamMap(f"{name}/gamma", name, "gamma", np.copy, np.copy),
                _ParamMap(f"{name}/beta", name, "beta", np.copy, np.copy),
                _ParamMap(f"{name}/running_mean", name, "moving_mean", np.copy, np.copy, True),
                _ParamMap(f"{name}/running_var", name, "moving_variance", np.copy, np.copy, True),
            ]
        elif kind == "Fire":
            t = _fire_to_keras(keras, layer, t, dname, pmaps)
            flat_chw = None
        elif kind == "Reshape":
            raise KerasConversionError(
                f"layer {name!r} (Reshape): no exact Keras twin (NCHW vs NHWC reshape order)"
            )
        else:
            raise KerasConversionError(
                f"to_keras: layer {name!r} of type {kind} has no Keras twin; supported: Dense, "
                "Conv2D, ConvTranspose2D, MaxPool2D, AvgPool2D, GlobalAvgPool, Flatten, ReLU, "
                "LeakyReLU, Sigmoid, Tanh, Dropout, BatchNorm, Fire"
            )
        if kind not in ("Flatten", *_ELEMENTWISE):
            flat_chw = None  # the flatten order no longer matters after a Dense/conv/...
        shape = out_shape
        if kind != "Dropout":
            prev_kind = kind

    kmodel = keras.Model(inp, t, name=_keras_safe(getattr(model, "name", None) or "convnet"))
    if copy_weights:
        _copy_to_keras(model, kmodel, pmaps)
    return kmodel


def _keras_safe(name: str) -> str:
    return str(name).replace("/", "_")


def _conv_to_keras(keras: Any, layer: Any, t: Any, dname: str, pmaps: list, prefix: str,
                   sub: Any = None, relu: bool = False) -> Any:
    """Append one Conv2D (with its pad helper) to the Keras graph; record its param maps."""
    L = keras.layers
    name = prefix
    k = _pair(_opt(layer, "kernel_size"), "kernel_size", name)
    s = _pair(_opt(layer, "stride", default=1), "stride", name)
    p = _pair(_opt(layer, "pad", default=0), "pad", name)
    d = _pair(_opt(layer, "dilation", default=1), "dilation", name)
    filters = int(_opt(layer, "filters", "out_channels"))
    keff = d * (k - 1) + 1
    if p == 0:
        padding = "valid"
    elif _same_is_symmetric(keff, s, p):
        padding = "same"
    else:
        t = L.ZeroPadding2D(p, name=f"{name}_pad", dtype=dname)(t)
        padding = "valid"
    t = L.Conv2D(filters, k, strides=s, padding=padding, dilation_rate=d, name=name,
                 dtype=dname)(t)
    key = sub if sub is not None else name
    pmaps += [
        _ParamMap(f"{key}/W", name, "kernel", conv_weight_to_keras, conv_weight_from_keras),
        _ParamMap(f"{key}/b", name, "bias", np.copy, np.copy),
    ]
    return t


class _SubConv:
    """A stand-in for a Fire sub-convolution (read from the Fire's config/params)."""

    def __init__(self, name: str, filters: int, k: int, pad: int):
        self.name = name
        self._cfg = {"filters": filters, "kernel_size": k, "stride": 1, "pad": pad, "dilation": 1}

    def get_config(self) -> dict:
        return self._cfg


def _fire_sizes(layer: Any) -> tuple[int, int, int]:
    params = layer.params
    sq = np.asarray(params["squeeze1x1/W"]).shape[0]
    e1 = np.asarray(params["expand1x1/W"]).shape[0]
    e3 = np.asarray(params["expand3x3/W"]).shape[0]
    return sq, e1, e3


def _fire_to_keras(keras: Any, layer: Any, t: Any, dname: str, pmaps: list) -> Any:
    L = keras.layers
    name = layer.name
    sq, e1, e3 = _fire_sizes(layer)
    t = _conv_to_keras(keras, _SubConv("squeeze1x1", sq, 1, 0), t, dname, pmaps,
                       prefix=f"{name}_squeeze1x1", sub=f"{name}/squeeze1x1")
    t = L.Activation("relu", name=f"{name}_squeeze1x1_relu", dtype=dname)(t)
    a = _conv_to_keras(keras, _SubConv("expand1x1", e1, 1, 0), t, dname, pmaps,
                       prefix=f"{name}_expand1x1", sub=f"{name}/expand1x1")
    a = L.Activation("relu", name=f"{name}_expand1x1_relu", dtype=dname)(a)
    b = _conv_to_keras(keras, _SubConv("expand3x3", e3, 3, 1), t, dname, pmaps,
                       prefix=f"{name}_expand3x3", sub=f"{name}/expand3x3")
    b = L.Activation("relu", name=f"{name}_expand3x3_relu", dtype=dname)(b)
    return L.Concatenate(axis=-1, name=name, dtype=dname)([a, b])


def _param_maps(model: Any, kmodel: Any) -> list[_ParamMap]:
    """Rebuild the parameter mapping of a convnet model and its twin (without building)."""
    pmaps: list[_ParamMap] = []
    shape = _model_input_shape(model)
    flat_chw = None
    for layer in _model_layers(model):
        name, kind = layer.name, _kind(layer)
        out_shape = tuple(int(d) for d in layer.output_shape(shape))
        if kind == "Dense":
            chw = flat_chw
            if len(shape) > 1:
                chw = tuple(shape) if len(shape) == 3 else None
            pmaps += [
                _ParamMap(f"{name}/W", name, "kernel",
                          lambda w, c=chw: dense_weight_to_keras(w, c),
                          lambda k, c=chw: dense_weight_from_keras(k, c)),
                _ParamMap(f"{name}/b", name, "bias", np.copy, np.copy),
            ]
            flat_chw = None
        elif kind in ("Conv2D", "ConvTranspose2D"):
            to_k = conv_weight_to_keras if kind == "Conv2D" else conv_transpose_weight_to_keras
            fr_k = conv_weight_from_keras if kind == "Conv2D" else conv_transpose_weight_from_keras
            pmaps += [_ParamMap(f"{name}/W", name, "kernel", to_k, fr_k),
                      _ParamMap(f"{name}/b", name, "bias", np.copy, np.copy)]
            flat_chw = None
        elif kind == "BatchNorm":
            pmaps += [
                _ParamMap(f"{name}/gamma", name, "gamma", np.copy, np.copy),
                _ParamMap(f"{name}/beta", name, "beta", np.copy, np.copy),
                _ParamMap(f"{name}/running_mean", name, "moving_mean", np.copy, np.copy, True),
                _ParamMap(f"{name}/running_var", name, "moving_variance", np.copy, np.copy, True),
            ]
        elif kind == "Fire":
            for sub in ("squeeze1x1", "expand1x1", "expand3x3"):
                pmaps += [
                    _ParamMap(f"{name}/{sub}/W", f"{name}_{sub}", "kernel",
                              conv_weight_to_keras, conv_weight_from_keras),
                    _ParamMap(f"{name}/{sub}/b", f"{name}_{sub}", "bias", np.copy, np.copy),
                ]
            flat_chw = None
        elif kind == "Flatten":
            flat_chw = tuple(shape) if len(shape) == 3 else None
        elif kind not in _ELEMENTWISE:
            flat_chw = None
        shape = out_shape
    names = {lyr.name for lyr in kmodel.layers}
    missing = sorted({pm.keras_layer for pm in pmaps} - names)
    if missing:
        raise KerasConversionError(f"the Keras model has no layers named {missing}")
    return pmaps


def _get_buffer(model: Any, key: str) -> np.ndarray | None:
    lname, bname = key.rsplit("/", 1)
    layer = model.get_layer(lname)
    buffers = getattr(layer, "buffers", None) or {}
    if bname in buffers:
        return np.asarray(buffers[bname])
    alt = {"running_var": "running_variance", "running_mean": "mean"}.get(bname)
    if alt and alt in buffers:
        return np.asarray(buffers[alt])
    return None


def _set_buffer(model: Any, key: str, value: np.ndarray) -> None:
    lname, bname = key.rsplit("/", 1)
    layer = model.get_layer(lname)
    buffers = getattr(layer, "buffers", None)
    if buffers is None:
        raise KerasConversionError(f"layer {lname!r} has no buffers to receive {bname!r}")
    dt = np.asarray(buffers[bname]).dtype if bname in buffers else value.dtype
    buffers[bname] = value.astype(dt)


def _copy_to_keras(model: Any, kmodel: Any, pmaps: list[_ParamMap]) -> None:
    for pm in pmaps:
        var = getattr(kmodel.get_layer(pm.keras_layer), pm.attr, None)
        if var is None:
            continue
        if pm.buffer:
            val = _get_buffer(model, pm.key)
            if val is None:
                continue
        else:
            val = np.asarray(model.params[pm.key])
        new = pm.to_keras(val)
        if tuple(var.shape) != new.shape:
            raise KerasConversionError(
                f"{pm.key}: converted shape {new.shape} != Keras {pm.keras_layer}.{pm.attr} "
                f"shape {tuple(var.shape)}"
            )
        var.assign(new.astype(var.dtype))


def copy_weights_to_keras(model: Any, kmodel: Any) -> None:
    """Copy convnet parameters (and BN statistics) into an existing twin from :func:`to_keras`."""
    import_keras()
    _copy_to_keras(model, kmodel, _param_maps(model, kmodel))


def copy_weights_from_keras(kmodel: Any, model: Any) -> None:
    """Copy the weights of a twin from :func:`to_keras` back into the convnet model."""
    import_keras()
    for pm in _param_maps(model, kmodel):
        var = getattr(kmodel.get_layer(pm.keras_layer), pm.attr, None)
        if var is None:
            continue
        val = pm.from_keras(np.asarray(var.numpy()))
        if pm.buffer:
            _set_buffer(model, pm.key, val)
        else:
            dt = np.asarray(model.params[pm.key]).dtype
            model.params[pm.key] = val.astype(dt)


# --------------------------------------------------------------------------------------------
# from_keras
# --------------------------------------------------------------------------------------------

_SUPPORTED = (
    "InputLayer, Conv2D, Conv2DTranspose, Dense, MaxPooling2D, AveragePooling2D, "
    "GlobalAveragePooling2D, Flatten, ReLU, LeakyReLU, Activation (relu, sigmoid, tanh, linear, "
    "softmax at the end), Dropout, BatchNormalization, ZeroPadding2D (before a conv or pool), "
    "Concatenate (in a Fire module)"
)


def _same_pad(n: int, k: int, s: int) -> tuple[int, int, int]:
    """TF 'same' padding along one axis of size n: (pad_before, pad_after, out)."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def _inbound(layer: Any) -> list[str]:
    names: list[str] = []
    for node in getattr(layer, "_inbound_nodes", [])[:1]:
        for p in node.parent_nodes:
            names.append(p.operation.name)
    return names


def _act_name(act: Any) -> str:
    if act is None:
        return "linear"
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", str(act))


def from_keras(keras_model: Any, dtype: Any = None) -> Any:
    """Build a convnet ``Sequential`` from a Keras model made of supported layers.

    Inputs:
    - keras_model: a Keras 3 Sequential or functional model, NHWC, input ``(None, H, W, C)``
      or ``(None, D)``. Layers: see ``_SUPPORTED`` in this module. Fused activations
      (``Dense(..., activation='relu')``) become a separate convnet layer ``<name>_relu``; a
      final softmax (fused or an Activation layer) is dropped because convnet's
      ``loss='softmax'`` applies it; a linear activation is dropped.
    - dtype: dtype of the convnet model (default: the Keras variables' dtype).

    Returns:
    - a convnet ``Sequential`` with input ``(C, H, W)`` (or ``(D,)``), same layer names, and
      the Keras weights converted (BN moving statistics into the layer buffers).

    Raises:
    - KerasConversionError naming the first unsupported layer or option (e.g. TF's asymmetric
      'same' padding at stride 2).
    """
    import_keras()  # a clear error if TensorFlow/Keras is missing
    from convnet.models import modules as M
    from convnet.models.sequential import Sequential

    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise KerasConversionError(
            f"from_keras: {keras_model.name!r} has {len(keras_model.inputs)} inputs and "
            f"{len(keras_model.outputs)} outputs; convnet models have one of each"
        )
    klayers = [lyr for lyr in keras_model.layers]
    in_shape_k = tuple(keras_model.input_shape[1:])
    if any(d is None for d in in_shape_k):
        raise KerasConversionError(
            f"from_keras: the Keras input shape {keras_model.input_shape} must be fully known"
        )
    if len(in_shape_k) == 3:
        in_shape = (in_shape_k[2], in_shape_k[0], in_shape_k[1])
    else:
        in_shape = tuple(in_shape_k)
    if dtype is None:
        dtype = np.float32
        for lyr in klayers:
            if lyr.weights:
                dtype = np.dtype(lyr.weights[0].dtype)
                break
    dtype = np.dtype(dtype)

    by_name = {lyr.name: lyr for lyr in klayers}
    consumers: dict[str, list[str]] = {lyr.name: [] for lyr in klayers}
    for lyr in klayers:
        for p in _inbound(lyr):
            if p in consumers:
                consumers[p].append(lyr.name)

    modules: list = []
    # (module_name, keras_layer, attr, from_keras converter, buffer?)
    copies: list[tuple[str, Any, str, Callable, bool]] = []
    shape: tuple = in_shape
    flat_chw: tuple | None = None
    pending_pad: tuple | None = None  # ((t, b), (l, r)) from a ZeroPadding2D / ConstantPad2D
    pending_value = 0.0
    prev_nonneg = False
    n_layers = len(klayers)
    done: set[str] = set()

    def add(mod: Any) -> None:
        nonlocal shape
        modules.append(mod)
        shape = tuple(int(d) for d in mod.output_shape(shape))

    def kw(name: str) -> dict:
        return {"name": name, "dtype": dtype}

    def add_activation(base: str, act: str, lname: str, is_last: bool) -> None:
        nonlocal prev_nonneg
        if act == "linear":
            return
        if act == "relu":
            add(M.ReLU(**kw(base)))
            prev_nonneg = True
        elif act == "sigmoid":
            add(M.Sigmoid(**kw(base)))
            prev_nonneg = True
        elif act == "tanh":
            add(M.Tanh(**kw(base)))
            prev_nonneg = False
        elif act == "softmax" and is_last:
            return
        else:
            raise KerasConversionError(
                f"from_keras: layer {lname!r}: activation {act!r} not supported here "
                "(relu, sigmoid, tanh, linear, or softmax as the very last layer)"
            )

    for i, kl in enumerate(klayers):
        lname = kl.name
        if lname in done:
            continue
        kind = type(kl).__name__
        is_last = i == n_layers - 1
        if kind == "InputLayer":
            continue
        # A Fire module: a (conv 1x1 + relu) whose output feeds two convs joined by Concatenate.
        if kind == "Conv2D":
            fire = _match_fire(kl, by_name, consumers)
            if fire is not None:
                mod, members, cmaps = _build_fire(M, fire, shape, dtype, lname)
                if pending_pad is not None:
                    raise KerasConversionError(
                        f"from_keras: padding before Fire module {fire['concat'].name!r}"
                    )
                add(mod)
                copies.extend(cmaps)
                done.update(members)
                prev_nonneg = True
                flat_chw = None
                continue
        inb = _inbound(kl)
        if len(inb) > 1:
            raise KerasConversionError(
                f"from_keras: layer {lname!r} ({kind}) has {len(inb)} inputs; convnet models "
                f"are sequential (Concatenate only inside a Fire module). Supported: {_SUPPORTED}"
            )
        if len(consumers.get(lname, [])) > 1:
            raise KerasConversionError(
                f"from_keras: the output of layer {lname!r} ({kind}) feeds several layers; "
                "only Fire-module branches are supported"
            )
        if getattr(kl, "data_format", "channels_last") != "channels_last":
            raise KerasConversionError(f"from_keras: layer {lname!r}: only channels_last")

        if kind in ("ZeroPadding2D", "ConstantPad2D"):
            if pending_pad is not None:
                raise KerasConversionError(f"from_keras: two padding layers in a row at {lname!r}")
            pending_pad = tuple(tuple(int(v) for v in p) for p in kl.padding)
            pending_value = 0.0 if kind == "ZeroPadding2D" else float(kl.value)
            continue

        if kind == "Conv2D":
            if getattr(kl, "groups", 1) != 1:
                raise KerasConversionError(f"from_keras: layer {lname!r}: grouped conv")
            k = _pair(kl.kernel_size, "kernel_size", lname)
            s = _pair(kl.strides, "strides", lname)
            d = _pair(kl.dilation_rate, "dilation_rate", lname)
            C, H, W = shape
            keff = d * (k - 1) + 1
            if kl.padding == "same":
                th, bh, _ = _same_pad(H, keff, s)
                tw, bw, _ = _same_pad(W, keff, s)
                if not (th == bh == tw == bw):
                    raise KerasConversionError(
                        f"from_keras: layer {lname!r}: TF 'same' padding here is asymmetric "
                        f"(rows {th}/{bh}, cols {tw}/{bw} for input {H}x{W}, kernel {keff}, "
                        f"stride {s}); convnet pads symmetrically. Use an explicit symmetric "
                        "ZeroPadding2D + padding='valid' in the Keras model."
                    )
                pad = th
            else:
                pad = 0
            if pending_pad is not None:
                (pt, pb), (pl, pr) = pending_pad
                if pending_value != 0.0 or not (pt == pb == pl == pr) or pad:
                    raise KerasConversionError(
                        f"from_keras: padding {pending_pad} before conv {lname!r} is not a "
                        "symmetric zero pad"
                    )
                pad, pending_pad = pt, None
            add(M.Conv2D(C, int(kl.filters), k, stride=s, pad=pad, dilation=d, **kw(lname)))
            copies.append((f"{lname}/W", kl, "kernel", conv_weight_from_keras, False))
            copies.append((f"{lname}/b", kl, "bias", np.copy, False))
            flat_chw = None
            prev_nonneg = False
            add_activation(f"{lname}_{_act_name(kl.activation)}", _act_name(kl.activation),
                           lname, is_last)
        elif kind == "Conv2DTranspose":
            if pending_pad is not None:
                raise KerasConversionError(f"from_keras: padding before {lname!r} not supported")
            k = _pair(kl.kernel_size, "kernel_size", lname)
            s = _pair(kl.strides, "strides", lname)
            if _pair(kl.dilation_rate, "dilation_rate", lname) != 1:
                raise KerasConversionError(f"from_keras: layer {lname!r}: dilated transposed conv")
            op = kl.output_padding
            op = 0 if op is None else _pair(op, "output_padding", lname)
            C, H, W = shape
            if kl.padding == "valid":
                if kl.output_padding is None and k < s:
                    op = s - k  # Keras' default output length H*s when kernel < stride
                pad = 0
            else:
                # Keras 'same': out = (H-1)*s + k - 2*(k//2) + op (op None -> out = H*s);
                # TF crops floor(total/2) rows at the top, total = (H-1)*s + k - out.
                out = H * s if kl.output_padding is None else (H - 1) * s + k - 2 * (k // 2) + op
                total = (H - 1) * s + k - out
                if total < 0 or total % 2:
                    raise KerasConversionError(
                        f"from_keras: layer {lname!r}: Conv2DTranspose 'same' crops "
                        f"asymmetrically here ({total} rows); convnet crops symmetrically"
                    )
                pad, op = total // 2, 0
            add(M.ConvTranspose2D(C, int(kl.filters), k, stride=s, pad=pad, output_padding=op,
                                  **kw(lname)))
            copies.append((f"{lname}/W", kl, "kernel", conv_transpose_weight_from_keras, False))
            copies.append((f"{lname}/b", kl, "bias", np.copy, False))
            flat_chw = None
            prev_nonneg = False
            add_activation(f"{lname}_{_act_name(kl.activation)}", _act_name(kl.activation),
                           lname, is_last)
        elif kind == "Cropping2D":
            raise KerasConversionError(
                f"from_keras: layer {lname!r} (Cropping2D) is only supported as the '_crop' of "
                "a transposed conv made by to_keras; not convertible on its own"
            )
        elif kind == "Dense":
            chw = flat_chw
            if len(shape) != 1:
                raise KerasConversionError(
                    f"from_keras: Dense {lname!r} on a {len(shape) + 1}-D input (Keras applies "
                    "it to the last axis only); put a Flatten before it"
                )
            add(M.Dense(shape[0], int(kl.units), **kw(lname)))
            copies.append((f"{lname}/W", kl, "kernel",
                           lambda a, c=chw: dense_weight_from_keras(a, c), False))
            copies.append((f"{lname}/b", kl, "bias", np.copy, False))
            flat_chw = None
            prev_nonneg = False
            add_activation(f"{lname}_{_act_name(kl.activation)}", _act_name(kl.activation),
                           lname, is_last)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            ph, pw = kl.pool_size
            sh, sw = kl.strides
            if ph != pw or sh != sw:
                raise KerasConversionError(f"from_keras: layer {lname!r}: non-square pooling")
            k, s = int(ph), int(sh)
            C, H, W = shape
            pads = pending_pad or ((0, 0), (0, 0))
            pending_pad = None
            if kl.padding == "same":
                if pads != ((0, 0), (0, 0)):
                    raise KerasConversionError(f"from_keras: pad + 'same' pooling at {lname!r}")
                th, bh, _ = _same_pad(H, k, s)
                tw, bw, _ = _same_pad(W, k, s)
                if kind == "AveragePooling2D" and (th or bh or tw or bw):
                    raise KerasConversionError(
                        f"from_keras: layer {lname!r}: 'same' average pooling excludes the pad "
                        "from the count; convnet has no such mode"
                    )
                pads = ((th, bh), (tw, bw))
                pad_ignored = True  # TF's 'same' max pool never selects padding
            else:
                pad_ignored = pending_value == float("-inf") or (pending_value == 0 and prev_nonneg)
            mod = _pool_from_pads(M, kind, lname, k, s, (H, W), pads, pad_ignored, dtype)
            add(mod)
            flat_chw = None
        elif kind == "GlobalAveragePooling2D":
            if getattr(kl, "keepdims", False):
                raise KerasConversionError(f"from_keras: {lname!r}: keepdims=True not supported")
            add(M.GlobalAvgPool(**kw(lname)))
            flat_chw = None
        elif kind == "Flatten":
            flat_chw = tuple(shape) if len(shape) == 3 else None
            add(M.Flatten(**kw(lname)))
        elif kind == "ReLU":
            if kl.max_value is not None or float(kl.negative_slope) != 0 or float(kl.threshold):
                if kl.max_value is None and float(kl.threshold) == 0:
                    add(M.LeakyReLU(alpha=float(kl.negative_slope), **kw(lname)))
                    prev_nonneg = False
                    continue
                raise KerasConversionError(
                    f"from_keras: ReLU {lname!r} with max_value/threshold not supported"
                )
            add(M.ReLU(**kw(lname)))
            prev_nonneg = True
        elif kind in ("LeakyReLU", "ExactLeakyReLU"):
            add(M.LeakyReLU(alpha=float(kl.negative_slope), **kw(lname)))
            prev_nonneg = False
        elif kind == "Activation":
            act = _act_name(kl.activation)
            add_activation(lname, act, lname, is_last)
        elif kind == "Dropout":
            add(M.Dropout(float(kl.rate), seed=getattr(kl, "seed", None), **kw(lname)))
        elif kind == "BatchNormalization":
            axis = kl.axis if isinstance(kl.axis, int) else kl.axis[0]
            if axis not in (-1, len(shape)):
                raise KerasConversionError(f"from_keras: {lname!r}: BN must be over the last axis")
            if flat_chw is not None:
                raise KerasConversionError(
                    f"from_keras: {lname!r}: batch norm of a flattened NHWC map is not supported"
                )
            if not (kl.center and kl.scale):
                raise KerasConversionError(f"from_keras: {lname!r}: BN needs center and scale")
            add(M.BatchNorm(shape[0], eps=float(kl.epsilon), momentum=float(kl.momentum),
                            **kw(lname)))
            copies += [(f"{lname}/gamma", kl, "gamma", np.copy, False),
                       (f"{lname}/beta", kl, "beta", np.copy, False),
                       (f"{lname}/running_mean", kl, "moving_mean", np.copy, True),
                       (f"{lname}/running_var", kl, "moving_variance", np.copy, True)]
        else:
            raise KerasConversionError(
                f"from_keras: layer {lname!r} of type {kind} is not supported; "
                f"supported: {_SUPPORTED}"
            )
        if pending_pad is not None and kind not in ("ZeroPadding2D", "ConstantPad2D"):
            raise KerasConversionError(f"from_keras: padding before {lname!r} not supported")

    if pending_pad is not None:
        raise KerasConversionError("from_keras: the model ends with a padding layer")
    model = Sequential(modules, input_shape=in_shape,
                       name=_keras_safe(keras_model.name))
    for key, kl, attr, conv, is_buffer in copies:
        var = getattr(kl, attr, None)
        if var is None:
            if attr == "bias":  # use_bias=False: convnet always has a bias; make it zero
                model.params[key] = np.zeros_like(np.asarray(model.params[key]))
            continue
        val = conv(np.asarray(var.numpy())).astype(dtype)
        if is_buffer:
            _set_buffer(model, key, val)
        else:
            cur = np.asarray(model.params[key])
            if cur.shape != val.shape:
                raise KerasConversionError(
                    f"from_keras: {key}: Keras weight converts to {val.shape}, convnet expects "
                    f"{cur.shape}"
                )
            model.params[key] = val
    return model


def _pool_from_pads(M: Any, kind: str, lname: str, k: int, s: int, hw: tuple[int, int],
                    pads: tuple, pad_ignored: bool, dtype: np.dtype) -> Any:
    """A convnet pool equal to Keras pad ``pads`` + 'valid' pool, or KerasConversionError.

    Equal means the same windows: the same start (top/left pad == convnet's ``pad``) and the
    same number of windows (floor or ceil mode), with padded cells ignored by max pooling
    (``pad_ignored``: a -inf pad, TF's 'same', or zeros after a ReLU) or, for average pooling,
    zeros counted in the average on both sides (symmetric pad, floor mode only).
    """
    (pt, pb), (pl, pr) = pads
    H, W = hw
    kwargs = {"name": lname, "dtype": dtype}
    cls = M.MaxPool2D if kind == "MaxPooling2D" else M.AvgPool2D
    if pads == ((0, 0), (0, 0)):
        return cls(k, s, **kwargs)
    ho = (H + pt + pb - k) // s + 1
    wo = (W + pl + pr - k) // s + 1
    usable = pt == pl and (
        (kind == "MaxPooling2D" and pad_ignored)
        or (kind == "AveragePooling2D" and pt == pb == pr)
    )
    if usable:
        for ceil in (False, True) if kind == "MaxPooling2D" else (False,):
            try:
                mod = cls(k, s, pad=pt, ceil_mode=ceil, **kwargs)
                shape = tuple(mod.output_shape((1, H, W)))
            except ValueError:
                continue
            if shape[1:] == (ho, wo):
                return mod
    raise KerasConversionError(
        f"from_keras: pooling {lname!r} with padding {pads} (input {H}x{W}, pool {k}, stride "
        f"{s}) has no exact convnet equivalent"
    )


def _match_fire(kl: Any, by_name: dict, consumers: dict) -> dict | None:
    """Match squeeze conv (+relu) -> [expand1x1 (+relu), expand3x3 (+relu)] -> Concatenate."""

    def relu_after(layer: Any) -> tuple[Any, list[str]]:
        """The layer whose output is relu(layer's conv): itself if fused, else the next."""
        if _act_name(layer.activation) == "relu":
            return layer, [layer.name]
        nxt = consumers.get(layer.name, [])
        if len(nxt) == 1:
            n = by_name[nxt[0]]
            kind = type(n).__name__
            if (kind == "Activation" and _act_name(n.activation) == "relu") or (
                kind == "ReLU" and n.max_value is None and float(n.negative_slope) == 0
                and float(n.threshold) == 0
            ):
                return n, [layer.name, n.name]
        return None, []

    sq_out, members = relu_after(kl)
    if sq_out is None:
        return None
    branches = consumers.get(sq_out.name, [])
    if len(branches) != 2:
        return None
    outs = []
    for b in branches:
        bl = by_name[b]
        if type(bl).__name__ != "Conv2D":
            return None
        o, m = relu_after(bl)
        if o is None:
            return None
        outs.append((bl, o))
        members += m
    c0 = consumers.get(outs[0][1].name, [])
    c1 = consumers.get(outs[1][1].name, [])
    if len(c0) != 1 or c0 != c1 or type(by_name[c0[0]]).__name__ != "Concatenate":
        return None
    concat = by_name[c0[0]]
    order = _inbound(concat)
    outs.sort(key=lambda bo: order.index(bo[1].name))
    (e1, _), (e3, _) = outs
    if _pair(e1.kernel_size, "k", e1.name) != 1 or _pair(e3.kernel_size, "k", e3.name) != 3:
        return None
    if e3.padding != "same" or _pair(e3.strides, "s", e3.name) != 1 or \
            _pair(kl.kernel_size, "k", kl.name) != 1 or _pair(kl.strides, "s", kl.name) != 1:
        return None
    if concat.axis not in (-1, 3):
        return None
    members.append(concat.name)
    return {"squeeze": kl, "expand1x1": e1, "expand3x3": e3, "concat": concat,
            "members": members}


def _build_fire(M: Any, fire: dict, shape: tuple, dtype: np.dtype, lname: str):
    name = fire["concat"].name
    sq, e1, e3 = fire["squeeze"], fire["expand1x1"], fire["expand3x3"]
    mod = M.Fire(shape[0], int(sq.filters), int(e1.filters), int(e3.filters), name=name,
                 dtype=dtype)
    cmaps = []
    for sub, kl in (("squeeze1x1", sq), ("expand1x1", e1), ("expand3x3", e3)):
        cmaps.append((f"{name}/{sub}/W", kl, "kernel", conv_weight_from_keras, False))
        cmaps.append((f"{name}/{sub}/b", kl, "bias", np.copy, False))
    return mod, set(fire["members"]), cmaps


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------

DEFAULT_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


@dataclass
class CompareRow:
    """One compared quantity: max |a-b| and the max relative difference ``|a-b|/max|b|``."""

    kind: str  # "output", "loss", "grad"
    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    passed: bool


@dataclass
class CompareReport:
    """Result of :func:`compare`; ``print(report)`` gives a table, ``bool(report)`` = passed.

    The relative difference of arrays ``a`` (convnet) and ``b`` (Keras) is
    ``max|a - b| / max(max|b|, tiny)``: normalised by the largest magnitude, so entries that
    are tiny because of cancellation do not dominate.
    """

    dtype: str
    rtol: float
    rows: list[CompareRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    def failures(self) -> list[CompareRow]:
        return [r for r in self.rows if not r.passed]

    def to_dict(self) -> dict:
        return {
            "dtype": self.dtype, "rtol": self.rtol, "passed": self.passed,
            "rows": [r.__dict__ | {"shape": list(r.shape)} for r in self.rows],
            "skipped": list(self.skipped),
        }

    def __str__(self) -> str:
        w = max([len(r.name) for r in self.rows] + [10])
        lines = [f"convnet vs Keras ({self.dtype}, rtol {self.rtol:g})",
                 f"{'kind':<7}{'name':<{w + 2}}{'shape':<20}{'max abs':>12}{'max rel':>12}  ok"]
        for r in self.rows:
            lines.append(f"{r.kind:<7}{r.name:<{w + 2}}{str(r.shape):<20}{r.max_abs:>12.3e}"
                         f"{r.max_rel:>12.3e}  {'ok' if r.passed else 'FAIL'}")
        for s in self.skipped:
            lines.append(f"  (no counterpart: {s})")
        n_fail = len(self.failures())
        lines.append("PASSED" if self.passed else f"FAILED ({n_fail} of {len(self.rows)})")
        return "\n".join(lines)

    __repr__ = __str__


def _diff(kind: str, name: str, a: np.ndarray, b: np.ndarray, rtol: float) -> CompareRow:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return CompareRow(kind, name, a.shape, float("inf"), float("inf"), False)
    d = np.abs(a - b)
    max_abs = float(d.max()) if d.size else 0.0
    scale = float(np.abs(b).max()) if b.size else 0.0
    max_rel = max_abs / max(scale, np.finfo(np.float64).tiny)
    if max_abs == 0.0:
        max_rel = 0.0
    return CompareRow(kind, name, a.shape, max_abs, max_rel, bool(max_rel <= rtol))


def _keras_output_layer(kmodel: Any, convnet_name: str, knames: set[str],
                        cnames: set[str]) -> str | None:
    if f"{convnet_name}_crop" in knames:
        return f"{convnet_name}_crop"
    if convnet_name in knames:
        act = _act_name(getattr(kmodel.get_layer(convnet_name), "activation", None))
        if f"{convnet_name}_{act}" in cnames:
            return None  # Keras fuses the activation: its pre-activation output is not exposed
        return convnet_name
    # from_keras splits fused activations into '<keras name>_<activation>'
    for act in ("relu", "sigmoid", "tanh"):
        if convnet_name.endswith("_" + act) and convnet_name[: -len(act) - 1] in knames:
            return convnet_name[: -len(act) - 1]
    return None


def compare(model: Any, keras_model: Any, x: np.ndarray, y: np.ndarray | None = None,
            rtol: float | None = None, seed: int = 0) -> CompareReport:
    """Compare a convnet model with its Keras twin: outputs, loss and all gradients.

    Inputs:
    - model: convnet ``Sequential``.
    - keras_model: its Keras twin (:func:`to_keras`, or the model :func:`from_keras` read).
    - x: input, NCHW ``(N, C, H, W)`` (or ``(N, D)``); cast to the convnet model's dtype
      (float32 or float64), which is also the dtype compared in.
    - y: integer labels ``(N,)``: the loss is softmax cross-entropy of the scores (on the
      Keras side from its logits, or from its probabilities if it ends in a softmax) plus
      convnet's ``0.5 * reg * sum(W**2)``. If None, the scalar compared is
      ``sum(scores * g)`` for a fixed random ``g`` (seeded by ``seed``).
    - rtol: tolerance on the relative difference (default 1e-4 for float32 and 1e-10 for
      float64).

    Caveat (float32): a max-pool window whose two largest values differ by less than the
    rounding error (common on MNIST, whose zero background gives exactly tied windows) may
    pick a different maximum in the two libraries, so the *input* gradient can differ at
    those pixels although the conversion is exact. Check in float64 for a strict verdict.

    Returns:
    - a :class:`CompareReport`: one row per named layer output (both in inference mode, Keras
      outputs converted to NCHW / convnet flatten order), the loss, the gradient w.r.t. the
      input and every parameter gradient (Keras side via ``tf.GradientTape``).
    """
    tf = import_tf()
    keras = import_keras()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"compare: x must be a floating array (N, ...), got {x.dtype}")
    dt = _model_dtype(model)  # both models compute in the convnet model's dtype
    if dt not in DEFAULT_RTOL:
        raise ValueError(f"compare: the model must be float32 or float64, got {dt}")
    x = x.astype(dt, copy=False)
    if rtol is None:
        rtol = DEFAULT_RTOL[dt]
    report = CompareReport(dtype=dt.name, rtol=float(rtol))

    # ---- convnet side
    layers = _model_layers(model)
    names = [lyr.name for lyr in layers]
    acts = model.forward_layers(x, names, train=False)
    scores = acts[names[-1]]
    reg = float(getattr(model, "reg", 0.0) or 0.0)
    if y is not None:
        from convnet.layers import softmax_loss

        if getattr(model, "loss_name", "softmax") != "softmax":
            raise ValueError(
                f"compare: labels y need a loss='softmax' model, {model.name!r} has loss "
                f"{model.loss_name!r}; pass y=None to compare through a random projection"
            )
        y = np.asarray(y)
        loss, dscores = softmax_loss(scores, y)
    else:
        g = np.random.default_rng(seed).standard_normal(scores.shape).astype(dt)
        loss, dscores = float(np.sum(scores * g)), g
    dx = model.backward(dscores)
    grads = {k: np.array(v, copy=True) for k, v in model.grads.items()}
    for k in grads:
        if k.endswith("W") and (k == "W" or k.endswith("/W")):
            grads[k] = grads[k] + reg * np.asarray(model.params[k])
            loss = loss + 0.5 * reg * float(np.sum(np.asarray(model.params[k]) ** 2))

    # ---- Keras side
    knames = {lyr.name for lyr in keras_model.layers}
    pairs = []  # (convnet name, keras layer name)
    for n in names:
        kn = _keras_output_layer(keras_model, n, knames, set(names))
        if kn is None:
            report.skipped.append(n)
        else:
            pairs.append((n, kn))
    last_k = keras_model.layers[-1]
    probs_out = _act_name(getattr(last_k, "activation", None)) == "softmax"
    outs = [keras_model.get_layer(kn).output for _, kn in pairs]
    probe = keras.Model(keras_model.inputs, outs + [keras_model.outputs[0]])
    xk = tf.constant(nchw_to_nhwc(x))
    pmaps = _param_maps_for_compare(model, keras_model)
    variables = [getattr(keras_model.get_layer(pm.keras_layer), pm.attr) for pm in pmaps]
    with tf.GradientTape() as tape:
        tape.watch(xk)
        res = probe(xk, training=False)
        final = res[-1]
        if y is not None:
            yt = tf.constant(y.astype(np.int64))
            if probs_out:
                ce = keras.losses.sparse_categorical_crossentropy(yt, final, from_logits=False)
            else:
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yt, logits=final)
            kloss = tf.reduce_mean(ce)
        else:
            gk = tf.constant(nchw_to_nhwc(g)) if g.ndim == 4 else tf.constant(g)
            kloss = tf.reduce_sum(final * gk)
        for pm, v in zip(pmaps, variables, strict=True):
            if pm.attr == "kernel" and reg:
                kloss = kloss + 0.5 * reg * tf.reduce_sum(v * v)
    kgrads = tape.gradient(kloss, [xk] + variables)

    # ---- rows
    flat_chw: dict[str, tuple] = _flatten_layouts(model)
    for (n, _kn), r in zip(pairs, res[:-1], strict=True):
        a = np.asarray(r.numpy())
        a = nhwc_to_nchw(a)
        if n in flat_chw and a.ndim == 2:
            a = _flat_keras_to_convnet(a, flat_chw[n])
        mine = acts[n]
        if probs_out and _kn == last_k.name:
            # the Keras model ends in a fused softmax that convnet keeps in its loss
            from convnet.layers import softmax

            mine = softmax(mine)
        report.rows.append(_diff("output", n, mine, a, rtol))
    report.rows.append(_diff("loss", "loss", np.array(loss), np.array(kloss.numpy()), rtol))
    kdx = kgrads[0].numpy()
    report.rows.append(_diff("grad", "input", dx, nhwc_to_nchw(kdx).reshape(dx.shape), rtol))
    for pm, kg in zip(pmaps, kgrads[1:], strict=True):
        if kg is None or pm.key not in grads:
            report.skipped.append(f"grad {pm.key}")
            continue
        report.rows.append(_diff("grad", pm.key, grads[pm.key], pm.from_keras(kg.numpy()), rtol))
    return report


def _param_maps_for_compare(model: Any, keras_model: Any) -> list[_ParamMap]:
    """Trainable-parameter maps for a convnet model and its Keras counterpart.

    Works both for twins made by :func:`to_keras` and for models read by :func:`from_keras`
    (whose Keras layers carry the convnet names, and Fire parts ``<fire>/<sub>`` live in the
    Keras layers found by :func:`_match_fire`).
    """
    knames = {lyr.name for lyr in keras_model.layers}
    try:
        pmaps = _param_maps(model, keras_model)
    except KerasConversionError:
        pmaps = None
    if pmaps is None or any(pm.keras_layer not in knames for pm in pmaps):
        raise KerasConversionError("compare: the Keras model is not a twin of the convnet model")
    out = []
    for pm in pmaps:
        if pm.buffer:
            continue
        if getattr(keras_model.get_layer(pm.keras_layer), pm.attr, None) is None:
            continue
        out.append(pm)
    return out


def _flatten_layouts(model: Any) -> dict[str, tuple]:
    """Names of convnet layers whose 2-D output is a flattened (C, H, W) map -> (C, H, W)."""
    res: dict[str, tuple] = {}
    shape = _model_input_shape(model)
    chw = None
    for layer in _model_layers(model):
        kind = _kind(layer)
        out_shape = tuple(int(d) for d in layer.output_shape(shape))
        if kind == "Flatten":
            chw = tuple(shape) if len(shape) == 3 else None
        elif kind not in _ELEMENTWISE:
            chw = None
        if chw is not None:
            res[layer.name] = chw
        shape = out_shape
    return res


__all__ = [
    "KerasConversionError",
    "CompareReport",
    "CompareRow",
    "DEFAULT_RTOL",
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
    "to_keras",
]
