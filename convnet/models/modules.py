"""Layer objects: the functional layers of ``convnet.layers`` wrapped with their parameters.

Every layer object follows the contract of docs/internals.md::

    layer.params   dict name -> ndarray  ('W', 'b', 'gamma', 'beta'; empty when parameter-free)
    layer.grads    same keys, filled by backward
    layer.buffers  non-trainable state saved with the model (batch-norm running statistics)
    out = layer.forward(x, train=False)   # keeps its cache on the object
    dx = layer.backward(dout)             # fills layer.grads, returns the input gradient
    layer.output_shape(input_shape)       # shapes WITHOUT the batch axis
    layer.get_config()                    # JSON-able; layer_from_config(cfg) rebuilds it

Data is NCHW; conv weights are ``(F, C, HH, WW)``; dense weights ``(D, M)``. A layer object
holds the cache of its *last* forward pass only, so ``backward`` must follow the matching
``forward``. Layers with parameters cast their input to their own dtype (float32 for
training, float64 after ``astype(np.float64)`` for gradient checks); integer or boolean input
raises ``ValueError``, as does input of the wrong shape, with a message naming the layer and
the shape it expected.

Validation happens once, in the functional layer; a layer object only prefixes its own name to
the functional layer's :class:`~convnet.errors.LayerInputError` (``conv1: conv_forward_numba:
x must be 4-D (N, C, H, W) with C == w.shape[1] == 3, got (2, 1, 28, 28)``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import numpy as np

from convnet import layers as L
from convnet.errors import LayerInputError
from convnet.layers._geometry import out_size, transpose_out_size
from convnet.layers.conv import conv_backward_params
from convnet.models.init import as_generator, init_weight

__all__ = [
    "Module",
    "Dense",
    "Conv2D",
    "ConvTranspose2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool",
    "Flatten",
    "Reshape",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Dropout",
    "BatchNorm",
    "Fire",
    "LAYER_REGISTRY",
    "register_layer",
    "layer_from_config",
]

LAYER_REGISTRY: dict[str, type[Module]] = {}


def register_layer(cls: type[Module]) -> type[Module]:
    """Class decorator: make ``cls`` rebuildable by ``layer_from_config`` under its class name."""
    LAYER_REGISTRY[cls.__name__] = cls
    return cls


def layer_from_config(config: dict[str, Any]) -> Module:
    """Rebuild a layer from ``Module.get_config()`` (weights are fresh; load them afterwards)."""
    cfg = dict(config)
    cls_name = cfg.pop("class", None)
    if cls_name not in LAYER_REGISTRY:
        raise ValueError(
            f"layer_from_config: unknown layer class {cls_name!r}; known: {sorted(LAYER_REGISTRY)}"
        )
    return LAYER_REGISTRY[cls_name](**cfg)


def _pair(v: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def _shape_str(shape: tuple) -> str:
    return "(" + ", ".join(["N", *(str(s) for s in shape[1:])]) + ")"


class Module:
    """Base class of layer objects.

    Attributes:
    - name: Keras-like layer name (``conv1``, ``fc1``, ``out``); ``None`` until a container
      assigns one.
    - params, grads, buffers: see the module docstring.
    - dtype: floating dtype of the parameters (and of the input, for layers with parameters).
    """

    #: prefix of automatic names given by Sequential (``conv`` -> ``conv1``, ``conv2``, ...)
    default_prefix = "layer"

    def __init__(self, name: str | None = None, dtype: Any = np.float32) -> None:
        dt = np.dtype(dtype)
        if not np.issubdtype(dt, np.floating):
            raise ValueError(f"{type(self).__name__}: dtype must be floating, got {dt}")
        self.name = name
        self.dtype = dt
        self.params: MutableMapping[str, np.ndarray] = {}
        self.grads: MutableMapping[str, np.ndarray] = {}
        self.buffers: MutableMapping[str, np.ndarray] = {}
        self.cache: Any = None

    # -- helpers --------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.name or type(self).__name__

    def _as_input(self, x: Any) -> np.ndarray:
        """``x`` as an ndarray, a floating one cast to the layer dtype. Other dtypes pass
        through unchanged: the layer function rejects them."""
        x = np.asarray(x)
        if x.dtype != self.dtype and np.issubdtype(x.dtype, np.floating):
            x = x.astype(self.dtype)
        return x

    def _bad_input(self, expected: str, x: np.ndarray) -> ValueError:
        return LayerInputError(
            f"{self.label}: expected input {expected}, got {_shape_str(x.shape)}"
        )

    @contextlib.contextmanager
    def _errors_named(self) -> Iterator[None]:
        """Prefix this layer's name to a layer function's bad-input error."""
        try:
            yield
        except LayerInputError as exc:
            raise LayerInputError(f"{self.label}: {exc}") from exc

    def _check_cache(self) -> None:
        if self.cache is None:
            raise RuntimeError(f"{self.label}: backward called before forward")

    # -- contract --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward_params(self, dout: np.ndarray) -> None:
        """Fill ``grads`` from ``dout`` without the input gradient (the model's first layer
        in training: nobody uses the gradient with respect to the data). Layers whose input
        gradient is expensive override this; the default runs :meth:`backward`."""
        self.backward(dout)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the output for an input of ``input_shape`` (both WITHOUT the batch axis)."""
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        """JSON-able dict from which ``layer_from_config`` rebuilds this layer."""
        return {"class": type(self).__name__, "name": self.name, "dtype": self.dtype.name}

    def astype(self, dtype: Any) -> Module:
        """Cast parameters, gradients and floating buffers to ``dtype`` in place; return self."""
        dt = np.dtype(dtype)
        if not np.issubdtype(dt, np.floating):
            raise ValueError(f"{self.label}: dtype must be floating, got {dt}")
        self.dtype = dt
        for store in (self.params, self.grads, self.buffers):
            for k in list(store):
                v = store[k]
                if np.issubdtype(np.asarray(v).dtype, np.floating):
                    store[k] = np.asarray(v, dtype=dt)
        return self

    def num_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(np.asarray(v).size for v in self.params.values()))

    def zero_grads(self) -> None:
        for k, v in self.params.items():
            self.grads[k] = np.zeros_like(v)

    def __repr__(self) -> str:
        cfg = self.get_config()
        cfg.pop("class")
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "dtype")
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------------------
# Layers with parameters
# ---------------------------------------------------------------------------------------


