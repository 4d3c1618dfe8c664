"""``Sequential``: a chain of named layer objects with forward/backward to any layer.

See docs/internals.md ("Layer objects and Sequential") for the contract::

    model = Sequential([Conv2D(1, 8, 3, pad=1, name="conv1"), ReLU(name="relu1"), ...],
                       input_shape=(1, 28, 28), loss="softmax", reg=1e-4)
    scores = model.loss(X)                       # (N, num_classes)
    loss, grads = model.loss(X, y)               # grads keyed "layer/param"
    acts = model.forward_layers(X, ["conv1", "fc1"])
    dx = model.backward_layers({"conv1": d1, "fc1": d2})   # gradient w.r.t. X
    model.save("m.npz"); model2 = Sequential.load("m.npz")
    model.input_space = "mnist_0_1"              # saved with the model; see convnet.backend

Layer outputs are cached on the layer objects, so a model is not re-entrant: one forward,
then its backward.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convnet import layers as L
from convnet._io import atomic_save_npz
from convnet.backend import INPUT_SPACES, InputSpace
from convnet.errors import CheckpointError
from convnet.models.modules import MaxPool2D, Module, ReLU, layer_from_config

__all__ = ["Sequential", "LOSSES", "atomic_savez", "input_space_config", "input_space_from_config"]


def _softmax(scores, y):
    return L.softmax_loss(scores, y)


def _svm(scores, y):
    return L.svm_loss(scores, y)


def _mse(pred, target):
    return L.mse_loss(pred, target, reduction="mean")


def _bce(probs, target):
    return L.bce_loss(probs, target, reduction="mean")


def _bce_logits(logits, target):
    return L.bce_with_logits_loss(logits, target, reduction="mean")


#: loss name -> ``f(output, y) -> (loss, doutput)``; ``y`` is labels for softmax/svm and a
#: target array of the output's shape for the regression losses.
LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]] = {
    "softmax": _softmax,
    "svm": _svm,
    "mse": _mse,
    "bce": _bce,
    "bce_logits": _bce_logits,
}


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` as an uncompressed .npz atomically (temp file + rename).

    The name is used as given (no ``.npz`` appended). A crash leaves either the old file or
    the new one, never a half-written file. (See :mod:`convnet._io`.)
    """
    return atomic_save_npz(path, arrays)


def input_space_config(space: InputSpace) -> dict[str, Any]:
    """JSON-able description of an :class:`~convnet.backend.InputSpace` (name and numbers)."""
    return {"name": space.name, "channel_order": space.channel_order, "scale": space.scale,
            "mean": [float(v) for v in space.mean], "std": [float(v) for v in space.std]}


