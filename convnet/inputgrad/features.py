"""Feature visualisation: the input that maximises a neuron, a channel or a whole layer.

Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017, with the defaults of
their Lucid library (``render_vis``): the image is optimised through a decorrelated Fourier
parameterisation (:class:`convnet.inputgrad.param.FourierParam`: 1/f-scaled spectrum, ImageNet
colour decorrelation, sigmoid) with Adam at learning rate 0.05, and every step the model sees
it padded, randomly cropped, rescaled and rotated (transformation robustness,
:func:`convnet.inputgrad.transforms.robustness_transforms`), so high-frequency patterns that
only work at one pixel alignment do not pay off.

``param="pixel"`` keeps the plain method: Adam on the pixels with a random circular shift
every step, clipping to the valid range, starting from a constant image. Its defaults are the
settings of ``experiments/feature_visualization.py`` on InceptionV3: layer ``mixed1``, unit
(y, x, channel) = (9, 9, 30) and channel 30, a 200x200 input, 2000 steps, shift 4, Adam with
Keras' defaults (learning rate 1e-3 in [-1, 1] units).

Also from that article (and Lucid):

* ``diversity``: a batch of images for the same objective, pushed apart by penalising the
  cosine similarity of their Gram matrices at a layer (:class:`Diversity`);
* :func:`caricature`: an image whose activations at a layer match (or exaggerate) those of a
  given image, i.e. feature inversion (Mahendran & Vedaldi 2015) and Lucid's caricatures.

Everything works on any backend (NumPy SqueezeNet, Keras models through the TF backend) and
in pixel units: the image lives in [0, 255] RGB and the backend's input space converts.
:func:`maximize` and :func:`caricature` are presets on
:func:`convnet.inputgrad.optimize.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.inputgrad.objectives import (
    ActivationDistance,
    ActivationMatch,
    Channel,
    LayerMean,
    Neuron,
    Objective,
)
from convnet.inputgrad.optimize import render
from convnet.inputgrad.param import FourierParam, PixelParam, WithReference
from convnet.inputgrad.relu_redirect import redirected_relu
from convnet.inputgrad.transforms import Jitter, Transform, resize_bilinear, robustness_transforms
from convnet.optim import KERAS_DEFAULTS

# The InceptionV3 setting of experiments/feature_visualization.py: mixed1, unit [:, 9, 9, 30]
# in Keras' NHWC order and channel 30. (The COURSE_* names are kept for existing imports.)
COURSE_LAYER = "mixed1"
COURSE_UNIT = (30, 9, 9)  # (channel, y, x)
COURSE_SIZE = 200
COURSE_STEPS = 2000
COURSE_SHIFT = 4
PARAMS = ("fourier", "pixel")
TRANSFORMS = ("robust", "jitter")
FOURIER_LR = 0.05  # Lucid's Adam learning rate on the Fourier coefficients
ROBUST_SHIFT = 8  # Lucid's first jitter (the second is half of it)


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
        f = FourierParam(shape, seed=seed, std=0.01 if init_std is None else init_std)
        if isinstance(init, np.ndarray):
            f.set_pixels(init)
        return f
    raise ValueError(f"maximize: param must be one of {PARAMS}, got {param!r}")


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
        return _make_param(param, tuple(img.shape), init, seed, init_std)  # type: ignore[arg-type]
    h, w = (size, size) if isinstance(size, int) else size
    return _make_param(param, (int(batch), 3, int(h), int(w)), init, seed, init_std)


def feature_transforms(
    backend: Any, transforms: str | Sequence[Transform] | None, param: str,
    max_shift: int | None,
) -> list[Transform]:  # fmt: skip
    """The transforms of a feature-visualisation run.

    Inputs:
    - backend: gives the input space (the padding is mid grey in model units).
    - transforms: 'robust' (Lucid's: pad 12, jitter ``max_shift`` (8), random scale 0.9..1.1,
      random rotation -10..10 degrees, jitter ``max_shift // 2``; then a resize to the model's
      input size if it takes only one), 'jitter' (a random circular
      shift of up to ``max_shift`` (4) pixels), a list of transforms (used as given), or None:
      'robust' for ``param='fourier'``, 'jitter' for ``param='pixel'``.
    - param: the parameterisation's name; max_shift: see above (None: the default).

    Returns a list of :class:`~convnet.inputgrad.transforms.Transform`.
    """
    if transforms is None:
        transforms = "robust" if param == "fourier" else "jitter"
    if not isinstance(transforms, str):
        return list(transforms)
    if transforms == "robust":
        j = ROBUST_SHIFT if max_shift is None else int(max_shift)
        fixed = getattr(backend, "input_shape", None)  # a model of one input size
        return robustness_transforms(backend.input_space, jitter=j, jitter_after=j // 2,
                                     output_size=None if fixed is None else fixed[1:])  # fmt: skip
    if transforms == "jitter":
        return [Jitter(COURSE_SHIFT if max_shift is None else max_shift)]
    raise ValueError(f"transforms must be one of {TRANSFORMS} or a list, got {transforms!r}")


def _optimise(
    backend: Any, objective: Objective, p: Any, steps: int, learning_rate: float,
    transforms: list[Transform], opts: dict[str, Any], *, maximize: bool = True,
    monitor: dict[str, Objective] | None = None, shown: Any = None,
) -> FeatureResult:  # fmt: skip
    """Adam (Keras' constants) on ``p`` through :func:`render`; images from ``shown``."""
    shown = p if shown is None else shown
    callback = opts.get("callback")
    redirect = opts.get("redirect_relu")
    if redirect is None:
        redirect = isinstance(p, FourierParam) or isinstance(getattr(p, "inner", None),
                                                              FourierParam)  # fmt: skip

    def on_step(step: int, x: np.ndarray, value: float) -> Any:
        return callback(step, shown.to_pixels(), value)

    with redirected_relu(backend) if redirect else nullcontext(0) as changed:
        if opts.get("redirect_relu") and not changed:
            raise ValueError(
                f"redirect_relu=True needs a NumPy backend with ReLU modules, got {backend!r}"
            )
        r = render(
            backend,
            objective,
            p,
            steps,
            optimizer="adam",
            optimizer_config={"learning_rate": learning_rate, **KERAS_ADAM},
            transforms=transforms,
            monitor=monitor,
            maximize=maximize,
            seed=opts.get("seed"),
            progress=bool(opts.get("progress")),
            callback=on_step if callback is not None else None,
            desc="features",
        )
    history = r.monitor["objective"] if monitor else r.history
    return FeatureResult(shown.to_pixels(), history, r.seconds)


def maximize(
    backend: Any,
    objective: Objective,
    *,
    size: int | tuple[int, int] = COURSE_SIZE,
    batch: int = 1,
    init: float | str | np.ndarray = 0.0,
    steps: int = COURSE_STEPS,
    learning_rate: float | None = None,
    max_shift: int | None = None,
    param: str = "fourier",
    transforms: str | Sequence[Transform] | None = None,
    diversity: float = 0.0,
    diversity_layer: str | None = None,
    init_std: float | None = None,
    redirect_relu: bool | None = None,
    seed: int | None = 0,
    progress: bool = False,
    callback: Callable[[int, np.ndarray, float], Any] | None = None,
) -> FeatureResult:
    """Find input images that maximise an objective (Olah et al. 2017).

    Each step: pixels from the parameterisation, the transforms (default for 'fourier':
    Lucid's pad, jitter, scale, rotation, jitter; for 'pixel': a random shift of up to
    ``max_shift`` pixels), forward, the objective's gradient back through the transforms'
    adjoints to the parameters, one Adam step (Keras defaults: beta1 0.9, beta2 0.999, epsilon
    1e-7), clipping to [0, 255] (pixel parameterisation; Fourier images are always in range).

    Inputs:
    - backend: an input-gradient backend.
    - objective: e.g. ``feature_objective("mixed1", unit=(30, 9, 9))``; maximised.
    - size: image side (or (H, W)); ignored when ``init`` is an image.
    - batch: number of images optimised together (for ``diversity`` or BatchChannels).
    - init: a pixel image (N, 3, H, W) (DeepDream-style start; both parameterisations), or
      for 'pixel' a constant offset in [-1, 1] (0 = mid grey) or 'random' (the Fourier
      parameterisation otherwise starts from Lucid's random spectrum of std ``init_std``).
    - steps: Adam steps.
    - learning_rate: default 1e-3 for 'pixel', 0.05 (Lucid) for 'fourier'; 'pixel' learning
      rates are in half-range units ([-1, 1] for the whole pixel range).
    - max_shift: the jitter in pixels (default 8 with the robust transforms, whose second
      jitter is half of it; 4 with 'jitter').
    - param: 'fourier' (default: decorrelated, Lucid) or 'pixel'.
    - transforms: 'robust', 'jitter', a list of transforms, or None (the parameterisation's
      default, see :func:`feature_transforms`).
    - diversity: weight of the Diversity term (0: off); diversity_layer: its layer (default
      the objective's first layer).
    - init_std: noise of the start: amplitude of ``init='random'`` in half-range units
      (default 0.1), or the std of the Fourier spectrum (default 0.01, Lucid's).
    - redirect_relu: Lucid's redirected ReLU gradient (see
      :mod:`convnet.inputgrad.relu_redirect`), so channels that are off on the start image
      still get a gradient. None (default): on for 'fourier' where the backend supports it
      (the NumPy backend; the TF backend's gradients are left unchanged), off for 'pixel';
      True on a backend without support raises ValueError.
    - seed: seeds the start and the transforms; progress: tqdm bar;
      callback(step, pixels, value) after each step.

    Returns a FeatureResult (images (N, 3, H, W) pixels, history, seconds).
    """
    if steps < 0:
        raise ValueError(f"maximize: steps must be >= 0, got {steps}")
    p = _start_param(param, size, batch, init, seed, init_std)
    if learning_rate is None:
        learning_rate = 1e-3 if param == "pixel" else FOURIER_LR
    total = objective
    if diversity:
        total = objective - diversity * Diversity(diversity_layer or objective.layers[0])
    ts = feature_transforms(backend, transforms, param, max_shift)
    opts = dict(seed=seed, progress=progress, callback=callback, redirect_relu=redirect_relu)
    return _optimise(backend, total, p, steps, learning_rate, ts, opts,
                     monitor={"objective": objective} if diversity else None)  # fmt: skip


def _reference_pixels(image: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    img = np.asarray(image, np.float32)
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4 or img.shape[:2] != (1, 3):
        raise ValueError(f"caricature: image must be pixels (1, 3, H, W) or (3, H, W), "
                         f"got {np.shape(image)}")  # fmt: skip
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        img = resize_bilinear(img, hw)  # type: ignore[arg-type]
    return img


def caricature(
    backend: Any,
    image: np.ndarray,
    layer: str,
    *,
    invert: bool = False,
    cossim_pow: float = 1.0,
    size: int | tuple[int, int] | None = None,
    batch: int = 1,
    steps: int = 512,
    learning_rate: float | None = None,
    param: str = "fourier",
    transforms: str | Sequence[Transform] | None = None,
    max_shift: int | None = None,
    init_std: float | None = None,
    redirect_relu: bool | None = None,
    seed: int | None = 0,
    progress: bool = False,
    callback: Callable[[int, np.ndarray, float], Any] | None = None,
) -> FeatureResult:
    """An image that the network sees, at ``layer``, like ``image``: caricature or inversion.

    ``invert=False`` (caricature, Lucid's ``dot_compare``): maximise
    :class:`~convnet.inputgrad.objectives.ActivationMatch` (dot product with the image's
    activation times cosine similarity^``cossim_pow``), which exaggerates what the layer
    detects in the image. ``invert=True`` (feature inversion, Mahendran & Vedaldi 2015):
    minimise :class:`~convnet.inputgrad.objectives.ActivationDistance`, the relative squared
    distance to the image's activation. The image is put first in the batch
    (:class:`~convnet.inputgrad.param.WithReference`) so it goes through the same random
    transforms as the optimised images; both start from noise as in :func:`maximize`.

    Inputs:
    - backend; image: pixels (1, 3, H, W) or (3, H, W) in [0, 255]; layer: layer name.
    - invert, cossim_pow: see above.
    - size: resize the image to this side (or (H, W)) first; batch: how many results.
    - steps, learning_rate, param, transforms, max_shift, init_std, redirect_relu, seed,
      progress, callback: as for :func:`maximize` (init is noise).

    Returns a FeatureResult: images (batch, 3, H, W) pixels, history of the objective
    (the distance when inverting), seconds.
    """
    if steps < 0:
        raise ValueError(f"caricature: steps must be >= 0, got {steps}")
    ref = _reference_pixels(image, size)
    inner = _start_param(param, ref.shape[2:], batch, "random", seed, init_std)  # type: ignore[arg-type]
    p = WithReference(inner, ref)
    if learning_rate is None:
        learning_rate = 1e-3 if param == "pixel" else FOURIER_LR
    obj: Objective = (ActivationDistance(layer) if invert
                      else ActivationMatch(layer, cossim_pow=cossim_pow))  # fmt: skip
    ts = feature_transforms(backend, transforms, param, max_shift)
    opts = dict(seed=seed, progress=progress, callback=callback, redirect_relu=redirect_relu)
    return _optimise(backend, obj, p, steps, learning_rate, ts, opts, maximize=not invert,
                     shown=inner)  # fmt: skip


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
    "PARAMS",
    "TRANSFORMS",
    "caricature",
    "feature_objective",
    "feature_transforms",
    "grid",
    "maximize",
    "visualize_channels",
]