class _Weighted(Module):
    """A layer with a weight ``W`` and a bias ``b``: ``forward``/``backward`` are the functional
    layer's pair ``_fns`` (``f(x, W, b, *args) -> (out, cache)``, ``g(dout, cache) -> (dx, dW,
    db)``), called with the hyper-parameters ``_args()``."""

    _fns: tuple[Callable[..., tuple[np.ndarray, Any]], Callable[..., Any]]

    def _args(self) -> tuple:
        return ()

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        with self._errors_named():
            out, self.cache = self._fns[0](self._as_input(x), W, b, *self._args())
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_cache()
        with self._errors_named():
            dx, dw, db = self._fns[1](self._as_input(dout), self.cache)
        self.grads["W"], self.grads["b"] = dw, db
        return dx


@register_layer
class Dense(_Weighted):
    """Fully connected layer ``out = x.reshape(N, D) @ W + b``.

    - W: ``(in_features, out_features)``; b: ``(out_features,)``.
    - Input ``(N, d1, ..., dk)`` with ``d1*...*dk == in_features`` (flattened as in cs231n);
      output ``(N, out_features)``.
    """

    default_prefix = "fc"
    _fns = (L.affine_forward, L.affine_backward)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        name: str | None = None,
        dtype: Any = np.float32,
        init: str | float = "he",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(name, dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        if self.in_features <= 0 or self.out_features <= 0:
            raise ValueError(f"{self.label}: in_features and out_features must be positive")
        self.init = init
        self.params["W"] = init_weight((self.in_features, self.out_features), init, seed, dtype)
        self.params["b"] = np.zeros(self.out_features, dtype=self.dtype)
        self.zero_grads()

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if math.prod(input_shape) != self.in_features:
            raise ValueError(
                f"{self.label}: expected input (N, {self.in_features}), got (N, "
                + ", ".join(map(str, input_shape))
                + ")"
            )
        return (self.out_features,)

    def get_config(self) -> dict[str, Any]:
        init = self.init if isinstance(self.init, str) else float(self.init)
        return {
            **super().get_config(),
            "in_features": self.in_features,
            "out_features": self.out_features,
            "init": init,
        }


@register_layer
class Conv2D(_Weighted):
    """2-D convolution (cross-correlation), NCHW.

    - W: ``(filters, in_channels, HH, WW)``; b: ``(filters,)``.
    - Input ``(N, in_channels, H, W)``; output ``(N, filters, H', W')`` with
      ``H' = (H + 2*pad - dilation*(HH-1) - 1) // stride + 1``.
    - ``pad`` is an int (zero padding on every side), ``'valid'`` (0) or ``'same'`` (only for
      stride 1 and odd kernels: ``(HH-1)//2``, as in Keras).
    """

    default_prefix = "conv"
    _fns = (L.conv_forward, L.conv_backward)

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        pad: int | str = 0,
        dilation: int = 1,
        name: str | None = None,
        dtype: Any = np.float32,
        init: str | float = "he",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(name, dtype)
        self.in_channels, self.filters = int(in_channels), int(filters)
        self.kernel_size = _pair(kernel_size, f"{self.label}: kernel_size")
        self.stride, self.dilation = int(stride), int(dilation)
        if self.stride < 1 or self.dilation < 1:
            raise ValueError(f"{self.label}: stride and dilation must be >= 1")
        self.pad = self._resolve_pad(pad)
        self.init = init
        hh, ww = self.kernel_size
        self.params["W"] = init_weight((self.filters, self.in_channels, hh, ww), init, seed, dtype)
        self.params["b"] = np.zeros(self.filters, dtype=self.dtype)
        self.zero_grads()

    def _resolve_pad(self, pad: int | str) -> int:
        if isinstance(pad, str):
            if pad == "valid":
                return 0
            hh, ww = self.kernel_size
            if pad == "same" and self.stride == 1 and hh == ww and hh % 2 == 1:
                return self.dilation * (hh - 1) // 2
            raise ValueError(
                f"{self.label}: pad={pad!r} is supported only as 'valid', or 'same' with stride 1 "
                "and an odd square kernel; give an int"
            )
        p = int(pad)
        if p < 0:
            raise ValueError(f"{self.label}: pad must be >= 0, got {p}")
        return p

    @property
    def conv_param(self) -> dict[str, int]:
        cp = {"stride": self.stride, "pad": self.pad}
        if self.dilation != 1:
            cp["dilation"] = self.dilation
        return cp

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(
                f"{self.label}: expected input (N, {self.in_channels}, H, W), got "
                + _shape_str((0, *input_shape))
            )
        _, h, w = input_shape
        hh, ww = self.kernel_size
        ho = out_size(h, hh, self.stride, self.pad, self.dilation)
        wo = out_size(w, ww, self.stride, self.pad, self.dilation)
        if ho < 1 or wo < 1:
            raise ValueError(
                f"{self.label}: input {h}x{w} (pad {self.pad}) is smaller than the kernel "
                f"{hh}x{ww} (dilation {self.dilation})"
            )
        return (self.filters, ho, wo)

    def _args(self) -> tuple:
        return (self.conv_param,)

    def backward_params(self, dout: np.ndarray) -> None:
        self._check_cache()
        with self._errors_named():
            dw, db = conv_backward_params(self._as_input(dout), self.cache)
        self.grads["W"], self.grads["b"] = dw, db

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": self.stride,
            "pad": self.pad,
            "dilation": self.dilation,
            "init": self.init if isinstance(self.init, str) else float(self.init),
        }