def input_space_from_config(config: Mapping[str, Any] | str) -> InputSpace:
    """The ``InputSpace`` of :func:`input_space_config` (or of an ``INPUT_SPACES`` name)."""
    if isinstance(config, str):
        if config not in INPUT_SPACES:
            raise ValueError(f"unknown input space {config!r}; choose one of "
                             f"{', '.join(INPUT_SPACES)}")
        return INPUT_SPACES[config]()
    try:
        return InputSpace(config["channel_order"], config["scale"], config["mean"],
                          config["std"], name=config.get("name", "custom"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"input_space {config!r} is not a valid description ({exc})") \
            from None


class _LayerView(MutableMapping):
    """Mutable ``"layer/key"`` view over one attribute (params, grads, buffers) of the layers.

    Assigning writes into the layer (checked shape, cast to the layer's dtype for floats).
    """

    def __init__(self, model: Sequential, attr: str) -> None:
        self._model, self._attr = model, attr

    def _split(self, key: str) -> tuple[Module, str]:
        lname, sep, k = key.partition("/")
        layer = self._model._by_name.get(lname)
        if not sep or layer is None or k not in getattr(layer, self._attr):
            raise KeyError(key)
        return layer, k

    def __getitem__(self, key: str) -> np.ndarray:
        layer, k = self._split(key)
        return getattr(layer, self._attr)[k]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        layer, k = self._split(key)
        store = getattr(layer, self._attr)
        old = np.asarray(store[k])
        value = np.asarray(value)
        if value.shape != old.shape:
            raise ValueError(
                f"{self._model.name}: {self._attr}[{key!r}] has shape {old.shape}, "
                f"cannot assign an array of shape {value.shape}"
            )
        if np.issubdtype(old.dtype, np.floating):
            value = np.asarray(value, dtype=layer.dtype)
        store[k] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"{self._attr} of a model cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        for layer in self._model.layers:
            for k in getattr(layer, self._attr):
                yield f"{layer.name}/{k}"

    def __len__(self) -> int:
        return sum(len(getattr(layer, self._attr)) for layer in self._model.layers)

    def __repr__(self) -> str:
        items = ", ".join(f"{k!r}: {tuple(np.shape(v))}" for k, v in self.items())
        return f"{{{items}}}"


class Sequential:
    """A chain of named layers.

    Inputs:
    - layers: sequence of ``Module`` objects; those without a name get a Keras-like one
      (``conv1``, ``relu2``, ``fc1``, ...). Names must be unique and must not contain ``/``.
    - input_shape: input shape WITHOUT the batch axis, e.g. ``(1, 28, 28)`` or ``(784,)``; used
      to check that the layers fit together and for ``summary()``. ``None`` when it varies
      (fully convolutional models).
    - loss: ``'softmax'``, ``'svm'`` (``y`` integer labels ``(N,)``), ``'mse'``, ``'bce'``,
      ``'bce_logits'`` (``y`` a target of the output's shape), or ``None`` (no loss:
      ``loss(X, y)`` raises).
    - reg: L2 strength; ``loss`` adds ``0.5 * reg * sum(W**2)`` over parameters named ``W``.
    - name: model name, used in messages.
    - input_space: how pixels become this model's inputs (a ``convnet.backend.InputSpace``
      or the name of an ``INPUT_SPACES`` preset such as ``"mnist_0_1"``), or None when
      unknown. Saved with the model, so that every command feeds it what it was trained on.
    """

    def __init__(
        self,
        layers: Sequence[Module],
        input_shape: Sequence[int] | None = None,
        loss: str | None = "softmax",
        reg: float = 0.0,
        name: str = "sequential",
        input_space: InputSpace | str | None = None,
    ) -> None:
        self.name = name
        self.input_space = input_space
        if loss is not None and loss not in LOSSES:
            raise ValueError(f"{name}: unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        self.loss_name = loss
        self.reg = float(reg)
        self.layers: list[Module] = list(layers)
        if not self.layers:
            raise ValueError(f"{name}: a Sequential needs at least one layer")
        counters: dict[str, int] = {}
        taken = {layer.name for layer in self.layers if layer.name}
        for layer in self.layers:
            if not isinstance(layer, Module):
                raise ValueError(f"{name}: layers must be Module objects, got {type(layer)}")
            if layer.name is None:
                prefix = layer.default_prefix
                while True:
                    counters[prefix] = counters.get(prefix, 0) + 1
                    candidate = f"{prefix}{counters[prefix]}"
                    if candidate not in taken:
                        break
                layer.name = candidate
                taken.add(candidate)
        names = [layer.name for layer in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{name}: layer names must be unique, repeated: {dup}")
        bad = [n for n in names if "/" in n]
        if bad:
            raise ValueError(f"{name}: layer names must not contain '/': {bad}")
        self._by_name: dict[str, Module] = {layer.name: layer for layer in self.layers}
        self._index: dict[str, int] = {n: i for i, n in enumerate(names)}
        self.input_shape: tuple[int, ...] | None = (
            tuple(int(s) for s in input_shape) if input_shape is not None else None
        )
        if self.input_shape is not None:
            self.output_shapes()  # raises ValueError naming the first layer that does not fit
        self._depth = -1  # index of the deepest layer the last forward pass reached
        self._out_shapes: list[tuple[int, ...] | None] = [None] * len(self.layers)
        self._fused: set[int] = set()  # ReLUs run inside the next (pooling) layer last pass

    # -- introspection ----------------------------------------------------------------------
    @property
    def input_space(self) -> InputSpace | None:
        """How pixels become inputs of this model (None: not recorded)."""
        return self._input_space

    @input_space.setter
    def input_space(self, space: InputSpace | str | Mapping[str, Any] | None) -> None:
        if space is not None and not isinstance(space, InputSpace):
            space = input_space_from_config(space)
        self._input_space = space

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def get_layer(self, name: str) -> Module:
        """The layer object called ``name`` (KeyError listing the names otherwise)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name}: no layer {name!r}; layers: {self.layer_names}") from None

    def __getitem__(self, name: str) -> Module:
        return self.get_layer(name)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def _layer_index(self, name: str | None) -> int:
        if name is None:
            return len(self.layers) - 1
        if name not in self._index:
            raise ValueError(f"{self.name}: no layer {name!r}; layers: {self.layer_names}")
        return self._index[name]

    @property
    def params(self) -> MutableMapping[str, np.ndarray]:
        """Mutable view ``"layer/param" -> array``; assigning writes into the layer."""
        return _LayerView(self, "params")

    @property
    def grads(self) -> MutableMapping[str, np.ndarray]:
        """Mutable view ``"layer/param" -> gradient`` filled by ``backward``/``loss``."""
        return _LayerView(self, "grads")

    @property
    def buffers(self) -> MutableMapping[str, np.ndarray]:
        """Mutable view of non-trainable state (batch-norm running stats, dropout counters)."""
        return _LayerView(self, "buffers")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed ``"layer/name"``."""
        out = {k: np.array(v, copy=True) for k, v in self.params.items()}
        out.update({k: np.array(v, copy=True) for k, v in self.buffers.items()})
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True,
                        source: str = "state") -> None:
        """Copy arrays into the parameters and buffers, checking names and shapes.

        Raises ``CheckpointError`` listing every missing key, unexpected key and shape
        mismatch (with ``strict=False`` only the shape mismatches count; the keys both sides
        have are loaded).
        """
        params, buffers = self.params, self.buffers
        expected = {k: np.shape(v) for k, v in params.items()}
        expected.update({k: np.shape(v) for k, v in buffers.items()})
        given = {k: np.shape(v) for k, v in state.items() if not k.startswith("__")}
        # Integer buffers (dropout seed and call counter) are bookkeeping that plain weight
        # files (e.g. the SqueezeNet .npz) do not carry: their absence is not an error.
        optional = {k for k, v in buffers.items()
                    if not np.issubdtype(np.asarray(v).dtype, np.floating)}
        missing = [k for k in expected if k not in given and k not in optional]
        unexpected = [k for k in given if k not in expected]
        mismatched = [
            f"{k} {source} {given[k]} vs model {expected[k]}"
            for k in expected
            if k in given and tuple(given[k]) != tuple(expected[k])
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing in {source}: {missing}")
        if strict and unexpected:
            problems.append(f"not in model: {unexpected}")
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if problems:
            raise CheckpointError(
                f"{self.name}: weights from {source} do not match the model: "
                + " | ".join(problems)
            )
        for k in expected:
            if k in given:
                (params if k in params else buffers)[k] = np.array(state[k], copy=True)

    @property
    def dtype(self) -> np.dtype:
        """Floating dtype of the parameters (of the first layer that has any)."""
        for layer in self.layers:
            if len(layer.params):
                return layer.dtype
        return self.layers[0].dtype

    def astype(self, dtype: Any) -> Sequential:
        """Cast every layer's parameters, gradients and buffers in place (float64 for gradient
        checks, float32 for training); return self."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def num_params(self) -> int:
        return sum(layer.num_params() for layer in self.layers)

    def output_shapes(self, input_shape: Sequence[int] | None = None) -> list[tuple[int, ...]]:
        """Output shape of every layer (without the batch axis) for ``input_shape``
        (default ``self.input_shape``); ValueError naming the layer that does not fit."""
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape is None:
            raise ValueError(f"{self.name}: no input_shape given")
        shapes = []
        for layer in self.layers:
            shape = tuple(int(s) for s in layer.output_shape(shape))
            shapes.append(shape)
        return shapes

    def summary(self, input_shape: Sequence[int] | None = None) -> str:
        """A Keras-like table (layer and type, output shape, parameter count, total).

        Shapes come from ``input_shape`` (default ``self.input_shape``), else from the last
        forward pass, else ``?``. Returns the text (``print(model.summary())``).
        """
        try:
            shapes: list = self.output_shapes(input_shape)
        except ValueError:
            shapes = list(self._out_shapes)
        rows = [("Layer (type)", "Output shape", "Param #")]
        for layer, shp in zip(self.layers, shapes, strict=True):
            shp_s = "(None, " + ", ".join(map(str, shp)) + ")" if shp is not None else "?"
            shp_s = shp_s.replace(", )", ")")
            rows.append((f"{layer.name} ({type(layer).__name__})", shp_s,
                         f"{layer.num_params():,}"))
        w = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "=" * sum(w)
        out = [f'Model: "{self.name}"', line]
        out.append(rows[0][0].ljust(w[0]) + rows[0][1].ljust(w[1]) + rows[0][2].rjust(w[2]))
        out.append(line)
        for r in rows[1:]:
            out.append(r[0].ljust(w[0]) + r[1].ljust(w[1]) + r[2].rjust(w[2]))
        out.append(line)
        total = self.num_params()
        nbytes = sum(np.asarray(v).nbytes for v in self.params.values())
        out.append(f"Total params: {total:,} ({nbytes / 1024:.1f} KiB as {self.dtype.name})")
        out.append(f"Loss: {self.loss_name}, L2 reg: {self.reg:g}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"Sequential(name={self.name!r}, layers={self.layer_names})"

    # -- forward / backward -------------------------------------------------------------------
    def _prepare(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                f"{self.name}: input must be a floating array, got dtype {x.dtype} "
                "(convert with .astype(np.float32))"
            )
        if x.ndim < 2:
            raise ValueError(
                f"{self.name}: expected a batch (N, ...), got shape {x.shape}; "
                "add the batch axis with x[None]"
            )
        return x.astype(self.dtype, copy=False)

    #: ``loss`` runs each ReLU that is followed by max pooling inside the pooling layer
    #: (``MaxPool2D.forward_after_relu``, ``convnet.layers.relu_pool``: the same numbers
    #: without the full-size ReLU output; a BasicConvNet training step 7-16% faster).
    #: False: every layer on its own, as ``forward`` always runs them.
    fuse_relu_pool = True

    def _relu_pool_pairs(self, last: int) -> set[int]:
        """Indices ``i < last`` of plain ReLUs whose next layer is a MaxPool2D (a ReLU with
        a replaced backward rule, as guided backpropagation installs, is left alone)."""
        return {i for i in range(last)
                if type(self.layers[i]) is ReLU and "_fns" not in vars(self.layers[i])
                and type(self.layers[i + 1]) is MaxPool2D}

    def _run(self, x: np.ndarray, last: int, train: bool, keep: set[int] | None = None,
             fuse: bool = False) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        kept = {}
        out = self._prepare(x)
        self._out_shapes = [None] * len(self.layers)
        self._depth = -1
        # (a fused ReLU has no output of its own to keep: fusion is for loss() only)
        self._fused = self._relu_pool_pairs(last) if fuse and keep is None else set()
        for i in range(last + 1):
            if i in self._fused:
                pass  # out stays the ReLU's input; the next layer applies the ReLU
            elif i - 1 in self._fused:
                out = self.layers[i].forward_after_relu(out)
            else:
                out = self.layers[i].forward(out, train=train)
            self._out_shapes[i] = tuple(out.shape[1:])
            self._depth = i
            if keep is not None and i in keep:
                kept[i] = out
        return out, kept

    def forward(self, x: np.ndarray, upto: str | None = None, train: bool = False) -> np.ndarray:
        """Output of layer ``upto`` (the last layer by default).

        Inputs:
        - x: input batch ``(N, *input_shape)``, floating (cast to the model dtype).
        - upto: layer name; the pass stops there.
        - train: training mode (dropout active, batch norm on batch statistics).

        Returns that layer's output ``(N, ...)``.
        """
        out, _ = self._run(x, self._layer_index(upto), train)
        return out

    def forward_layers(self, x: np.ndarray, names: Iterable[str],
                       train: bool = False) -> dict[str, np.ndarray]:
        """Outputs of several layers in one pass (to the deepest of ``names``).

        Returns ``{name: activation (N, ...)}``.
        """
        names = list(names)
        if not names:
            raise ValueError(f"{self.name}: forward_layers needs at least one layer name")
        idx = {n: self._layer_index(n) for n in names}
        _, kept = self._run(x, max(idx.values()), train, keep=set(idx.values()))
        return {n: kept[i] for n, i in idx.items()}

    def _check_dout(self, i: int, dout: np.ndarray) -> np.ndarray:
        if i > self._depth:
            raise RuntimeError(
                f"{self.name}: backward from {self.layers[i].name!r} but the last forward pass "
                f"stopped at {self.layers[self._depth].name if self._depth >= 0 else 'nothing'}"
            )
        dout = np.asarray(dout, dtype=self.dtype)
        want = self._out_shapes[i]
        if want is not None and tuple(dout.shape[1:]) != want:
            raise ValueError(
                f"{self.name}: gradient for layer {self.layers[i].name!r} must have the shape of "
                f"its output (N, {', '.join(map(str, want))}), got {dout.shape}"
            )
        return dout

    def _backward_from(self, douts: dict[int, np.ndarray],
                       input_grad: bool = True) -> np.ndarray | None:
        top = max(douts)
        for layer in self.layers[top + 1:]:
            layer.zero_grads()  # no gradient reaches them: do not leave stale ones
        if self._fused & set(douts):
            raise RuntimeError(f"{self.name}: the last forward pass ran these ReLUs inside the "
                               "next pooling layer; run forward() to backpropagate from them")
        grad: np.ndarray | None = None
        for i in range(top, -1, -1):
            if i in douts:
                grad = douts[i] if grad is None else grad + douts[i]
            if i in self._fused:
                continue  # the pooling layer's backward already applied the ReLU's mask
            if i == 0 and not input_grad and hasattr(self.layers[0], "backward_params"):
                self.layers[0].backward_params(grad)
                return None
            grad = self.layers[i].backward(grad)
        return grad

    def backward(self, dout: np.ndarray, from_: str | None = None,
                 input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``dout``, the gradient of the output of layer ``from_`` (default: the
        deepest layer of the last forward pass), to the input.

        Fills ``grads`` of that layer and every earlier one (later layers' grads are zeroed)
        and returns ``dx`` with the input's shape ``(N, *input_shape)``. With
        ``input_grad=False`` the first layer computes its parameter gradients only and
        ``None`` is returned: what training needs, without the gradient w.r.t. the data.
        """
        i = self._depth if from_ is None else self._layer_index(from_)
        if i < 0:
            raise RuntimeError(f"{self.name}: backward called before forward")
        return self._backward_from({i: self._check_dout(i, dout)}, input_grad)

    def backward_layers(self, douts: Mapping[str, np.ndarray]) -> np.ndarray:
        """Backpropagate gradients arriving at several layers at once (``{name: dout}``, each
        of the shape of that layer's output in the last forward pass); the contributions are
        summed where the paths meet. Returns ``dx``, the gradient w.r.t. the input."""
        if not douts:
            raise ValueError(f"{self.name}: backward_layers needs at least one gradient")
        by_index: dict[int, np.ndarray] = {}
        for n, d in douts.items():
            i = self._layer_index(n)
            by_index[i] = self._check_dout(i, d)
        return self._backward_from(by_index)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """cs231n-style loss.

        Inputs:
        - X: input batch ``(N, *input_shape)``.
        - y: ``None``, or labels ``(N,)`` (softmax/svm) / a target of the output's shape
          (mse/bce).

        Returns:
        - if ``y`` is None: the scores ``(N, ...)`` of a test-mode forward pass;
        - else ``(loss, grads)``: the data loss plus ``0.5*reg*sum(W**2)`` over all parameters
          named ``W``, and a dict ``"layer/param" -> gradient`` (training-mode pass).
        """
        if y is None:
            return self.forward(X, train=False)
        if self.loss_name is None:
            raise ValueError(f"{self.name}: model has no loss (loss=None); pass y=None")
        scores, _ = self._run(X, len(self.layers) - 1, train=True, fuse=self.fuse_relu_pool)
        data_loss, dscores = LOSSES[self.loss_name](scores, y)
        self.backward(dscores, input_grad=False)
        loss = float(data_loss)
        if self.reg:
            grads = self.grads
            for k, w in self.params.items():
                if k.rsplit("/", 1)[-1] == "W":
                    loss += 0.5 * self.reg * float(np.sum(np.square(w, dtype=np.float64)))
                    grads[k] = grads[k] + self.reg * w
        return loss, dict(self.grads)

    def predict(self, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Test-mode outputs of the last layer (scores for a classifier), in batches.

        X: ``(N, *input_shape)``; returns ``(N, ...)``.
        """
        X = np.asarray(X)
        outs = [self.forward(X[i:i + batch_size], train=False)
                for i in range(0, X.shape[0], batch_size)]
        return np.concatenate(outs, axis=0)

    def predict_classes(self, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``argmax`` of ``predict`` over axis 1: integer labels ``(N,)``."""
        return np.argmax(self.predict(X, batch_size), axis=1)

    def accuracy(self, X: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
        """Fraction of ``X (N, ...)`` classified as ``y (N,)``."""
        return float(np.mean(self.predict_classes(X, batch_size) == np.asarray(y)))

    # -- persistence --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-able architecture (layers' configs, input shape, loss, reg, name and, when
        known, the input space)."""
        config: dict[str, Any] = {
            "class": "Sequential",
            "name": self.name,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "loss": self.loss_name,
            "reg": self.reg,
            "layers": [layer.get_config() for layer in self.layers],
        }
        if self.input_space is not None:
            config["input_space"] = input_space_config(self.input_space)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Sequential:
        """Build a (freshly initialised) ``Sequential`` from ``get_config()``."""
        layers = [layer_from_config(c) for c in config["layers"]]
        return Sequential(
            layers,
            input_shape=config.get("input_shape"),
            loss=config.get("loss", "softmax"),
            reg=config.get("reg", 0.0),
            name=config.get("name", "sequential"),
            input_space=config.get("input_space"),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Save weights, buffers and the architecture to ``path`` (.npz, written atomically).

        Arrays are keyed ``"layer/param"`` (as in the SqueezeNet weights file); the JSON
        architecture is the string array ``__config__`` (with ``input_space`` when the model
        has one). Returns the path.
        """
        arrays: dict[str, np.ndarray] = self.state_dict()
        arrays["__config__"] = np.array(json.dumps(self.get_config()))
        return atomic_savez(path, arrays)

    @staticmethod
    def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model file not found: {path}")
        if path.is_dir():
            raise CheckpointError(f"{path} is a folder, not a .npz model file")
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            # empty (EOFError), truncated (BadZipFile), not an .npz (ValueError), a pickle
            what = "empty" if path.stat().st_size == 0 else "not a readable .npz model file"
            why = ("it holds pickled Python objects, which are never loaded" if "pickle" in str(exc)
                   else f"{type(exc).__name__}: {exc}")  # fmt: skip
            raise CheckpointError(f"{path}: {what} ({why}); save the model again") from exc

    @staticmethod
    def _config_of(path: str | os.PathLike, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The architecture stored in ``data['__config__']``, checked enough to build."""
        try:
            config = json.loads(str(data["__config__"]))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{path}: the __config__ entry is not valid JSON ({exc})"
            raise CheckpointError(msg) from exc
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise CheckpointError(f"{path}: __config__ has no 'layers' list")
        return config

    @staticmethod
    def _build(path: str | os.PathLike, config: Mapping[str, Any]) -> Sequential:
        """``from_config`` with a message naming the file and the layer that cannot be built."""
        try:
            return Sequential.from_config(config)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            culprit = "the model"
            for i, cfg in enumerate(config["layers"]):  # only on failure: find the layer
                try:
                    layer_from_config(dict(cfg))
                except Exception:  # noqa: BLE001 - any failure names this layer
                    cfg = cfg if isinstance(cfg, dict) else {}
                    culprit = f"layer {cfg.get('name', f'#{i}')!r} ({cfg.get('class', '?')})"
                    break
            raise CheckpointError(
                f"{path}: {culprit} cannot be built from its config ({exc}); the file is "
                "damaged or was written by another version: save the model again"
            ) from exc

    @classmethod
    def load(cls, path: str | os.PathLike) -> Sequential:
        """Rebuild a model saved with ``save`` (architecture and weights).

        Returns a ``Sequential`` (named models are saved as their layers, so they come back
        as a plain ``Sequential`` with the same layers and names).

        Raises FileNotFoundError (no file) or CheckpointError naming the file: empty,
        truncated or not an .npz; no or invalid ``__config__``; a layer config that does not
        build (e.g. a missing field); weights that do not match.
        """
        data = cls._read_npz(path)
        if "__config__" not in data:
            raise CheckpointError(
                f"{path}: no __config__ architecture in this file; build the model in code and "
                "use model.load_weights(path)"
            )
        model = cls._build(path, cls._config_of(path, data))
        model.load_state_dict(data, source=str(path))
        return model

    def load_weights(self, path: str | os.PathLike | Mapping[str, np.ndarray],
                     strict: bool = True) -> Sequential:
        """Load parameters and buffers from a .npz file (or a mapping) into this model.

        Names and shapes are checked; a ``CheckpointError`` says exactly which keys are
        missing, unexpected or of another shape. Arrays are cast to each layer's dtype (e.g.
        float16 weights files load into a float32 model). Returns self.
        """
        if isinstance(path, Mapping):
            self.load_state_dict(path, strict=strict, source="state")
        else:
            self.load_state_dict(self._read_npz(path), strict=strict, source=str(path))
        return self
