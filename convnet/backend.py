"""Backends for input-gradient methods: forward to named layers, vector-Jacobian products.

Every method in :mod:`convnet.inputgrad` is written once against :class:`Backend`::

    acts = backend.forward(x, layers=["fire9", "pool10"])   # {name: activation}
    dx = backend.vjp({"fire9": d9, "pool10": d10})          # d/dx sum_l <act_l, d_l>

``x`` is always NCHW float **in model input space**; :class:`InputSpace` converts between
that and pixels (RGB, float, 0..255, NCHW), so epsilons and clip bounds can be stated in
pixel units whatever the model's preprocessing is.

Two pseudo-layers exist in every backend:

* ``"input"``: the input ``x`` itself (for image priors such as L2 and total variation);
* ``"output"``: an alias of ``backend.output_layer`` (the logits, or the probabilities
  if ``backend.output_is_probs``).

This module is the contract that models, :mod:`convnet.interop` and :mod:`convnet.inputgrad`
all program against, so it imports none of them. The TensorFlow backend lives in
:mod:`convnet.interop.tf_backend`, so importing this module never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from convnet.errors import ConvnetError
from convnet.layers.losses import softmax

PIXEL_MAX = 255.0
INPUT = "input"
OUTPUT = "output"


class UnknownLayerError(ConvnetError, ValueError):
    """A layer name that the model does not have."""


class InputSpace:
    """How a model wants its input, and how to get there from pixels.

    Pixels are RGB (or grey, ``C == 1``) floats in ``[0, 255]``, NCHW. The model input is::

        x = (reorder(pixels) * scale - mean) / std

    where ``reorder`` swaps RGB to BGR if ``channel_order == "BGR"``, ``scale`` is a scalar and
    ``mean``/``std`` are per channel **in the model's channel order**, in the units after
    ``scale``. This affine family covers every usual preprocessing (Caffe, TF, torch).

    Inputs:
    - channel_order: "RGB", "BGR" or "L" (one grey channel).
    - scale: scalar applied to 0..255 pixels before the mean/std.
    - mean, std: scalars or sequences of length C.
    - name: for messages.
    """

    def __init__(
        self,
        channel_order: str = "RGB",
        scale: float = 1.0,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
        name: str = "custom",
    ) -> None:
        if channel_order not in ("RGB", "BGR", "L"):
            raise ValueError(
                f"InputSpace: channel_order must be 'RGB', 'BGR' or 'L', got {channel_order!r}"
            )
        self.channel_order = channel_order
        self.channels = 1 if channel_order == "L" else 3
        self.scale = float(scale)
        self.mean = self._per_channel(mean, "mean")
        self.std = self._per_channel(std, "std")
        if np.any(self.std <= 0) or self.scale <= 0:
            raise ValueError("InputSpace: scale and std must be positive")
        self.name = name

    def _per_channel(self, v: float | Sequence[float], what: str) -> np.ndarray:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
        if a.size == 1:
            a = np.repeat(a, self.channels)
        if a.size != self.channels:
            raise ValueError(
                f"InputSpace: {what} must be a scalar or have {self.channels} values, got {a.size}"
            )
        return a

    # ----------------------------------------------------------------- presets
    @classmethod
    def caffe_bgr_0_255(cls) -> InputSpace:
        """Caffe without mean (SqueezeNet v1.1 DeepScale weights): BGR, 0..255."""
        return cls("BGR", 1.0, 0.0, 1.0, name="caffe_bgr_0_255")

    @classmethod
    def caffe_vgg(cls) -> InputSpace:
        """Keras ``preprocess_input`` mode 'caffe' (VGG16/19, ResNet50): BGR, ImageNet mean."""
        return cls("BGR", 1.0, (103.939, 116.779, 123.68), 1.0, name="caffe_vgg")

    @classmethod
    def tf_minus1_1(cls) -> InputSpace:
        """Keras mode 'tf' (MobileNet, InceptionV3, Xception): RGB in [-1, 1]."""
        return cls("RGB", 1.0 / 127.5, 1.0, 1.0, name="tf_minus1_1")

    @classmethod
    def torch_imagenet(cls) -> InputSpace:
        """Keras mode 'torch' / torchvision: RGB in [0, 1], ImageNet mean and std."""
        return cls("RGB", 1.0 / 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), name="torch")

    @classmethod
    def unit_rgb(cls) -> InputSpace:
        """RGB in [0, 1]."""
        return cls("RGB", 1.0 / 255.0, name="unit_rgb")

    @classmethod
    def mnist_minus1_1(cls) -> InputSpace:
        """Grey in [-1, 1] (MNIST digits scaled from [0, 255] to [-1, 1])."""
        return cls("L", 1.0 / 127.5, 1.0, 1.0, name="mnist_minus1_1")

    @classmethod
    def mnist_0_1(cls) -> InputSpace:
        """Grey in [0, 1]."""
        return cls("L", 1.0 / 255.0, name="mnist_0_1")

    # ---------------------------------------------------------- conversions
    def _check(self, a: np.ndarray, what: str) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim != 4 or a.shape[1] != self.channels:
            raise ValueError(
                f"InputSpace({self.name}).{what}: expected NCHW with C == {self.channels}, "
                f"got shape {a.shape}"
            )
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32)
        return a

    def _reorder(self, a: np.ndarray) -> np.ndarray:
        return a[:, ::-1] if self.channel_order == "BGR" else a

    def _col(self, v: np.ndarray, dtype: Any) -> np.ndarray:
        return v.astype(dtype).reshape(1, -1, 1, 1)

    def to_model(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (N, C, H, W), RGB 0..255 -> model input (N, C, H, W), same float dtype."""
        p = self._check(pixels, "to_model")
        x = self._reorder(p) * p.dtype.type(self.scale)
        return np.ascontiguousarray(
            (x - self._col(self.mean, p.dtype)) / self._col(self.std, p.dtype)
        )

    def to_pixels(self, x: np.ndarray) -> np.ndarray:
        """Model input (N, C, H, W) -> pixels (N, C, H, W), RGB 0..255 (not clipped)."""
        x = self._check(x, "to_pixels")
        p = (x * self._col(self.std, x.dtype) + self._col(self.mean, x.dtype)) / x.dtype.type(
            self.scale
        )
        return np.ascontiguousarray(self._reorder(p))

    def pixel_scale(self) -> np.ndarray:
        """Model units per pixel unit, per channel in the model's channel order, shape (C,)."""
        return self.scale / self.std

    def pixel_scale_col(self, dtype: Any = np.float32) -> np.ndarray:
        """``pixel_scale()`` shaped (1, C, 1, 1) for broadcasting against NCHW."""
        return self._col(self.pixel_scale(), dtype)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (C,): pixel values 0 and 255 in model units, model channel order."""
        lo = (0.0 * self.scale - self.mean) / self.std
        hi = (PIXEL_MAX * self.scale - self.mean) / self.std
        return lo, hi

    def midpoint(self) -> np.ndarray:
        """Mid-grey (pixel 127.5) in model units, shape (C,)."""
        lo, hi = self.bounds
        return 0.5 * (lo + hi)

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Clip model-space x (N, C, H, W) to the valid pixel range [0, 255]."""
        lo, hi = self.bounds
        return np.clip(x, self._col(lo, x.dtype), self._col(hi, x.dtype))

    def __repr__(self) -> str:
        return (
            f"InputSpace({self.name}: {self.channel_order}, scale={self.scale:g}, "
            f"mean={self.mean.tolist()}, std={self.std.tolist()})"
        )