@register_layer
class ConvTranspose2D(_Weighted):
    """Transposed convolution (the adjoint of a conv), NCHW.

    - W: ``(in_channels, filters, HH, WW)`` (the weight of the conv it is the adjoint of);
      b: ``(filters,)``.
    - Input ``(N, in_channels, H, W)``; output ``(N, filters, H', W')`` with
      ``H' = (H-1)*stride - 2*pad + HH + output_padding``.
    """

    default_prefix = "deconv"
    _fns = (L.conv_transpose_forward, L.conv_transpose_backward)

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        pad: int = 0,
        output_padding: int = 0,
        name: str | None = None,
        dtype: Any = np.float32,
        init: str | float = "he",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(name, dtype)
        self.in_channels, self.filters = int(in_channels), int(filters)
        self.kernel_size = _pair(kernel_size, f"{self.label}: kernel_size")
        self.stride, self.pad, self.output_padding = int(stride), int(pad), int(output_padding)
        self.init = init
        hh, ww = self.kernel_size
        # Each output pixel sums about in_channels*HH*WW/stride^2 products.
        fan_in = max(1, self.in_channels * hh * ww // (self.stride**2))
        self.params["W"] = init_weight(
            (self.in_channels, self.filters, hh, ww), init, seed, dtype,
            fans=(fan_in, self.filters * hh * ww),
        )
        self.params["b"] = np.zeros(self.filters, dtype=self.dtype)
        self.zero_grads()

    @property
    def conv_param(self) -> dict[str, int]:
        cp = {"stride": self.stride, "pad": self.pad}
        if self.output_padding:
            cp["output_padding"] = self.output_padding
        return cp

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(
                f"{self.label}: expected input (N, {self.in_channels}, H, W), got "
                + _shape_str((0, *input_shape))
            )
        _, h, w = input_shape
        hh, ww = self.kernel_size
        ho = transpose_out_size(h, hh, self.stride, self.pad, output_padding=self.output_padding)
        wo = transpose_out_size(w, ww, self.stride, self.pad, output_padding=self.output_padding)
        return (self.filters, ho, wo)

    def _args(self) -> tuple:
        return (self.conv_param,)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "stride": self.stride,
            "pad": self.pad,
            "output_padding": self.output_padding,
            "init": self.init if isinstance(self.init, str) else float(self.init),
        }


