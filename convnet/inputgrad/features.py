"""Feature visualisation: the input that maximises a neuron, a channel or a whole layer.

Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017: gradient ascent on the
image, with a random shift of the image every step (so the optimum does not exploit the
pixel grid; Lucid's ``jitter``), clipping to the valid range, starting from a constant image.
The defaults are the settings of ``experiments/feature_visualization.py`` on InceptionV3:
layer ``mixed1``, unit (y, x, channel) = (9, 9, 30) and channel 30, a 200x200 input, 2000
steps, shift 4, Adam with Keras' defaults (learning rate 1e-3 in [-1, 1] units).

Also from that article (and Lucid):

* ``param="fourier"``: optimise a decorrelated Fourier parameterisation of the image
  (:class:`convnet.inputgrad.param.FourierParam`) instead of its pixels;
* ``diversity``: a batch of images for the same objective, pushed apart by penalising the
  cosine similarity of their Gram matrices at a layer (:class:`Diversity`).

Everything works on any backend (NumPy SqueezeNet, Keras models through the TF backend) and
in pixel units: the image lives in [0, 255] RGB and the backend's input space converts.
:func:`maximize` is a preset on :func:`convnet.inputgrad.optimize.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.inputgrad.objectives import Channel, LayerMean, Neuron, Objective
from convnet.inputgrad.optimize import render
from convnet.inputgrad.param import FourierParam, PixelParam
from convnet.inputgrad.transforms import Jitter
from convnet.optim import KERAS_DEFAULTS

# The InceptionV3 setting of experiments/feature_visualization.py: mixed1, unit [:, 9, 9, 30]
# in Keras' NHWC order and channel 30. (The COURSE_* names are kept for existing imports.)
COURSE_LAYER = "mixed1"
COURSE_UNIT = (30, 9, 9)  # (channel, y, x)
COURSE_SIZE = 200
COURSE_STEPS = 2000
COURSE_SHIFT = 4


def feature_objective(
    layer: str, channel: int | None = None, unit: tuple[int, int, int] | None = None
) -> Objective:
    """Objective for a neuron (``unit=(channel, y, x)``), a channel, or the whole layer.

    Inputs:
    - layer: layer name.
    - channel: maximise the mean of this channel (ignored when ``unit`` is given).
    - unit: (channel, y, x) of one neuron; for a (N, D) layer give (channel, None, None)
      or use ``channel``.

    Returns an Objective (Neuron, Channel or LayerMean).
    """
    if unit is not None:
        c, y, x = unit
        return Neuron(layer, c, y, x)
    if channel is not None:
        return Channel(layer, channel)
    return LayerMean(layer)


class BatchChannels(Objective):
    """Image n of the batch maximises the mean of channel ``channels[n]`` of ``layer``.

    Lets one optimisation render many channels at once (one forward/backward per step for
    the whole grid), each image's gradient depending on its own channel only.
    """

    def __init__(self, layer: str, channels: Sequence[int]) -> None:
        self.layer = layer
        self.channels = [int(c) for c in channels]
        self.layers = (layer,)

    def _check(self, a: np.ndarray) -> None:
        if a.ndim != 4 or a.shape[0] != len(self.channels):
            raise ValueError(
                f"BatchChannels({self.layer!r}): activation must be (N={len(self.channels)}, "
                f"C, H, W), got {a.shape}"
            )
        bad = [c for c in self.channels if not 0 <= c < a.shape[1]]
        if bad:
            raise ValueError(
                f"BatchChannels({self.layer!r}): channels {bad} not in [0, {a.shape[1]})"
            )

    def value(self, acts: Any) -> float:
        a = self._act(acts, self.layer)
        self._check(a)
        n = np.arange(a.shape[0])
        return float(a[n, self.channels].mean(axis=(1, 2)).sum())

    def grad(self, acts: Any) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        self._check(a)
        g = np.zeros_like(a)
        g[np.arange(a.shape[0]), self.channels] = 1.0 / (a.shape[2] * a.shape[3])
        return {self.layer: g}


class Diversity(Objective):
    """Lucid's diversity term: mean pairwise cosine similarity of the batch's Gram matrices.

    value = 1/N * sum_{i != j} <G_i / |G_i|, G_j / |G_j|> at ``layer`` (N = batch size);
    *subtract* it (``objective - w * Diversity(layer)``) to make the images differ in style.
    Zero for a batch of one.
    """

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.layers = (layer,)

    def _normed(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if a.ndim != 4:
            raise ValueError(
                f"Diversity({self.layer!r}): activation must be (N, C, H, W), got {a.shape}"
            )
        # einsum, not BLAS: these Grams are tiny, and next to TF's thread pool a multithreaded
        # BLAS call was measured at 0.18 s for a (2, 32, 1089) batch (einsum: 2 ms).
        n, c, h, w = a.shape
        f = a.reshape(n, c, h * w).astype(np.float64)
        g = np.einsum("ncj,ndj->ncd", f, f) / (h * w)
        norm = np.sqrt(np.sum(g * g, axis=(1, 2), keepdims=True)) + 1e-10
        return g, norm, g / norm

    def value(self, acts: Any) -> float:
        a = self._act(acts, self.layer)
        _, _, gh = self._normed(a)
        n = a.shape[0]
        s = gh.sum(axis=0)
        # sum_{i != j} <gh_i, gh_j> = <S, S> - sum_i <gh_i, gh_i>
        return float((np.sum(s * s) - np.sum(gh * gh)) / n)

    def grad(self, acts: Any) -> dict[str, np.ndarray]:
        a = self._act(acts, self.layer)
        _, norm, gh = self._normed(a)
        n, c, h, w = a.shape
        s = gh.sum(axis=0, keepdims=True)
        dgh = 2.0 * (s - gh) / n
        # Through the normalisation gh = g / |g|.
        dg = (dgh - gh * np.sum(gh * dgh, axis=(1, 2), keepdims=True)) / norm
        # Through g = F F^T / (h w): dF = (dg + dg^T) F / (h w).
        f = a.reshape(n, c, h * w).astype(np.float64)
        da = np.einsum("ncd,ndj->ncj", dg + dg.transpose(0, 2, 1), f) / (h * w)
        return {self.layer: da.reshape(a.shape).astype(a.dtype)}


@dataclass
class FeatureResult:
    """Result of ``maximize``.

    - images: pixels (N, 3, H, W) float32 in [0, 255].
    - history: objective value (without the diversity term) at every step, before the update.
    - seconds: wall time.
    """

    images: np.ndarray
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _make_param(
    param: str, shape: tuple[int, int, int, int], init: Any, seed: int | None,
    init_std: float | None,
) -> PixelParam | FourierParam:
    if param == "pixel":
        return PixelParam(shape, init=init, seed=seed, std=0.1 if init_std is None else init_std)
    if param == "fourier":
        return FourierParam(shape, seed=seed, std=0.01 if init_std is None else init_std)
    raise ValueError(f"maximize: param must be 'pixel' or 'fourier', got {param!r}")


# Keras' Adam defaults ("epsilon hat" placement) but the learning rate.
KERAS_ADAM: dict[str, Any] = {
    k: v for k, v in KERAS_DEFAULTS["adam"].items() if k != "learning_rate"
}


def _start_param(
    param: str, size: int | tuple[int, int], batch: int, init: Any, seed: int | None,
    init_std: float | None,
) -> PixelParam | FourierParam:  # fmt: skip
    if isinstance(init, np.ndarray):
        img = np.asarray(init, np.float32)
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"maximize: init image must be (N, 3, H, W) pixels, got {img.shape}")
        if param != "pixel":
            raise ValueError("maximize: an init image needs param='pixel'")
        return _make_param(param, tuple(img.shape), init, seed, init_std)  # type: ignore[arg-type]
    h, w = (size, size) if isinstance(size, int) else size
    return _make_param(param, (int(batch), 3, int(h), int(w)), init, seed, init_std)


def maximize(
    backend: Any,
    objective: Objective,
    *,
    size: int | tuple[int, int] = COURSE_SIZE,
    batch: int = 1,
    init: float | str | np.ndarray = 0.0,
    steps: int = COURSE_STEPS,
    learning_rate: float | None = None,
    max_shift: int = COURSE_SHIFT,
    param: str = "pixel",
    diversity: float = 0.0,
    diversity_layer: str | None = None,
    init_std: float | None = None,
    seed: int | None = 0,
    progress: bool = False,
    callback: Callable[[int, np.ndarray, float], Any] | None = None,
) -> FeatureResult:
    """Find input images that maximise an objective (Olah et al. 2017).

    Each step: pixels from the parameterisation, a random circular shift of up to
    ``max_shift`` pixels, forward, the objective's gradient back to the pixels (shift undone),
    one Adam step (Keras defaults: beta1 0.9, beta2 0.999, epsilon 1e-7) on the parameters,
    clipping to [0, 255] (pixel parameterisation).

    Inputs:
    - backend: an input-gradient backend.
    - objective: e.g. ``feature_objective("mixed1", unit=(30, 9, 9))``; maximised.
    - size: image side (or (H, W)); ignored when ``init`` is an image.
    - batch: number of images optimised together (for ``diversity`` or BatchChannels).
    - init: a constant offset in [-1, 1] (0 = mid grey), 'random', or a pixel image
      (N, 3, H, W) (DeepDream-style start). Pixel parameterisation only.
    - steps: Adam steps.
    - learning_rate: default 1e-3 for 'pixel', 0.05 (Lucid) for 'fourier'; 'pixel' learning
      rates are in half-range units ([-1, 1] for the whole pixel range).
    - max_shift: random shift in pixels (default 4).
    - param: 'pixel' or 'fourier' (decorrelated, Lucid).
    - diversity: weight of the Diversity term (0: off); diversity_layer: its layer (default
      the objective's first layer).
    - init_std: noise of the start: amplitude of ``init='random'`` in half-range units
      (default 0.1), or the std of the Fourier spectrum (default 0.01, Lucid's; models whose
      units are all off on a grey image, like SqueezeNet without mean subtraction, need ~0.1).
    - seed: seeds the start and the shifts; progress: tqdm bar;
      callback(step, pixels, value) after each step.

    Returns a FeatureResult (images (N, 3, H, W) pixels, history, seconds).
    """
    if steps < 0:
        raise ValueError(f"maximize: steps must be >= 0, got {steps}")
    p = _start_param(param, size, batch, init, seed, init_std)
    if learning_rate is None:
        learning_rate = 1e-3 if param == "pixel" else 0.05
    total = objective
    if diversity:
        total = objective - diversity * Diversity(diversity_layer or objective.layers[0])

    def on_step(step: int, x: np.ndarray, value: float) -> Any:
        return callback(step, p.to_pixels(), value) if callback is not None else None

    r = render(
        backend,
        total,
        p,
        steps,
        optimizer="adam",
        optimizer_config={"learning_rate": learning_rate, **KERAS_ADAM},
        transforms=[Jitter(max_shift)],
        monitor={"objective": objective} if diversity else None,
        seed=seed,
        progress=progress,
        callback=on_step if callback is not None else None,
        desc="features",
    )
    history = r.monitor["objective"] if diversity else r.history
    return FeatureResult(p.to_pixels(), history, r.seconds)


def visualize_channels(
    backend: Any, layer: str, channels: Sequence[int], **kwargs: Any
) -> FeatureResult:
    """Maximise several channels of one layer at once (one image per channel, batched).

    Inputs: backend, layer, channels, and ``maximize``'s keyword arguments (not ``batch``).
    Returns a FeatureResult with images (len(channels), 3, H, W).
    """
    return maximize(backend, BatchChannels(layer, channels), batch=len(channels), **kwargs)


def grid(
    images: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    suptitle: str | None = None,
    cell: float = 2.2,
):
    """One matplotlib figure showing several images (e.g. channels of one layer).

    Inputs:
    - images: pixels (N, 3, H, W) or a sequence of (1, 3, H, W) / (3, H, W) arrays in [0, 255]
      (sizes may differ).
    - titles: one per image; ncols: columns (default ceil(sqrt(N))); suptitle; cell: inches.

    Returns a ``matplotlib.figure.Figure`` (save it with ``fig.savefig(path)``).
    """
    import matplotlib.pyplot as plt

    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"grid: images must be (N, 3, H, W), got {images.shape}")
        items = list(images)
    else:
        items = [np.asarray(i).reshape(np.asarray(i).shape[-3:]) for i in images]
    n = len(items)
    if n == 0:
        raise ValueError("grid: no images")
    if titles is not None and len(titles) != n:
        raise ValueError(f"grid: {len(titles)} titles for {n} images")
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.4), squeeze=False
    )
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            img = np.clip(np.rint(items[i]), 0, 255).astype(np.uint8).transpose(1, 2, 0)
            ax.imshow(img)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = [
    "COURSE_LAYER",
    "COURSE_SHIFT",
    "COURSE_SIZE",
    "COURSE_STEPS",
    "COURSE_UNIT",
    "BatchChannels",
    "Diversity",
    "FeatureResult",
    "KERAS_ADAM",
    "feature_objective",
    "grid",
    "maximize",
    "visualize_channels",
]