class Backend:
    """Forward to named layers and vector-Jacobian products back to the input.

    Subclasses implement ``_forward(x, names) -> {name: act}`` (real layer names only) and
    ``_vjp({name: upstream}) -> dx``; this base class validates, handles the ``"input"`` and
    ``"output"`` pseudo-layers, and remembers the last forward so ``vjp`` can refer to it.

    Attributes:
    - input_space: the :class:`InputSpace` the model expects.
    - input_shape: (C, H, W) if the model only accepts one image size, else None.
    - layer_names: the model's layer names, input to output.
    - output_layer: the name whose activation is the class scores (N, K).
    - output_is_probs: True if ``output_layer`` is already a softmax.
    """

    input_space: InputSpace
    input_shape: tuple[int, int, int] | None = None
    layer_names: list[str]
    output_layer: str
    output_is_probs: bool = False
    name: str = "backend"

    def __init__(self) -> None:
        self._last_x: np.ndarray | None = None
        self._last_layers: tuple[str, ...] = ()

    # ---------------------------------------------------------------- helpers
    def resolve(self, name: str) -> str:
        """Map a requested name to a real layer name (or ``"input"``); unknown -> error."""
        if name == OUTPUT:
            return self.output_layer
        if name == INPUT or name in self.layer_names:
            return name
        raise UnknownLayerError(
            f"{self.name}: unknown layer {name!r}; known layers: "
            f"{', '.join(self.layer_names)} (and the pseudo-layers 'input', 'output')"
        )

    def check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{self.name}: x must be a float array, got dtype {x.dtype}")
        c = self.input_space.channels
        if self.input_shape is not None:
            if x.ndim != 4 or x.shape[1:] != tuple(self.input_shape):
                raise ValueError(
                    f"{self.name}: x must be (N, {', '.join(map(str, self.input_shape))}) "
                    f"(this model only takes one image size), got {x.shape}"
                )
        elif x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"{self.name}: x must be (N, {c}, H, W), got {x.shape}")
        return x

    def check_class(self, class_idx: int | Sequence[int] | np.ndarray, n: int) -> np.ndarray:
        """Class indices as an int array of length n; out-of-range -> ValueError."""
        k = self.num_classes
        c = np.asarray(class_idx)
        if c.ndim == 0:
            c = np.full(n, int(c))
        if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(
                f"{self.name}: class index must be an int or {n} ints, got {class_idx!r}"
            )
        if k is not None and (np.any(c < 0) or np.any(c >= k)):
            raise ValueError(f"{self.name}: class index {class_idx!r} out of range [0, {k})")
        return c.astype(np.int64)

    @property
    def num_classes(self) -> int | None:
        """Number of classes of ``output_layer`` if known."""
        return None

    # ---------------------------------------------------------------- contract
    def forward(self, x: np.ndarray, layers: Iterable[str]) -> dict[str, np.ndarray]:
        """Activations of the requested layers.

        Inputs:
        - x: (N, C, H, W) float in model input space.
        - layers: names (real layers, ``"input"``, ``"output"``).

        Returns a dict requested name -> activation, (N, C', H', W') or (N, D).
        """
        names = list(dict.fromkeys(layers))
        x = self.check_input(x)
        real = {n: self.resolve(n) for n in names}
        model_layers = tuple(dict.fromkeys(r for r in real.values() if r != INPUT))
        acts = self._forward(x, model_layers) if model_layers else {}
        self._last_x = x
        self._last_layers = model_layers
        return {n: (x if r == INPUT else acts[r]) for n, r in real.items()}

    def vjp(self, upstream: Mapping[str, np.ndarray]) -> np.ndarray:
        """Gradient w.r.t. x of ``sum_l <act_l, upstream_l>`` at the last ``forward``'s x.

        Inputs:
        - upstream: name -> array shaped like that layer's activation; every model layer
          must have been requested in the last ``forward``.

        Returns dx: (N, C, H, W), like the last x.
        """
        if self._last_x is None:
            raise RuntimeError(f"{self.name}.vjp called before forward")
        x = self._last_x
        dx_input = None
        merged: dict[str, np.ndarray] = {}
        for n, g in upstream.items():
            r = self.resolve(n)
            if r == INPUT:
                g = np.asarray(g)
                if g.shape != x.shape:
                    raise ValueError(
                        f"{self.name}.vjp: gradient for 'input' must be {x.shape}, got {g.shape}"
                    )
                dx_input = g if dx_input is None else dx_input + g
                continue
            if r not in self._last_layers:
                raise ValueError(
                    f"{self.name}.vjp: layer {n!r} was not requested in the last forward "
                    f"({', '.join(self._last_layers) or 'none'})"
                )
            merged[r] = merged[r] + g if r in merged else np.asarray(g)
        dx = self._vjp(merged) if merged else np.zeros_like(x)
        if dx_input is not None:
            dx = dx + dx_input
        return dx

    def _forward(self, x: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _vjp(self, upstream: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    # ---------------------------------------------------------- conveniences
    def value_and_grad(self, objective: Any, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Objective value and its gradient w.r.t. x (model units), one forward + one vjp."""
        acts = self.forward(x, objective.layers)
        value = float(objective.value(acts))
        return value, self.vjp(objective.grad(acts))

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Output layer activation (N, K) (logits, or probabilities if output_is_probs)."""
        return self.forward(x, [OUTPUT])[OUTPUT]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K)."""
        s = np.asarray(self.scores(x), dtype=np.float64)
        return s if self.output_is_probs else softmax(s)


def _size_free(model: Any) -> bool:
    """True if the model accepts any H, W (no Flatten/Dense before a global pool)."""
    for name in model.layer_names:
        kind = type(model.get_layer(name)).__name__
        if kind in ("GlobalAvgPool", "GlobalMaxPool"):
            return True
        if kind in ("Flatten", "Reshape", "Dense"):
            return False
    return True


class NumpyBackend(Backend):
    """Backend over a convnet ``Sequential`` (``forward_layers`` / ``backward_layers``).

    Inputs:
    - model: a ``convnet.models.Sequential``.
    - input_space: its :class:`InputSpace` (default: ``model.input_space`` if the model has
      one, else RGB/grey 0..1 by channel count).
    - output_layer: the class-score layer (default: the last layer).
    - fixed_size: whether only ``model.input_shape`` is accepted (default: inferred; models
      with a Flatten/Dense before any global pooling are fixed-size).
    """

    def __init__(
        self,
        model: Any,
        input_space: InputSpace | None = None,
        output_layer: str | None = None,
        fixed_size: bool | None = None,
        output_is_probs: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.name = f"NumpyBackend({getattr(model, 'name', type(model).__name__)})"
        self.layer_names = list(model.layer_names)
        shape = getattr(model, "input_shape", None)
        shape = tuple(int(s) for s in shape) if shape is not None else None
        if input_space is None:
            input_space = getattr(model, "input_space", None)
        if input_space is None:
            rgb = shape is None or shape[0] == 3
            input_space = InputSpace.unit_rgb() if rgb else InputSpace.mnist_0_1()
        if shape is not None and input_space.channels != shape[0]:
            raise ValueError(
                f"{self.name}: input space has {input_space.channels} channels, "
                f"model input_shape {shape}"
            )
        self.input_space = input_space
        if fixed_size is None:
            fixed_size = shape is not None and not _size_free(model)
        if fixed_size and (shape is None or len(shape) != 3):
            raise ValueError(f"{self.name}: a fixed-size model needs input_shape (C, H, W)")
        self.input_shape = shape if fixed_size else None  # type: ignore[assignment]
        self.output_layer = output_layer or self.layer_names[-1]
        self.resolve(self.output_layer)
        self.output_is_probs = output_is_probs

    @property
    def num_classes(self) -> int | None:
        if self._num_classes is None:
            # Static shape inference through the layers; falls back to the last forward.
            try:
                shape = tuple(self.model.input_shape)
                for n in self.layer_names:
                    shape = tuple(self.model.get_layer(n).output_shape(shape))
                    if n == self.output_layer:
                        break
                self._num_classes = int(shape[0])
            except Exception:  # noqa: BLE001 - best effort; checked again on activations
                return None
        return self._num_classes

    _num_classes: int | None = None

    def _forward(self, x: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        acts = self.model.forward_layers(x, list(names), train=False)
        if self.output_layer in acts:
            self._num_classes = int(acts[self.output_layer].shape[1])
        return acts

    def _vjp(self, upstream: dict[str, np.ndarray]) -> np.ndarray:
        return self.model.backward_layers(upstream)


INPUT_SPACES = {
    "caffe_bgr_0_255": InputSpace.caffe_bgr_0_255,
    "caffe_vgg": InputSpace.caffe_vgg,
    "tf_minus1_1": InputSpace.tf_minus1_1,
    "torch_imagenet": InputSpace.torch_imagenet,
    "unit_rgb": InputSpace.unit_rgb,
    "mnist_minus1_1": InputSpace.mnist_minus1_1,
    "mnist_0_1": InputSpace.mnist_0_1,
}