@register_layer
class BatchNorm(Module):
    """Batch normalisation over features (2-D input ``(N, D)``) or channels (``(N, C, H, W)``).

    - params gamma, beta ``(num_features,)``; buffers running_mean, running_var.
    - ``train=True`` normalises with batch statistics and updates the running ones
      (``running = momentum*running + (1-momentum)*batch``); ``train=False`` uses the running
      statistics (and its backward is the affine map's, so input gradients work in test mode).
    """

    default_prefix = "bn"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.9,
        name: str | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(name, dtype)
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        d = self.num_features
        self.params["gamma"] = np.ones(d, dtype=self.dtype)
        self.params["beta"] = np.zeros(d, dtype=self.dtype)
        self.buffers["running_mean"] = np.zeros(d, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(d, dtype=self.dtype)
        self.zero_grads()

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        x = self._as_input(x)
        bn_param = {
            "mode": "train" if train else "test",
            "eps": self.eps,
            "momentum": self.momentum,
            "running_mean": self.buffers["running_mean"],
            "running_var": self.buffers["running_var"],
        }
        # In test mode the layer is an affine map per channel, and its backward is that map's
        # (what input gradients through a trained network need).
        fwd = L.batchnorm_forward if x.ndim == 2 else L.spatial_batchnorm_forward
        with self._errors_named():
            out, cache = fwd(x, self.params["gamma"], self.params["beta"], bn_param)
        if train:
            self.buffers["running_mean"] = np.asarray(bn_param["running_mean"], dtype=self.dtype)
            self.buffers["running_var"] = np.asarray(bn_param["running_var"], dtype=self.dtype)
        self.cache = (x.ndim, cache)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_cache()
        ndim, cache = self.cache
        bwd = L.batchnorm_backward if ndim == 2 else L.spatial_batchnorm_backward
        with self._errors_named():
            dx, dgamma, dbeta = bwd(self._as_input(dout), cache)
        self.grads["gamma"], self.grads["beta"] = dgamma, dbeta
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) not in (1, 3) or input_shape[0] != self.num_features:
            raise ValueError(
                f"{self.label}: expected input (N, {self.num_features}) or "
                f"(N, {self.num_features}, H, W), got " + _shape_str((0, *input_shape))
            )
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
        }


