"""TensorFlow side of the attribution methods (:mod:`convnet.inputgrad.attribution`).

* :func:`guided_backend`: the same Keras model with every ReLU's gradient overridden by the
  guided-backpropagation rule (Springenberg et al. 2015), ``dx = (x > 0) * relu(dy)``,
  as a new :class:`~convnet.interop.tf_backend.TFBackend` (built once per backend and
  cached). The model is cloned with ``keras.models.clone_model``: ``Activation("relu")`` and
  ``ReLU`` layers become a guided-ReLU layer of the same name, layers with a fused
  ``activation="relu"`` (Conv2D, Dense) keep their class with a guided activation; the
  weights are copied layer by layer.
* :func:`tf_layer_gradient`: the activation of a layer and the gradient of
  ``<output, upstream>`` with respect to it, from one gradient tape (the feature map is an
  intermediate tensor of the taped forward pass).

TensorFlow is imported lazily, inside the functions.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from convnet.interop._tf import import_keras, import_tf
from convnet.interop.keras.layout import nchw_to_nhwc, nhwc_to_nchw
from convnet.interop.tf_backend import TFBackend

_GUIDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LAYER_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CLASSES: dict[str, Any] = {}


def guided_relu_fn(max_value: float | None = None, threshold: float = 0.0) -> Any:
    """A TF function ``y = min(max(x, threshold-gated x), max_value)`` whose gradient is the
    guided rule: the forward mask times the positive part of the incoming gradient."""
    tf = import_tf()

    @tf.custom_gradient
    def guided_relu(x: Any) -> Any:
        y = tf.where(x > threshold, x, tf.zeros_like(x))
        mask = x > threshold
        if max_value is not None:
            y = tf.minimum(y, tf.cast(max_value, x.dtype))
            mask = tf.logical_and(mask, x < max_value)

        def grad(dy: Any) -> Any:
            return tf.cast(mask, dy.dtype) * tf.nn.relu(dy)

        return y, grad

    return guided_relu


def guided_relu_layer_class() -> Any:
    """Keras layer applying :func:`guided_relu_fn` (built once; Keras imported lazily)."""
    if "GuidedReLU" in _CLASSES:
        return _CLASSES["GuidedReLU"]
    keras = import_keras()

    class GuidedReLU(keras.layers.Layer):
        """ReLU (optionally capped, as ReLU6) with the guided-backpropagation gradient."""

        def __init__(self, max_value: float | None = None, threshold: float = 0.0,
                     **kwargs: Any) -> None:  # fmt: skip
            super().__init__(**kwargs)
            self.max_value = None if max_value is None else float(max_value)
            self.threshold = float(threshold)
            self._fn = guided_relu_fn(self.max_value, self.threshold)

        def call(self, x: Any) -> Any:
            return self._fn(x)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict:
            return {**super().get_config(), "max_value": self.max_value,
                    "threshold": self.threshold}  # fmt: skip

    _CLASSES["GuidedReLU"] = GuidedReLU
    return GuidedReLU


def _is_relu(fn: Any) -> bool:
    return getattr(fn, "__name__", "") == "relu"


def _guided_clone(layer: Any) -> Any:
    """``clone_model``'s per-layer function: ReLUs become guided, the rest is copied as is."""
    keras = import_keras()
    cfg = layer.get_config()
    kind = type(layer).__name__
    common = {"name": layer.name, "dtype": layer.dtype_policy}
    if kind == "Activation" and _is_relu(layer.activation):
        return guided_relu_layer_class()(**common)
    if isinstance(layer, keras.layers.ReLU) and not float(cfg.get("negative_slope", 0.0)):
        return guided_relu_layer_class()(max_value=cfg.get("max_value"),
                                         threshold=float(cfg.get("threshold", 0.0)),
                                         **common)  # fmt: skip
    new = type(layer).from_config(cfg)
    if _is_relu(getattr(layer, "activation", None)) and kind != "Activation":
        new.activation = guided_relu_fn()
    return new


def guided_keras_model(model: Any) -> Any:
    """A copy of a Keras model (same layer names and weights) with guided-ReLU gradients."""
    keras = import_keras()
    clone = keras.models.clone_model(model, clone_function=_guided_clone)
    for old in model.layers:
        weights = old.get_weights()
        if weights:
            clone.get_layer(old.name).set_weights(weights)
    return clone


def guided_backend(backend: TFBackend) -> TFBackend:
    """A TFBackend over the guided copy of ``backend.model`` (cached per backend)."""
    cached = _GUIDED.get(backend)
    if cached is not None:
        return cached
    guided = TFBackend(
        guided_keras_model(backend.model),
        backend.input_space,
        output_layer=backend.output_layer,
        output_is_probs=backend.output_is_probs,
        fixed_size=backend.input_shape is not None,
    )
    _GUIDED[backend] = guided
    return guided


def _layer_fn(backend: TFBackend, layer: str) -> Any:
    fns = _LAYER_FNS.setdefault(backend, {})
    if layer in fns:
        return fns[layer]
    tf, keras = import_tf(), import_keras()
    model = backend.model
    sub = keras.Model(model.inputs, [model.get_layer(layer).output,
                                     model.get_layer(backend.output_layer).output])  # fmt: skip
    c = backend.input_space.channels
    x_spec = tf.TensorSpec([None, None, None, c], backend.dtype)
    up_spec = tf.TensorSpec([None, None], backend.dtype)

    def fn(x: Any, up: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            act, out = sub(x, training=False)
        return act, tape.gradient(out, act, output_gradients=up)

    fns[layer] = tf.function(fn, input_signature=[x_spec, up_spec], reduce_retracing=True)
    return fns[layer]


def tf_layer_gradient(
    backend: TFBackend, x: np.ndarray, layer: str, upstream: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Activation of ``layer`` for x (N, C, H, W) and d<output, upstream>/d activation.

    Inputs: x NCHW in model space; layer a Keras layer name before the output layer;
    upstream (N, K) shaped like the output. Returns ``(A, dA)`` in NCHW (feature maps) or
    (N, D) (vectors).
    """
    tf = import_tf()
    fn = _layer_fn(backend, layer)
    xt = tf.convert_to_tensor(nchw_to_nhwc(np.asarray(x, dtype=backend.dtype)))
    act, grad = fn(xt, tf.convert_to_tensor(np.asarray(upstream, dtype=backend.dtype)))
    if grad is None:  # pragma: no cover - the output does not depend on the layer
        raise ValueError(f"{backend.name}: the output does not depend on layer {layer!r}")
    return nhwc_to_nchw(act.numpy()), nhwc_to_nchw(grad.numpy())


__all__ = [
    "guided_backend",
    "guided_keras_model",
    "guided_relu_fn",
    "guided_relu_layer_class",
    "tf_layer_gradient",
]
