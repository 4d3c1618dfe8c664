"""``from_keras``: a convnet ``Sequential`` from a Keras model, one converter per Keras layer kind.

Each converter reads one Keras layer into convnet modules on a :class:`_Reader`, which holds
the modules so far, the current convnet shape, and a pad waiting for the conv or pool after
it. The weights are then copied with the same parameter maps ``to_keras`` uses.

Padding rules (never silently different):

* ``'same'`` conv padding becomes the symmetric ``pad`` TF would use for the model's input
  size; where TF's ``'same'`` is asymmetric (odd total padding, e.g. stride 2 on even sizes)
  convnet cannot express it and the layer is refused by name (use an explicit symmetric
  ``ZeroPadding2D`` + ``'valid'`` conv in the Keras model instead).
* A symmetric ``ZeroPadding2D`` before a conv becomes the conv's ``pad``; a pad before a pool
  becomes its ``pad`` and/or ``ceil_mode`` when the windows coincide.
* ``'same'`` max pooling (TF ignores its padding) likewise; ``'same'`` average pooling only
  when it needs no padding (TF leaves padding out of the count, convnet counts zeros).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.interop._tf import import_keras
from convnet.interop.keras.errors import KerasConversionError, square
from convnet.interop.keras.fire import match_fire
from convnet.interop.keras.keras_graph import act_name, consumers, inbound
from convnet.interop.keras.layout import shape_from_keras
from convnet.interop.keras.params import FIRE_PARTS, copy_from_keras, param_maps
from convnet.interop.keras.to_keras import keras_safe

SUPPORTED = (
    "InputLayer, Conv2D, Conv2DTranspose, Dense, MaxPooling2D, AveragePooling2D, "
    "GlobalAveragePooling2D, Flatten, ReLU, LeakyReLU, Activation (relu, sigmoid, tanh, linear, "
    "softmax at the end), Dropout, BatchNormalization, ZeroPadding2D (before a conv or pool), "
    "Concatenate (in a Fire module)"
)
_PAD_KINDS = ("ZeroPadding2D", "ConstantPad2D")
_NO_PAD = ((0, 0), (0, 0))


@dataclass
class _Reader:
    """The convnet model being read from a Keras graph, layer by layer."""

    M: Any  # convnet.models.modules
    dtype: np.dtype
    shape: tuple[int, ...]  # convnet shape (no batch) of the current tensor
    by_name: dict
    consumers: dict
    modules: list = field(default_factory=list)
    keras_names: dict = field(default_factory=dict)  # Fire part -> its Keras layer name
    done: set = field(default_factory=set)  # Keras layers already read (Fire members)
    pad: tuple | None = None  # ((t, b), (l, r)) from a ZeroPadding2D / ConstantPad2D
    pad_value: float = 0.0
    nonneg: bool = False  # the current tensor is known to be >= 0
    is_last: bool = False

    def add(self, mod: Any, nonneg: bool | None = None) -> None:
        self.modules.append(mod)
        self.shape = tuple(int(d) for d in mod.output_shape(self.shape))
        if nonneg is not None:
            self.nonneg = nonneg

    def kw(self, name: str) -> dict:
        return {"name": name, "dtype": self.dtype}

    def take_pad(self) -> tuple:
        pads, self.pad = self.pad or _NO_PAD, None
        return pads


def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TF 'same' padding along one axis of size n: (pad_before, pad_after)."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _activation(r: _Reader, base: str, act: str, lname: str) -> None:
    """Append convnet's layer for Keras activation ``act`` (named ``base``); linear and a
    final softmax (convnet's softmax lives in the loss) add nothing."""
    kinds = {"relu": ("ReLU", True), "sigmoid": ("Sigmoid", True), "tanh": ("Tanh", False)}
    if act == "linear" or (act == "softmax" and r.is_last):
        return
    if act not in kinds:
        raise KerasConversionError(
            f"from_keras: layer {lname!r}: activation {act!r} not supported here "
            "(relu, sigmoid, tanh, linear, or softmax as the very last layer)"
        )
    cls, nonneg = kinds[act]
    r.add(getattr(r.M, cls)(**r.kw(base)), nonneg)


def _fused_activation(r: _Reader, kl: Any) -> None:
    act = act_name(kl.activation)
    _activation(r, f"{kl.name}_{act}", act, kl.name)


def _padding(r: _Reader, kl: Any) -> None:
    if r.pad is not None:
        raise KerasConversionError(f"from_keras: two padding layers in a row at {kl.name!r}")
    r.pad = tuple(tuple(int(v) for v in p) for p in kl.padding)
    r.pad_value = 0.0 if type(kl).__name__ == "ZeroPadding2D" else float(kl.value)


def _conv_pad(r: _Reader, kl: Any, keff: int, s: int) -> int:
    """convnet's symmetric pad for a Keras conv: its 'same' padding or the pad before it."""
    lname, (_, H, W) = kl.name, r.shape
    pad = 0
    if kl.padding == "same":
        th, bh = _same_pad(H, keff, s)
        tw, bw = _same_pad(W, keff, s)
        if not (th == bh == tw == bw):
            raise KerasConversionError(
                f"from_keras: layer {lname!r}: TF 'same' padding here is asymmetric "
                f"(rows {th}/{bh}, cols {tw}/{bw} for input {H}x{W}, kernel {keff}, "
                f"stride {s}); convnet pads symmetrically. Use an explicit symmetric "
                "ZeroPadding2D + padding='valid' in the Keras model."
            )
        pad = th
    if r.pad is not None:
        (pt, pb), (pl, pr) = r.pad
        if r.pad_value != 0.0 or not (pt == pb == pl == pr) or pad:
            raise KerasConversionError(
                f"from_keras: padding {r.pad} before conv {lname!r} is not a symmetric zero pad"
            )
        pad, r.pad = pt, None
    return pad


def _conv(r: _Reader, kl: Any) -> None:
    lname = kl.name
    if getattr(kl, "groups", 1) != 1:
        raise KerasConversionError(f"from_keras: layer {lname!r}: grouped conv")
    k = square(kl.kernel_size, "kernel_size", lname)
    s = square(kl.strides, "strides", lname)
    d = square(kl.dilation_rate, "dilation_rate", lname)
    pad = _conv_pad(r, kl, d * (k - 1) + 1, s)
    r.add(r.M.Conv2D(r.shape[0], int(kl.filters), k, stride=s, pad=pad, dilation=d,
                     **r.kw(lname)), nonneg=False)
    _fused_activation(r, kl)


def _conv_transpose(r: _Reader, kl: Any) -> None:
    lname = kl.name
    if r.pad is not None:
        raise KerasConversionError(f"from_keras: padding before {lname!r} not supported")
    k = square(kl.kernel_size, "kernel_size", lname)
    s = square(kl.strides, "strides", lname)
    if square(kl.dilation_rate, "dilation_rate", lname) != 1:
        raise KerasConversionError(f"from_keras: layer {lname!r}: dilated transposed conv")
    op = 0 if kl.output_padding is None else square(kl.output_padding, "output_padding", lname)
    H = r.shape[1]
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
    r.add(r.M.ConvTranspose2D(r.shape[0], int(kl.filters), k, stride=s, pad=pad,
                              output_padding=op, **r.kw(lname)), nonneg=False)
    _fused_activation(r, kl)


def _cropping(r: _Reader, kl: Any) -> None:
    raise KerasConversionError(
        f"from_keras: layer {kl.name!r} (Cropping2D) is only supported as the '_crop' of "
        "a transposed conv made by to_keras; not convertible on its own"
    )


def _dense(r: _Reader, kl: Any) -> None:
    if len(r.shape) != 1:
        raise KerasConversionError(
            f"from_keras: Dense {kl.name!r} on a {len(r.shape) + 1}-D input (Keras applies "
            "it to the last axis only); put a Flatten before it"
        )
    r.add(r.M.Dense(r.shape[0], int(kl.units), **r.kw(kl.name)), nonneg=False)
    _fused_activation(r, kl)


def _pool(r: _Reader, kl: Any) -> None:
    lname, kind = kl.name, type(kl).__name__
    (ph, pw), (sh, sw) = kl.pool_size, kl.strides
    if ph != pw or sh != sw:
        raise KerasConversionError(f"from_keras: layer {lname!r}: non-square pooling")
    k, s, (_, H, W) = int(ph), int(sh), r.shape
    pad_value = r.pad_value
    pads = r.take_pad()
    if kl.padding == "same":
        if pads != _NO_PAD:
            raise KerasConversionError(f"from_keras: pad + 'same' pooling at {lname!r}")
        pads = (_same_pad(H, k, s), _same_pad(W, k, s))
        if kind == "AveragePooling2D" and pads != _NO_PAD:
            raise KerasConversionError(
                f"from_keras: layer {lname!r}: 'same' average pooling excludes the pad "
                "from the count; convnet has no such mode"
            )
        pad_ignored = True  # TF's 'same' max pool never selects padding
    else:
        pad_ignored = pad_value == float("-inf") or (pad_value == 0 and r.nonneg)
    r.add(_pool_from_pads(r, kind, lname, k, s, pads, pad_ignored))


def _pool_from_pads(r: _Reader, kind: str, lname: str, k: int, s: int, pads: tuple,
                    pad_ignored: bool) -> Any:
    """A convnet pool equal to Keras pad ``pads`` + 'valid' pool, or KerasConversionError.

    Equal means the same windows: the same start (top/left pad == convnet's ``pad``) and the
    same number of windows (floor or ceil mode), with padded cells ignored by max pooling
    (``pad_ignored``: a -inf pad, TF's 'same', or zeros after a ReLU) or, for average pooling,
    zeros counted in the average on both sides (symmetric pad, floor mode only).
    """
    (pt, pb), (pl, pr) = pads
    _, H, W = r.shape
    is_max = kind == "MaxPooling2D"
    cls = r.M.MaxPool2D if is_max else r.M.AvgPool2D
    if pads == _NO_PAD:
        return cls(k, s, **r.kw(lname))
    want = ((H + pt + pb - k) // s + 1, (W + pl + pr - k) // s + 1)
    usable = pt == pl and ((is_max and pad_ignored) or (not is_max and pt == pb == pr))
    modes = ((False, True) if is_max else (False,)) if usable else ()
    for ceil in modes:
        try:
            mod = cls(k, s, pad=pt, ceil_mode=ceil, **r.kw(lname))
            if tuple(mod.output_shape((1, H, W)))[1:] == want:
                return mod
        except ValueError:
            continue
    raise KerasConversionError(
        f"from_keras: pooling {lname!r} with padding {pads} (input {H}x{W}, pool {k}, stride "
        f"{s}) has no exact convnet equivalent"
    )


def _global_pool(r: _Reader, kl: Any) -> None:
    if getattr(kl, "keepdims", False):
        raise KerasConversionError(f"from_keras: {kl.name!r}: keepdims=True not supported")
    r.add(r.M.GlobalAvgPool(**r.kw(kl.name)))


def _flatten(r: _Reader, kl: Any) -> None:
    r.add(r.M.Flatten(**r.kw(kl.name)))


def _relu(r: _Reader, kl: Any) -> None:
    if kl.max_value is not None or float(kl.threshold):
        raise KerasConversionError(
            f"from_keras: ReLU {kl.name!r} with max_value/threshold not supported"
        )
    if float(kl.negative_slope) != 0:
        _leaky_relu(r, kl)
    else:
        r.add(r.M.ReLU(**r.kw(kl.name)), nonneg=True)


def _leaky_relu(r: _Reader, kl: Any) -> None:
    r.add(r.M.LeakyReLU(alpha=float(kl.negative_slope), **r.kw(kl.name)), nonneg=False)


def _activation_layer(r: _Reader, kl: Any) -> None:
    _activation(r, kl.name, act_name(kl.activation), kl.name)


def _dropout(r: _Reader, kl: Any) -> None:
    r.add(r.M.Dropout(float(kl.rate), seed=getattr(kl, "seed", None), **r.kw(kl.name)))


def _batchnorm(r: _Reader, kl: Any) -> None:
    lname = kl.name
    axis = kl.axis if isinstance(kl.axis, int) else kl.axis[0]
    if axis not in (-1, len(r.shape)):
        raise KerasConversionError(f"from_keras: {lname!r}: BN must be over the last axis")
    if not (kl.center and kl.scale):
        raise KerasConversionError(f"from_keras: {lname!r}: BN needs center and scale")
    r.add(r.M.BatchNorm(r.shape[0], eps=float(kl.epsilon), momentum=float(kl.momentum),
                        **r.kw(lname)), nonneg=False)


FROM_KERAS: dict[str, Callable[[_Reader, Any], None]] = {
    "ZeroPadding2D": _padding,
    "ConstantPad2D": _padding,
    "Conv2D": _conv,
    "Conv2DTranspose": _conv_transpose,
    "Cropping2D": _cropping,
    "Dense": _dense,
    "MaxPooling2D": _pool,
    "AveragePooling2D": _pool,
    "GlobalAveragePooling2D": _global_pool,
    "Flatten": _flatten,
    "ReLU": _relu,
    "LeakyReLU": _leaky_relu,
    "ExactLeakyReLU": _leaky_relu,
    "Activation": _activation_layer,
    "Dropout": _dropout,
    "BatchNormalization": _batchnorm,
}


def _read_fire(r: _Reader, kl: Any) -> bool:
    """Read a Fire module starting at Keras conv ``kl``; False if ``kl`` starts none."""
    fire = match_fire(kl, r.by_name, r.consumers)
    if fire is None:
        return False
    name = fire.concat.name
    if r.pad is not None:
        raise KerasConversionError(f"from_keras: padding before Fire module {name!r}")
    parts = dict(zip(FIRE_PARTS, (fire.squeeze, fire.expand1x1, fire.expand3x3), strict=True))
    r.add(r.M.Fire(r.shape[0], *(int(parts[p].filters) for p in FIRE_PARTS), **r.kw(name)),
          nonneg=True)
    r.keras_names.update({f"{name}/{p}": parts[p].name for p in FIRE_PARTS})
    r.done.update(fire.members)
    return True


def _check_sequential(r: _Reader, kl: Any, kind: str) -> None:
    """Refuse a layer with several inputs or readers (outside a Fire module), or NCHW."""
    n_in = len(inbound(kl))
    if n_in > 1:
        raise KerasConversionError(
            f"from_keras: layer {kl.name!r} ({kind}) has {n_in} inputs; convnet models "
            f"are sequential (Concatenate only inside a Fire module). Supported: {SUPPORTED}"
        )
    if len(r.consumers.get(kl.name, [])) > 1:
        raise KerasConversionError(
            f"from_keras: the output of layer {kl.name!r} ({kind}) feeds several layers; "
            "only Fire-module branches are supported"
        )
    if getattr(kl, "data_format", "channels_last") != "channels_last":
        raise KerasConversionError(f"from_keras: layer {kl.name!r}: only channels_last")


def _read_layer(r: _Reader, kl: Any) -> None:
    kind = type(kl).__name__
    if kind == "InputLayer" or (kind == "Conv2D" and _read_fire(r, kl)):
        return
    _check_sequential(r, kl, kind)
    convert = FROM_KERAS.get(kind)
    if convert is None:
        raise KerasConversionError(
            f"from_keras: layer {kl.name!r} of type {kind} is not supported; "
            f"supported: {SUPPORTED}"
        )
    convert(r, kl)
    if r.pad is not None and kind not in _PAD_KINDS:
        raise KerasConversionError(f"from_keras: padding before {kl.name!r} not supported")


def _input_shape_and_dtype(keras_model: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise KerasConversionError(
            f"from_keras: {keras_model.name!r} has {len(keras_model.inputs)} inputs and "
            f"{len(keras_model.outputs)} outputs; convnet models have one of each"
        )
    shape_k = tuple(keras_model.input_shape[1:])
    if any(d is None for d in shape_k):
        raise KerasConversionError(
            f"from_keras: the Keras input shape {keras_model.input_shape} must be fully known"
        )
    if dtype is None:
        weighted = [lyr for lyr in keras_model.layers if lyr.weights]
        dtype = weighted[0].weights[0].dtype if weighted else np.float32
    return shape_from_keras(shape_k), np.dtype(dtype)


def from_keras(keras_model: Any, dtype: Any = None) -> Any:
    """Build a convnet ``Sequential`` from a Keras model made of supported layers.

    Inputs:
    - keras_model: a Keras 3 Sequential or functional model, NHWC, input ``(None, H, W, C)``
      or ``(None, D)``. Layers: see ``SUPPORTED`` in this module. Fused activations
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
    from convnet.models import modules
    from convnet.models.sequential import Sequential

    in_shape, dt = _input_shape_and_dtype(keras_model, dtype)
    klayers = list(keras_model.layers)
    r = _Reader(modules, dt, in_shape, {lyr.name: lyr for lyr in klayers}, consumers(klayers))
    for i, kl in enumerate(klayers):
        if kl.name not in r.done:
            r.is_last = i == len(klayers) - 1
            _read_layer(r, kl)
    if r.pad is not None:
        raise KerasConversionError("from_keras: the model ends with a padding layer")
    model = Sequential(r.modules, input_shape=in_shape, name=keras_safe(keras_model.name))
    copy_from_keras(keras_model, model, param_maps(model, r.keras_names))
    return model


__all__ = ["FROM_KERAS", "SUPPORTED", "from_keras"]