# ---------------------------------------------------------------------------------------
# Parameter-free layers: they keep the dtype they are given
# ---------------------------------------------------------------------------------------


class _Functional(Module):
    """A parameter-free layer object: ``forward``/``backward`` are the functional layer's pair
    ``_fns``, called with the hyper-parameters ``_args()``. It keeps the dtype it is given."""

    _fns: tuple[Callable[..., tuple[np.ndarray, Any]], Callable[..., Any]]

    def _args(self) -> tuple:
        return ()

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        with self._errors_named():
            out, self.cache = self._fns[0](x, *self._args())
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_cache()
        with self._errors_named():
            return self._fns[1](dout, self.cache)


class _Pool(_Functional):
    default_prefix = "pool"
    _kind = "pool"

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        stride: int | None = None,
        pad: int = 0,
        ceil_mode: bool = False,
        name: str | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(name, dtype)
        self.pool_size = _pair(pool_size, f"{self.label}: pool_size")
        self.stride = int(stride) if stride is not None else self.pool_size[0]
        self.pad, self.ceil_mode = int(pad), bool(ceil_mode)

    @property
    def pool_param(self) -> dict[str, Any]:
        pp: dict[str, Any] = {
            "pool_height": self.pool_size[0],
            "pool_width": self.pool_size[1],
            "stride": self.stride,
        }
        # Only non-default keys, so backends that predate them still accept the dict.
        if self.pad:
            pp["pad"] = self.pad
        if self.ceil_mode:
            pp["ceil_mode"] = True
        return pp

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.label}: expected input (N, C, H, W), got " + _shape_str((0, *input_shape))
            )
        c, h, w = input_shape
        ph, pw = self.pool_size
        ho = out_size(h, ph, self.stride, self.pad, ceil_mode=self.ceil_mode)
        wo = out_size(w, pw, self.stride, self.pad, ceil_mode=self.ceil_mode)
        if ho < 1 or wo < 1:
            raise ValueError(
                f"{self.label}: input {h}x{w} is smaller than the pooling window {ph}x{pw}"
            )
        return (c, ho, wo)

    def _args(self) -> tuple:
        return (self.pool_param,)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "stride": self.stride,
            "pad": self.pad,
            "ceil_mode": self.ceil_mode,
        }


@register_layer
class MaxPool2D(_Pool):
    """Max pooling, NCHW: ``(N, C, H, W) -> (N, C, H', W')``; ``stride`` defaults to
    ``pool_size``; ``ceil_mode`` rounds the output size up (Caffe/SqueezeNet)."""

    _fns = (L.max_pool_forward, L.max_pool_backward)
    _fused_fns = (L.relu_max_pool_forward, L.relu_max_pool_backward)
    _after_relu = False  # whether the cache is from forward_after_relu

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._after_relu = False
        return super().forward(x, train)

    def forward_after_relu(self, x: np.ndarray) -> np.ndarray:
        """``max_pool(relu(x))`` in one pass (``convnet.layers.relu_pool``): what a
        container runs for a ReLU followed by this layer in a training step. The next
        :meth:`backward` then returns the gradient with respect to the ReLU's input."""
        with self._errors_named():
            out, self.cache = self._fused_fns[0](x, self.pool_param)
        self._after_relu = True
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if not self._after_relu:
            return super().backward(dout)
        self._check_cache()
        with self._errors_named():
            return self._fused_fns[1](dout, self.cache)


@register_layer
class AvgPool2D(_Pool):
    """Average pooling, NCHW: ``(N, C, H, W) -> (N, C, H', W')``."""

    _fns = (L.avg_pool_forward, L.avg_pool_backward)


@register_layer
class GlobalAvgPool(_Functional):
    """Mean over the spatial axes: ``(N, C, H, W) -> (N, C)``."""

    default_prefix = "gap"
    _fns = (L.global_avg_pool_forward, L.global_avg_pool_backward)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(
                f"{self.label}: expected input (N, C, H, W), got " + _shape_str((0, *input_shape))
            )
        return (input_shape[0],)


