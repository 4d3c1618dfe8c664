"""Which convnet array goes into which Keras variable, and how: the one statement of the
weight-mapping rules, used to copy weights both ways and to compare gradients.

Keras layer names: a convnet layer ``name`` with weights is the Keras layer ``name``; the
parts of a ``Fire`` module ``fire2`` are ``fire2_squeeze1x1``, ``fire2_expand1x1`` and
``fire2_expand3x3`` (Keras 3 does not allow ``/`` in layer names). Batch norm: ``gamma``,
``beta`` and the running mean/variance map one to one (both libraries update
``running = momentum * running + (1 - momentum) * batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from convnet.interop._tf import import_keras
from convnet.interop.keras import layout
from convnet.interop.keras.errors import KerasConversionError
from convnet.interop.keras.walk import Step, walk

FIRE_PARTS = ("squeeze1x1", "expand1x1", "expand3x3")


def fire_part_name(fire: str, part: str) -> str:
    """Keras name of one conv of a Fire module."""
    return f"{fire}_{part}"


@dataclass(frozen=True)
class ParamMap:
    """One convnet array and its Keras variable.

    - key: ``"conv1/W"`` (a key of ``model.params``) or ``"bn1/running_mean"`` (of
      ``model.buffers``, then ``buffer`` is True).
    - keras_layer, attr: the Keras layer name and its variable (``kernel``, ``bias``,
      ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``).
    - to_keras, from_keras: the layout converters, convnet array <-> Keras array.
    """

    key: str
    keras_layer: str
    attr: str
    to_keras: Callable[[np.ndarray], np.ndarray]
    from_keras: Callable[[np.ndarray], np.ndarray]
    buffer: bool = False


def _kernel_bias(owner: str, keras_layer: str, to_k: Callable, from_k: Callable) -> list[ParamMap]:
    return [ParamMap(f"{owner}/W", keras_layer, "kernel", to_k, from_k),
            ParamMap(f"{owner}/b", keras_layer, "bias", np.copy, np.copy)]


def _dense(step: Step) -> list[ParamMap]:
    chw = step.dense_chw
    return _kernel_bias(step.name, step.name, partial(layout.dense_weight_to_keras, chw=chw),
                        partial(layout.dense_weight_from_keras, chw=chw))


def _conv(step: Step) -> list[ParamMap]:
    return _kernel_bias(step.name, step.name, layout.conv_weight_to_keras,
                        layout.conv_weight_from_keras)


def _conv_transpose(step: Step) -> list[ParamMap]:
    return _kernel_bias(step.name, step.name, layout.conv_transpose_weight_to_keras,
                        layout.conv_transpose_weight_from_keras)


def _batchnorm(step: Step) -> list[ParamMap]:
    if step.in_chw is not None:
        raise KerasConversionError(
            f"layer {step.name!r}: batch norm of a flattened map has no exact Keras twin "
            "(per-feature statistics in a different flatten order)"
        )
    n = step.name
    pairs = [("gamma", "gamma", False), ("beta", "beta", False),
             ("running_mean", "moving_mean", True), ("running_var", "moving_variance", True)]
    return [ParamMap(f"{n}/{ours}", n, theirs, np.copy, np.copy, buf)
            for ours, theirs, buf in pairs]


def _fire(step: Step) -> list[ParamMap]:
    return [pm for part in FIRE_PARTS
            for pm in _kernel_bias(f"{step.name}/{part}", fire_part_name(step.name, part),
                                   layout.conv_weight_to_keras, layout.conv_weight_from_keras)]


# One entry per convnet layer kind that has weights; the others map nothing.
LAYER_MAPS: dict[str, Callable[[Step], list[ParamMap]]] = {
    "Dense": _dense,
    "Conv2D": _conv,
    "ConvTranspose2D": _conv_transpose,
    "BatchNorm": _batchnorm,
    "Fire": _fire,
}


def param_maps(model: Any, keras_names: Mapping[str, str] | None = None) -> list[ParamMap]:
    """Every weight and batch-norm statistic of a convnet model with its Keras variable.

    Inputs:
    - model: a convnet ``Sequential``.
    - keras_names: Keras layer names that differ from the rule above, by the convnet owner of
      the arrays (``{"fire2/squeeze1x1": "conv_7"}``: ``from_keras`` reads a Fire module whose
      convs keep the Keras model's own names).
    """
    maps = [pm for step in walk(model) for pm in LAYER_MAPS.get(step.kind, lambda s: [])(step)]
    if keras_names:
        maps = [replace(pm, keras_layer=keras_names.get(_owner(pm), pm.keras_layer))
                for pm in maps]
    return maps


def _owner(pm: ParamMap) -> str:
    """The convnet layer (or Fire part) an array belongs to: ``"fire2/squeeze1x1"``."""
    return pm.key.rsplit("/", 1)[0]


def twin_maps(model: Any, kmodel: Any) -> list[ParamMap]:
    """:func:`param_maps`, checked against the layer names of the Keras model ``kmodel``."""
    maps = param_maps(model)
    missing = sorted({pm.keras_layer for pm in maps} - {lyr.name for lyr in kmodel.layers})
    if missing:
        raise KerasConversionError(f"the Keras model has no layers named {missing}")
    return maps


def _store(model: Any, pm: ParamMap) -> Any:
    return model.buffers if pm.buffer else model.params


def copy_to_keras(model: Any, kmodel: Any, maps: list[ParamMap]) -> None:
    """Assign each mapped convnet array to its Keras variable (shapes checked)."""
    for pm in maps:
        var = getattr(kmodel.get_layer(pm.keras_layer), pm.attr, None)
        if var is None:
            continue
        new = pm.to_keras(np.asarray(_store(model, pm)[pm.key]))
        if tuple(var.shape) != new.shape:
            raise KerasConversionError(
                f"{pm.key}: converted shape {new.shape} != Keras {pm.keras_layer}.{pm.attr} "
                f"shape {tuple(var.shape)}"
            )
        var.assign(new.astype(var.dtype))


def copy_from_keras(kmodel: Any, model: Any, maps: list[ParamMap]) -> None:
    """Assign each mapped Keras variable to its convnet array (shapes checked, cast to the
    convnet dtype). A Keras layer without a bias (``use_bias=False``) gives a zero bias."""
    for pm in maps:
        store = _store(model, pm)
        cur = np.asarray(store[pm.key])
        var = getattr(kmodel.get_layer(pm.keras_layer), pm.attr, None)
        if var is None:
            if pm.attr == "bias":
                store[pm.key] = np.zeros_like(cur)
            continue
        val = pm.from_keras(np.asarray(var.numpy()))
        if cur.shape != val.shape:
            raise KerasConversionError(
                f"{pm.key}: Keras weight {pm.keras_layer}.{pm.attr} converts to {val.shape}, "
                f"convnet expects {cur.shape}"
            )
        store[pm.key] = val.astype(cur.dtype)


def copy_weights_to_keras(model: Any, kmodel: Any) -> None:
    """Copy convnet parameters (and BN statistics) into an existing twin from ``to_keras``."""
    import_keras()
    copy_to_keras(model, kmodel, twin_maps(model, kmodel))


def copy_weights_from_keras(kmodel: Any, model: Any) -> None:
    """Copy the weights of a twin from ``to_keras`` back into the convnet model."""
    import_keras()
    copy_from_keras(kmodel, model, twin_maps(model, kmodel))


__all__ = [
    "FIRE_PARTS",
    "LAYER_MAPS",
    "ParamMap",
    "copy_from_keras",
    "copy_to_keras",
    "copy_weights_from_keras",
    "copy_weights_to_keras",
    "fire_part_name",
    "param_maps",
    "twin_maps",
]
