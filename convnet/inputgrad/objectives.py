"""Objectives: scalar functions of named activations, with their gradients.

An objective lists the ``layers`` it needs; ``value(acts)`` is a float and ``grad(acts)``
returns ``{layer: d value / d act}`` shaped like each activation, ready for
``backend.vjp``. Objectives compose::

    obj = ClassScore(76, "output") - 1e-3 * L2() - 1e-4 * TotalVariation()

Values are **summed over the batch** (so each image's gradient is independent of the
others). The pseudo-layer ``"input"`` is the model input itself, ``"output"`` the backend's
class-score layer (see :mod:`convnet.inputgrad.backend`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from convnet.backend import INPUT, OUTPUT
from convnet.layers.losses import softmax

Acts = Mapping[str, np.ndarray]


class Objective:
    """Base class: subclasses set ``layers`` and implement ``value`` and ``grad``."""

    layers: tuple[str, ...] = ()

    def value(self, acts: Acts) -> float:
        raise NotImplementedError

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _act(self, acts: Acts, layer: str) -> np.ndarray:
        if layer not in acts:
            raise ValueError(
                f"{type(self).__name__}: activation of layer {layer!r} missing "
                f"(have {', '.join(acts)})"
            )
        return np.asarray(acts[layer])

    # composition ----------------------------------------------------------
    def __add__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum([self, other])

    def __radd__(self, other: object) -> Objective:
        if isinstance(other, int | float) and other == 0:  # lets sum([...]) work
            return self
        return NotImplemented

    def __mul__(self, w: float) -> Objective:
        if not isinstance(w, int | float | np.floating | np.integer):
            return NotImplemented
        return Scaled(self, float(w))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Scaled(self, -1.0)

    def __sub__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum([self, Scaled(other, -1.0)])


class Sum(Objective):
    """Sum of objectives; gradients for a shared layer add."""

    def __init__(self, terms: Sequence[Objective]) -> None:
        flat: list[Objective] = []
        for t in terms:
            flat.extend(t.terms if isinstance(t, Sum) else [t])
        self.terms = flat
        self.layers = tuple(dict.fromkeys(n for t in flat for n in t.layers))

    def value(self, acts: Acts) -> float:
        return float(sum(t.value(acts) for t in self.terms))

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for t in self.terms:
            for k, g in t.grad(acts).items():
                out[k] = out[k] + g if k in out else g
        return out

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.terms))


class Scaled(Objective):
    """``weight * objective``."""

    def __init__(self, obj: Objective, weight: float) -> None:
        if isinstance(obj, Scaled):
            obj, weight = obj.obj, obj.weight * weight
        self.obj, self.weight = obj, weight
        self.layers = obj.layers

    def value(self, acts: Acts) -> float:
        return self.weight * self.obj.value(acts)

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        return {k: self.weight * g for k, g in self.obj.grad(acts).items()}

    def __repr__(self) -> str:
        return f"{self.weight:g}*{self.obj!r}"


def _one_hot(idx: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
    oh = np.zeros((idx.size, k), dtype=dtype)
    oh[np.arange(idx.size), idx] = 1
    return oh


def _class_index(
    who: str, class_idx: int | Sequence[int] | np.ndarray, s: np.ndarray
) -> np.ndarray:
    if s.ndim != 2:
        raise ValueError(f"{who}: class scores must be (N, K), got {s.shape}")
    n, k = s.shape
    c = np.asarray(class_idx)
    if c.ndim == 0:
        c = np.full(n, int(c))
    if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"{who}: class index must be an int or {n} ints, got {class_idx!r}")
    if np.any(c < 0) or np.any(c >= k):
        raise ValueError(f"{who}: class index {class_idx!r} out of range [0, {k})")
    return c


class ClassScore(Objective):
    """Score of one class (per image) at a (N, K) layer.

    Inputs:
    - class_idx: int, or (N,) ints (one class per image).
    - layer: the score layer (default the backend's output).
    - kind: 'logit' (the raw score, default, as in Simonyan et al.), 'softmax' (probability)
      or 'log_softmax'.
    """

    def __init__(
        self,
        class_idx: int | Sequence[int] | np.ndarray,
        layer: str = OUTPUT,
        kind: str = "logit",
    ) -> None:
        if kind not in ("logit", "softmax", "log_softmax"):
            raise ValueError(f"ClassScore: kind must be logit|softmax|log_softmax, got {kind!r}")
        self.class_idx, self.layer, self.kind = class_idx, layer, kind
        self.layers = (layer,)

    def value(self, acts: Acts) -> float:
        s = self._act(acts, self.layer)
        c = _class_index("ClassScore", self.class_idx, s)
        rows = np.arange(s.shape[0])
        if self.kind == "logit":
            return float(s[rows, c].sum())
        p = softmax(s.astype(np.float64))
        pc = p[rows, c]
        return float(pc.sum() if self.kind == "softmax" else np.log(pc).sum())

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        s = self._act(acts, self.layer)
        c = _class_index("ClassScore", self.class_idx, s)
        oh = _one_hot(c, s.shape[1], s.dtype)
        if self.kind == "logit":
            return {self.layer: oh}
        p = softmax(s.astype(np.float64))
        if self.kind == "log_softmax":
            g = oh - p
        else:  # d p_c / d s = p_c (onehot - p)
            g = p[np.arange(s.shape[0]), c][:, None] * (oh - p)
        return {self.layer: g.astype(s.dtype)}

    def __repr__(self) -> str:
        return f"ClassScore({self.class_idx}, {self.layer!r}, {self.kind!r})"


class CrossEntropy(Objective):
    """Cross-entropy ``-log p(label)`` (summed over the batch), for attacks.

    Inputs:
    - label: int or (N,) ints.
    - layer: score layer (default output).
    - from_logits: True if the layer holds logits, False if it holds probabilities.
    """

    def __init__(
        self, label: int | Sequence[int] | np.ndarray, layer: str = OUTPUT, from_logits: bool = True
    ) -> None:
        self.label, self.layer, self.from_logits = label, layer, from_logits
        self.layers = (layer,)

    def _probs(self, s: np.ndarray) -> np.ndarray:
        s64 = s.astype(np.float64)
        return softmax(s64) if self.from_logits else np.clip(s64, 1e-12, 1.0)

    def value(self, acts: Acts) -> float:
        s = self._act(acts, self.layer)
        c = _class_index("CrossEntropy", self.label, s)
        p = self._probs(s)
        return float(-np.log(np.maximum(p[np.arange(s.shape[0]), c], 1e-300)).sum())

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        s = self._act(acts, self.layer)
        c = _class_index("CrossEntropy", self.label, s)
        p = self._probs(s)
        if self.from_logits:
            g = p - _one_hot(c, s.shape[1], np.float64)
        else:
            g = np.zeros_like(p)
            rows = np.arange(s.shape[0])
            g[rows, c] = -1.0 / p[rows, c]
        return {self.layer: g.astype(s.dtype)}

    def __repr__(self) -> str:
        return f"CrossEntropy({self.label}, {self.layer!r})"


class Neuron(Objective):
    """One unit: ``act[n, channel, y, x]`` (4-D) or ``act[n, channel]`` (2-D), summed over n.

    ``y``/``x`` default to the centre of the feature map.
    """

    def __init__(self, layer: str, channel: int, y: int | None = None, x: int | None = None):
        self.layer, self.channel, self.y, self.x = layer, int(channel), y, x
        self.layers = (layer,)

    def _index(self, a: np.ndarray) -> tuple:
        who = f"Neuron({self.layer!r})"
        if not 0 <= self.channel < a.shape[1]:
            raise ValueError(f"{who}: channel {self.channel} out of range [0, {a.shape[1]})")
        if a.ndim == 2:
            if self.y is not None or self.x is not None:
                raise ValueError(f"{who}: layer is (N, D); y/x must be None")
            return (slice(None), self.channel)
        if a.ndim != 4:
            raise ValueError(f"{who}: activation must be (N, C, H, W) or (N, D), got {a.shape}")
        h, w = a.shape[2:]
        y = h // 2 if self.y is None else self.y
        x = w // 2 if self.x is None else self.x
        if not (0 <= y < h and 0 <= x < w):
            raise ValueError(f"{who}: position ({y}, {x}) outside the {h}x{w} map")
        return (slice(None), self.channel, y, x)

    def value(self, acts: Acts) -> float:
        a = self._act(acts, self.layer)
        return float(a[self._index(a)].sum())

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        g = np.zeros_like(a)
        g[self._index(a)] = 1
        return {self.layer: g}

    def __repr__(self) -> str:
        return f"Neuron({self.layer!r}, {self.channel}, {self.y}, {self.x})"


class Channel(Objective):
    """Mean activation of one channel over its H x W positions, summed over the batch."""

    def __init__(self, layer: str, channel: int) -> None:
        self.layer, self.channel = layer, int(channel)
        self.layers = (layer,)

    def _check(self, a: np.ndarray) -> None:
        if a.ndim not in (2, 4) or not 0 <= self.channel < a.shape[1]:
            raise ValueError(
                f"Channel({self.layer!r}): channel {self.channel} out of range for activation "
                f"{a.shape} (N, C[, H, W])"
            )

    def value(self, acts: Acts) -> float:
        a = self._act(acts, self.layer)
        self._check(a)
        ch = a[:, self.channel]
        return float(ch.reshape(a.shape[0], -1).mean(axis=1).sum())

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        self._check(a)
        g = np.zeros_like(a)
        per = int(np.prod(a.shape[2:])) if a.ndim == 4 else 1
        g[:, self.channel] = 1.0 / per
        return {self.layer: g}

    def __repr__(self) -> str:
        return f"Channel({self.layer!r}, {self.channel})"


class LayerMean(Objective):
    """Mean of a whole layer's activation (DeepDream), per image, summed over the batch.

    ``squared=True`` uses the mean of squares (the 'L2' DeepDream objective).
    """

    def __init__(self, layer: str, squared: bool = False) -> None:
        self.layer, self.squared = layer, squared
        self.layers = (layer,)

    def value(self, acts: Acts) -> float:
        a = self._act(acts, self.layer)
        v = a * a if self.squared else a
        return float(v.reshape(a.shape[0], -1).mean(axis=1).sum())

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        per = a[0].size
        g = (2.0 / per) * a if self.squared else np.full_like(a, 1.0 / per)
        return {self.layer: g.astype(a.dtype)}

    def __repr__(self) -> str:
        return f"LayerMean({self.layer!r}, squared={self.squared})"


class L2(Objective):
    """``sum(((act - center) / scale)**2)`` (default on the input: the image prior ||x||^2).

    Inputs:
    - layer: default ``"input"``.
    - center: scalar or per-channel (C,) values subtracted first (e.g. mid-grey in model
      units, so the prior pulls towards grey rather than towards the value 0).
    - scale: scalar or per-channel (C,) divisor (to state the penalty in units independent
      of the model's preprocessing).
    """

    def __init__(
        self,
        layer: str = INPUT,
        center: float | Sequence[float] | np.ndarray | None = None,
        scale: float | Sequence[float] | np.ndarray | None = None,
    ) -> None:
        self.layer = layer
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.layers = (layer,)

    @staticmethod
    def _bcast(v: np.ndarray, a: np.ndarray) -> np.ndarray:
        if v.ndim == 1 and a.ndim == 4:
            v = v.reshape(1, -1, 1, 1)
        return v.astype(a.dtype)

    def _z(self, a: np.ndarray) -> np.ndarray:
        if self.center is not None:
            a = a - self._bcast(self.center, a)
        if self.scale is not None:
            a = a / self._bcast(self.scale, a)
        return a

    def value(self, acts: Acts) -> float:
        z = self._z(self._act(acts, self.layer))
        return float(np.sum(z.astype(np.float64) ** 2))

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        g = 2 * self._z(a)
        if self.scale is not None:
            g = g / self._bcast(self.scale, a)
        return {self.layer: g.astype(a.dtype)}

    def __repr__(self) -> str:
        return f"L2({self.layer!r})"


class TotalVariation(Objective):
    """Total variation ``sum |d[i+1, j] - d[i, j]|^p + |d[i, j+1] - d[i, j]|^p``, d = act / scale.

    Inputs:
    - layer: default ``"input"``.
    - power: p >= 1 (2 as in Mahendran & Vedaldi / cs231n style transfer; 1 is anisotropic TV,
      whose gradient at exactly equal neighbours is taken as 0).
    - scale: scalar or per-channel (C,) divisor (e.g. model units per unit pixel, so the
      penalty is stated on ``pixels / 255`` whatever the model's preprocessing).
    """

    def __init__(
        self,
        layer: str = INPUT,
        power: float = 2.0,
        scale: float | Sequence[float] | np.ndarray | None = None,
    ) -> None:
        if power < 1:
            raise ValueError(f"TotalVariation: power must be >= 1, got {power}")
        self.layer, self.power = layer, float(power)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.layers = (layer,)

    def _scaled(self, a0: np.ndarray) -> np.ndarray:
        if a0.ndim != 4:
            raise ValueError(f"TotalVariation: activation must be (N, C, H, W), got {a0.shape}")
        a = a0.astype(np.float64)
        return a if self.scale is None else a / L2._bcast(self.scale, a)

    def value(self, acts: Acts) -> float:
        a = self._scaled(self._act(acts, self.layer))
        dv = np.diff(a, axis=2)
        dh = np.diff(a, axis=3)
        p = self.power
        return float(np.sum(np.abs(dv) ** p) + np.sum(np.abs(dh) ** p))

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a0 = self._act(acts, self.layer)
        a = self._scaled(a0)
        p = self.power
        g = np.zeros_like(a)
        for axis in (2, 3):
            d = np.diff(a, axis=axis)
            gd = p * np.abs(d) ** (p - 1) * np.sign(d)  # d/d(diff)
            # diff[i] = a[i+1] - a[i]: +gd flows to i+1, -gd to i.
            lead = [slice(None)] * 4
            lag = [slice(None)] * 4
            lead[axis] = slice(1, None)
            lag[axis] = slice(None, -1)
            g[tuple(lead)] += gd
            g[tuple(lag)] -= gd
        if self.scale is not None:
            g = g / L2._bcast(self.scale, g)
        return {self.layer: g.astype(a0.dtype)}

    def __repr__(self) -> str:
        return f"TotalVariation({self.layer!r}, power={self.power:g})"


def _match_pairs(
    who: str, a: np.ndarray, target: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(images (M, D), references (M, D)) in float64 from a layer's activation (N, ...).

    With ``target`` None image 0 of the batch is the reference of images 1..N-1; otherwise the
    target (one activation (1, ...) or ``a``'s shape without the batch, or one per image)."""
    a64 = a.reshape(a.shape[0], -1).astype(np.float64)
    if target is None:
        if a.shape[0] < 2:
            raise ValueError(f"{who}: with the reference in the batch, need N >= 2, got {a.shape}")
        return a64[1:], np.broadcast_to(a64[:1], a64[1:].shape)
    t = np.asarray(target, np.float64)
    if t.shape == a.shape[1:]:
        t = t[None]
    if t.shape[1:] != a.shape[1:] or t.shape[0] not in (1, a.shape[0]):
        raise ValueError(
            f"{who}: target must have the activation's shape {a.shape[1:]} (per image or one "
            f"for all), got {t.shape}; with random transforms put the reference in the batch"
        )
    return a64, np.broadcast_to(t.reshape(t.shape[0], -1), a64.shape)


def _place(a: np.ndarray, g: np.ndarray, in_batch: bool) -> np.ndarray:
    """The gradient (M, D) as ``a``'s shape; the in-batch reference (image 0) gets zero."""
    out = np.zeros(a.shape, np.float64)
    if in_batch:
        out[1:] = g.reshape((a.shape[0] - 1,) + a.shape[1:])
    else:
        out[...] = g.reshape(a.shape)
    return out.astype(a.dtype)


class ActivationMatch(Objective):
    """Caricature objective: the dot product of each image's activation with a reference's,
    times their cosine similarity to the power ``cossim_pow`` (Lucid's ``dot_compare``).

    value = sum_n <a_n, t> * max(cos(a_n, t), 0)^k, activations flattened per image. With
    k = 0 it is the plain dot product (which grows with the norm: the features of the reference
    exaggerated), larger k weight the direction more.

    Inputs:
    - layer: layer name.
    - target: the reference's activation at ``layer`` ((1, ...) or one per image), or None:
      image 0 of the batch is the reference (a constant, gradient zero) and the value sums over
      images 1..N-1. Use None with random transforms (see ``WithReference``), so the reference
      sees the same transform as the images.
    - cossim_pow: k >= 0.
    """

    def __init__(self, layer: str, target: np.ndarray | None = None,
                 cossim_pow: float = 0.0) -> None:  # fmt: skip
        if cossim_pow < 0:
            raise ValueError(f"ActivationMatch: cossim_pow must be >= 0, got {cossim_pow}")
        self.layer, self.target, self.cossim_pow = layer, target, float(cossim_pow)
        self.layers = (layer,)

    def _parts(self, a: np.ndarray) -> tuple[np.ndarray, ...]:
        x, t = _match_pairs("ActivationMatch", a, self.target)
        dot = np.sum(x * t, axis=1)
        nx = np.sqrt(np.sum(x * x, axis=1)) + 1e-12
        nt = np.sqrt(np.sum(t * t, axis=1)) + 1e-12
        cos = np.maximum(dot / (nx * nt), 0.0)
        return x, t, dot, nx, nt, cos

    def value(self, acts: Acts) -> float:
        *_, dot, _, _, cos = self._parts(self._act(acts, self.layer))
        return float(np.sum(dot * cos**self.cossim_pow))

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        x, t, dot, nx, nt, cos = self._parts(a)
        k = self.cossim_pow
        g = t * (cos**k)[:, None]
        if k:
            # d cos / d x = t / (|x||t|) - cos x / |x|^2, zero where cos was clipped at 0.
            dcos = t / (nx * nt)[:, None] - (cos / nx**2)[:, None] * x
            live = (cos > 0)[:, None]
            g = g + np.where(live, (dot * k * cos ** (k - 1))[:, None] * dcos, 0.0)
        return {self.layer: _place(a, g, self.target is None)}

    def __repr__(self) -> str:
        return f"ActivationMatch({self.layer!r}, cossim_pow={self.cossim_pow:g})"


class ActivationDistance(Objective):
    """Feature inversion: the squared distance of each image's activation to a reference's,
    relative to the reference's squared norm (Mahendran & Vedaldi 2015): minimise it.

    value = sum_n |a_n - t|^2 / |t|^2, activations flattened per image.

    Inputs: layer, target (as :class:`ActivationMatch`; None = image 0 of the batch).
    """

    def __init__(self, layer: str, target: np.ndarray | None = None) -> None:
        self.layer, self.target = layer, target
        self.layers = (layer,)

    def _parts(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, t = _match_pairs("ActivationDistance", a, self.target)
        return x - t, np.sum(t * t, axis=1) + 1e-12

    def value(self, acts: Acts) -> float:
        d, tt = self._parts(self._act(acts, self.layer))
        return float(np.sum(np.sum(d * d, axis=1) / tt))

    def grad(self, acts: Acts) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        d, tt = self._parts(a)
        return {self.layer: _place(a, 2.0 * d / tt[:, None], self.target is None)}

    def __repr__(self) -> str:
        return f"ActivationDistance({self.layer!r})"


__all__ = [
    "Objective",
    "Sum",
    "Scaled",
    "ClassScore",
    "CrossEntropy",
    "Neuron",
    "Channel",
    "LayerMean",
    "L2",
    "TotalVariation",
    "ActivationMatch",
    "ActivationDistance",
]