@register_layer
class Flatten(_Functional):
    """``(N, d1, ..., dk) -> (N, d1*...*dk)`` in C order (NCHW: channel slowest)."""

    default_prefix = "flatten"
    _fns = (L.flatten_forward, L.flatten_backward)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)


@register_layer
class Reshape(_Functional):
    """``(N, ...) -> (N, *shape)``; ``shape`` excludes the batch axis and keeps the size."""

    default_prefix = "reshape"
    _fns = (L.reshape_forward, L.reshape_backward)

    def __init__(self, shape: tuple[int, ...], name: str | None = None, dtype: Any = np.float32):
        super().__init__(name, dtype)
        self.shape = tuple(int(s) for s in shape)

    def _args(self) -> tuple:
        return (self.shape,)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(
                f"{self.label}: cannot reshape {tuple(input_shape)} to {self.shape} "
                f"(expected {math.prod(self.shape)} values per sample)"
            )
        return self.shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shape": list(self.shape)}


@register_layer
class ReLU(_Functional):
    """``max(0, x)``, any shape."""

    default_prefix = "relu"
    _fns = (L.relu_forward, L.relu_backward)


@register_layer
class LeakyReLU(_Functional):
    """``x if x > 0 else alpha*x``, any shape."""

    default_prefix = "leaky_relu"
    _fns = (L.leaky_relu_forward, L.leaky_relu_backward)

    def __init__(self, alpha: float = 0.01, name: str | None = None, dtype: Any = np.float32):
        super().__init__(name, dtype)
        self.alpha = float(alpha)

    def _args(self) -> tuple:
        return (self.alpha,)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@register_layer
class Sigmoid(_Functional):
    """``1 / (1 + exp(-x))``, any shape."""

    default_prefix = "sigmoid"
    _fns = (L.sigmoid_forward, L.sigmoid_backward)


@register_layer
class Tanh(_Functional):
    """``tanh(x)``, any shape."""

    default_prefix = "tanh"
    _fns = (L.tanh_forward, L.tanh_backward)


@register_layer
class Dropout(Module):
    """Inverted dropout: in training, zero each unit with probability ``p`` and scale the rest
    by ``1/(1-p)``; identity at test time. Any shape.

    Reproducible: the mask of the k-th training call is drawn from ``SeedSequence([seed, k])``;
    the seed and the call counter are buffers (``seed``, ``calls``), so they are saved with
    the model and in checkpoints, and a resumed training draws the same masks as an
    uninterrupted one.
    """

    default_prefix = "dropout"

    def __init__(
        self, p: float = 0.5, seed: int | None = 0, name: str | None = None, dtype: Any = np.float32
    ) -> None:
        super().__init__(name, dtype)
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"{self.label}: drop probability p must be in [0, 1), got {p}")
        self.p = float(p)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.buffers["seed"] = np.asarray(int(seed), dtype=np.int64)
        self.buffers["calls"] = np.zeros((), dtype=np.int64)

    @property
    def seed(self) -> int:
        return int(self.buffers["seed"])

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        param: dict[str, Any] = {"p": self.p, "mode": "train" if train else "test"}
        if train:
            k = int(self.buffers["calls"])
            ss = np.random.SeedSequence([self.seed, k])
            param["seed"] = int(ss.generate_state(1)[0])
            self.buffers["calls"] = np.asarray(k + 1, dtype=np.int64)
        with self._errors_named():
            out, self.cache = L.dropout_forward(x, param)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_cache()
        with self._errors_named():
            return L.dropout_backward(dout, self.cache)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "p": self.p, "seed": self.seed}


# ---------------------------------------------------------------------------------------
# Composite: SqueezeNet's fire module
# ---------------------------------------------------------------------------------------


