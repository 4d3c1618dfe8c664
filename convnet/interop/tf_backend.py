"""TensorFlow backend for the input-gradient methods: a Keras model behind the
:class:`convnet.backend.Backend` interface.

* ``forward(x, layers)`` runs a multi-output sub-model (``keras.Model(model.inputs,
  [layer.output for each requested layer])``), built once per set of layers and cached;
* ``vjp(upstream)`` computes ``tape.gradient(acts, x, output_gradients=upstream)``;
* both run inside ``tf.function`` with an ``input_signature`` whose batch, height and width
  are unknown, so changing the image size (octaves, tiles) does not retrace
  (``trace_count`` counts the traces, for tests);
* arrays cross the boundary as NCHW NumPy (converted to and from Keras' NHWC here), so
  objectives and methods never see the layout difference.

TensorFlow is imported lazily when a :class:`TFBackend` is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convnet.backend import Backend, InputSpace
from convnet.interop._tf import import_keras, import_tf
from convnet.interop.keras.layout import nchw_to_nhwc, nhwc_to_nchw


class TFBackend(Backend):
    """Backend over a Keras (3) model with an NHWC image input.

    Inputs:
    - keras_model: a functional or Sequential Keras model (e.g. ``to_keras(squeezenet)`` or a
      ``keras.applications`` model).
    - input_space: its :class:`InputSpace` (e.g. ``InputSpace.tf_minus1_1()`` for
      MobileNet/Inception, ``caffe_bgr_0_255()`` for the SqueezeNet twin).
    - output_layer: class-score layer (default: the last layer).
    - output_is_probs: whether that layer is a softmax (default: detected from its
      ``activation``).
    - fixed_size: default: True iff the model's input has a known height and width.
    """

    def __init__(
        self,
        keras_model: Any,
        input_space: InputSpace,
        output_layer: str | None = None,
        output_is_probs: bool | None = None,
        fixed_size: bool | None = None,
    ) -> None:
        super().__init__()
        self.tf = import_tf()
        self.keras = import_keras()
        self.model = keras_model
        self.name = f"TFBackend({keras_model.name})"
        self.input_space = input_space
        self.layer_names = [
            layer.name for layer in keras_model.layers if type(layer).__name__ != "InputLayer"
        ]
        shape = tuple(keras_model.inputs[0].shape)  # (None, H, W, C)
        if len(shape) != 4:
            raise ValueError(f"{self.name}: the model input must be NHWC images, got {shape}")
        h, w, c = shape[1:]
        if c is not None and int(c) != input_space.channels:
            raise ValueError(
                f"{self.name}: model takes {c} channels, input space {input_space.name} has "
                f"{input_space.channels}"
            )
        if fixed_size is None:
            fixed_size = h is not None and w is not None
        self.input_shape = (input_space.channels, int(h), int(w)) if fixed_size else None
        self.dtype = np.dtype(keras_model.inputs[0].dtype)
        self.output_layer = output_layer or self.layer_names[-1]
        self.resolve(self.output_layer)
        if output_is_probs is None:
            act = getattr(keras_model.get_layer(self.output_layer), "activation", None)
            output_is_probs = getattr(act, "__name__", "") == "softmax"
        self.output_is_probs = bool(output_is_probs)
        out_shape = keras_model.get_layer(self.output_layer).output.shape
        self._num_classes = int(out_shape[-1]) if out_shape[-1] is not None else None
        self._fns: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self.trace_count = 0
        self._last_names: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int | None:
        return self._num_classes

    # ------------------------------------------------------------------ functions
    def _functions(self, names: tuple[str, ...]) -> tuple[Any, Any]:
        """(forward, vjp) tf.functions for this set of layers, built once and cached."""
        if names in self._fns:
            return self._fns[names]
        tf, keras = self.tf, self.keras
        outputs = [self.model.get_layer(n).output for n in names]
        sub = keras.Model(inputs=self.model.inputs, outputs=outputs)
        c = self.input_space.channels
        x_spec = tf.TensorSpec([None, None, None, c], self.dtype)
        up_specs = [tf.TensorSpec([None] * len(o.shape), self.dtype) for o in outputs]

        def _call(x: Any) -> list:
            out = sub(x, training=False)
            return list(out) if isinstance(out, list | tuple) else [out]

        def fwd(x: Any) -> list:
            self.trace_count += 1  # Python side effect: runs only while tracing
            return _call(x)

        def vjp(x: Any, ups: Sequence[Any]) -> Any:
            self.trace_count += 1
            with tf.GradientTape() as tape:
                tape.watch(x)
                acts = _call(x)
            return tape.gradient(acts, x, output_gradients=list(ups))

        fns = (
            tf.function(fwd, input_signature=[x_spec], reduce_retracing=True),
            tf.function(vjp, input_signature=[x_spec, up_specs], reduce_retracing=True),
        )
        self._fns[names] = fns
        return fns

    # ----------------------------------------------------------------- contract
    def _forward(self, x: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        fwd, _ = self._functions(names)
        xt = self.tf.convert_to_tensor(nchw_to_nhwc(np.asarray(x, dtype=self.dtype)))
        outs = fwd(xt)
        self._x_nhwc = xt
        self._last_names = names
        self._last_shapes = {n: tuple(o.shape) for n, o in zip(names, outs, strict=True)}
        return {n: nhwc_to_nchw(o.numpy()) for n, o in zip(names, outs, strict=True)}

    def _vjp(self, upstream: dict[str, np.ndarray]) -> np.ndarray:
        names = self._last_names
        _, vjp = self._functions(names)
        # Layers requested but without upstream get zeros: one traced function per layer set.
        ups = []
        for n in names:
            if n in upstream:
                ups.append(nchw_to_nhwc(np.asarray(upstream[n], dtype=self.dtype)))
            else:
                ups.append(np.zeros(self._last_shapes[n], dtype=self.dtype))
        dx = vjp(self._x_nhwc, [self.tf.convert_to_tensor(u) for u in ups])
        return nhwc_to_nchw(dx.numpy())


__all__ = ["TFBackend"]