class _ChildView(MutableMapping):
    """``"child/key"`` view over the params/grads/buffers dicts of child layers."""

    def __init__(self, children: dict[str, Module], attr: str) -> None:
        self._children, self._attr = children, attr

    def _split(self, key: str) -> tuple[dict, str]:
        child, _, k = key.partition("/")
        if child not in self._children or k not in getattr(self._children[child], self._attr):
            raise KeyError(key)
        return getattr(self._children[child], self._attr), k

    def __getitem__(self, key: str) -> np.ndarray:
        store, k = self._split(key)
        return store[k]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        store, k = self._split(key)
        store[k] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("layer parameters cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        for cname, child in self._children.items():
            for k in getattr(child, self._attr):
                yield f"{cname}/{k}"

    def __len__(self) -> int:
        return sum(len(getattr(c, self._attr)) for c in self._children.values())


@register_layer
class Fire(Module):
    """SqueezeNet fire module: squeeze 1x1 conv + ReLU, then expand 1x1 and expand 3x3 (pad 1)
    convs + ReLU each, concatenated along channels (1x1 first, as in SqueezeNet).

    - Input ``(N, in_channels, H, W)``; output ``(N, expand1x1 + expand3x3, H, W)``.
    - params ``squeeze1x1/W (squeeze, in_channels, 1, 1)``, ``squeeze1x1/b``,
      ``expand1x1/W (expand1x1, squeeze, 1, 1)``, ``expand1x1/b``,
      ``expand3x3/W (expand3x3, squeeze, 3, 3)``, ``expand3x3/b`` (the SqueezeNet file's names).
    """

    default_prefix = "fire"

    def __init__(
        self,
        in_channels: int,
        squeeze: int,
        expand1x1: int,
        expand3x3: int,
        name: str | None = None,
        dtype: Any = np.float32,
        init: str | float = "he",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(name, dtype)
        self.in_channels, self.squeeze = int(in_channels), int(squeeze)
        self.expand1x1, self.expand3x3 = int(expand1x1), int(expand3x3)
        self.init = init
        rng = as_generator(seed)
        self.children: dict[str, Module] = {
            "squeeze1x1": Conv2D(in_channels, squeeze, 1, name="squeeze1x1", dtype=dtype,
                                 init=init, seed=rng),
            "expand1x1": Conv2D(squeeze, expand1x1, 1, name="expand1x1", dtype=dtype,
                                init=init, seed=rng),
            "expand3x3": Conv2D(squeeze, expand3x3, 3, pad=1, name="expand3x3", dtype=dtype,
                                init=init, seed=rng),
        }
        self._relus = {k: ReLU(name=f"{k}_relu") for k in self.children}
        self.params = _ChildView(self.children, "params")
        self.grads = _ChildView(self.children, "grads")
        self.buffers = _ChildView(self.children, "buffers")

    def _sublabel(self) -> None:
        # Error messages of the children name the fire module too (fire2/squeeze1x1: ...).
        for k, c in self.children.items():
            c.name = f"{self.name}/{k}" if self.name else k

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        # The children check the input, under names that include this module's.
        self._sublabel()
        ch, r = self.children, self._relus
        s = r["squeeze1x1"].forward(ch["squeeze1x1"].forward(x))
        e1 = r["expand1x1"].forward(ch["expand1x1"].forward(s))
        e3 = r["expand3x3"].forward(ch["expand3x3"].forward(s))
        out, cat_cache = L.concat_forward([e1, e3], axis=1)
        self.cache = cat_cache
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_cache()
        ch, r = self.children, self._relus
        de1, de3 = L.concat_backward(np.asarray(dout, dtype=self.dtype), self.cache)
        ds = ch["expand1x1"].backward(r["expand1x1"].backward(de1))
        ds = ds + ch["expand3x3"].backward(r["expand3x3"].backward(de3))
        return ch["squeeze1x1"].backward(r["squeeze1x1"].backward(ds))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(
                f"{self.label}: expected input (N, {self.in_channels}, H, W), got "
                + _shape_str((0, *input_shape))
            )
        return (self.expand1x1 + self.expand3x3, input_shape[1], input_shape[2])

    def astype(self, dtype: Any) -> Module:
        self.dtype = np.dtype(dtype)
        for c in self.children.values():
            c.astype(dtype)
        return self

    def zero_grads(self) -> None:
        for c in self.children.values():
            c.zero_grads()

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "squeeze": self.squeeze,
            "expand1x1": self.expand1x1,
            "expand3x3": self.expand3x3,
            "init": self.init if isinstance(self.init, str) else float(self.init),
        }
