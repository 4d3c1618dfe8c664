"""DeepDream: gradient ascent on the mean activation of chosen layers, starting from a photo.

Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks" (Google Research
blog, 2015), in the three forms of the TensorFlow DeepDream tutorial, on any backend and any
set of weighted layers:

* ``variant="simple"``: ``x += step * g / std(g)`` (the gradient normalised by its standard
  deviation), clipped to the valid range, ``steps`` times at the image's own size;
* ``variant="octaves"``: the same at a sequence of scales ``octave_scale**n`` (the tutorial:
  n = -2..2, scale 1.3..1.5), small to large, with the detail added at one scale upsampled and
  carried to the next;
* ``variant="tiled"``: octaves, with the gradient computed tile by tile (tile 512) after a
  random roll of the image, so memory is bounded by the tile, not the image, and the seams
  move every step.

``step_size`` is in half-range units: 0.01 is a step of 0.01 in InceptionV3's [-1, 1] input,
i.e. 1.275 pixel levels, whatever the backend's input space (0..255 BGR for SqueezeNet).

``zoom_dream`` is the "zoom" variant: Adam with a random shift, and the image itself enlarged
by ``zoom`` between rounds (the infinite-zoom videos of the blog post).

Both are presets on :func:`convnet.inputgrad.optimize.render` with the input itself as the
parameterisation: octaves with ``carry="detail"``, zoom rounds with ``carry="image"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.inputgrad.features import KERAS_ADAM
from convnet.inputgrad.objectives import LayerMean, Objective
from convnet.inputgrad.optimize import render
from convnet.inputgrad.param import InputParam, PixelParam, to_model_input
from convnet.inputgrad.transforms import Clip, Jitter

# The TensorFlow DeepDream tutorial's layers on InceptionV3.
DEFAULT_LAYERS: dict[str, float] = {"mixed3": 1.0, "mixed5": 1.0}
VARIANTS = ("simple", "octaves", "tiled")
# Half the pixel range: step sizes are in [-1, 1] units, as for InceptionV3.
_HALF_RANGE = 127.5


@dataclass
class DreamResult:
    """Result of ``deepdream`` / ``zoom_dream``.

    - image: pixels (1, 3, H, W) float32 in [0, 255] (the input's size for ``deepdream``,
      the last zoom's size for ``zoom_dream``).
    - history: objective value at every step (before that step's update), all octaves.
    - octaves: pixels after each octave / zoom round (at that round's size).
    - seconds: wall time.
    """

    image: np.ndarray
    history: list[float] = field(default_factory=list)
    octaves: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


def dream_objective(layers: Sequence[str] | Mapping[str, float]) -> Objective:
    """Sum over layers of weight * mean activation (the tutorial's loss).

    Inputs:
    - layers: names (weight 1 each) or {name: weight}.
    """
    items = list(layers.items()) if isinstance(layers, Mapping) else [(n, 1.0) for n in layers]
    if not items:
        raise ValueError("dream_objective: need at least one layer")
    return sum((w * LayerMean(n) for n, w in items), 0)  # type: ignore[return-value]


def _model_step(space: Any, step_size: float) -> float:
    # A step of `step_size` half-ranges, in model units (the mean over channels; every preset
    # input space scales its channels alike).
    return float(step_size * _HALF_RANGE * np.mean(space.pixel_scale()))


def _check_image(who: str, pixels: np.ndarray) -> np.ndarray:
    p = np.asarray(pixels)
    if p.ndim == 3 and p.shape[-1] == 3:
        p = p.transpose(2, 0, 1)[None]
    if p.ndim != 4 or p.shape[:2] != (1, 3):
        raise ValueError(
            f"{who}: image must be RGB pixels (1, 3, H, W) in [0, 255] (or (H, W, 3)), "
            f"got {p.shape}"
        )
    return p.astype(np.float32)


def octave_scales(octave_scale: float = 1.3, octaves: Sequence[int] = range(-2, 3)) -> list[float]:
    """The scales ``octave_scale**n`` for n in ``octaves`` (the tutorial: 1.3, n = -2..2)."""
    if octave_scale <= 1:
        raise ValueError(f"octave_scales: octave_scale must be > 1, got {octave_scale}")
    return [float(octave_scale) ** n for n in octaves]


def _usable_scales(
    backend: Any, layers: Sequence[str], size: tuple[int, int], scales: list[float]
) -> list[float]:
    """Drop the octaves too small for the model (e.g. a 3x3 pool on a 2x4 map).

    Small octaves of small images are common (64 px / 1.3**2 = 38 px); a zero-cost probe
    forward at each size is simpler and more honest than a per-model minimum size.
    """
    ok = []
    c = backend.input_space.channels
    for s in scales:
        h, w = max(1, round(size[0] * s)), max(1, round(size[1] * s))
        try:
            acts = backend.forward(np.zeros((1, c, h, w), np.float32), layers)
            fits = all(np.asarray(a).size > 0 for a in acts.values())
        except Exception:  # NumPy layers raise ValueError, TF its own InvalidArgumentError
            fits = False
        if fits:
            ok.append(s)
    if not ok:
        raise ValueError(
            f"deepdream: the image ({size[0]}x{size[1]}) is too small for layers {list(layers)} "
            f"at every octave scale {scales}"
        )
    if len(ok) < len(scales):
        warnings.warn(
            f"deepdream: skipped octave scales {[s for s in scales if s not in ok]} "
            f"(image too small for the model there)",
            stacklevel=3,
        )
    return ok


def deepdream(
    backend: Any,
    image: np.ndarray,
    layers: Sequence[str] | Mapping[str, float] = DEFAULT_LAYERS,
    *,
    variant: str = "octaves",
    steps: int = 100,
    step_size: float = 0.01,
    octave_scale: float = 1.3,
    octaves: Sequence[int] = range(-2, 3),
    tile_size: int = 512,
    seed: int | None = 0,
    progress: bool = False,
    callback: Callable[[int, np.ndarray, float], Any] | None = None,
) -> DreamResult:
    """DeepDream an image.

    Inputs:
    - backend: an input-gradient backend (NumPy or TF).
    - image: RGB pixels (1, 3, H, W) (or (H, W, 3)) in [0, 255].
    - layers: layer names or {name: weight} (default InceptionV3 mixed3 + mixed5).
    - variant: 'simple', 'octaves' or 'tiled' (see the module docstring).
    - steps: gradient steps (per octave for 'octaves'/'tiled').
    - step_size: in half-ranges of the pixel scale (default 0.01).
    - octave_scale, octaves: scales octave_scale**n, n in octaves (not used by 'simple').
    - tile_size: tile side in pixels for 'tiled'.
    - seed: for the random rolls; progress: tqdm bar; callback(step, x_model, value).

    Returns a DreamResult (image at the input's size, history, per-octave images, seconds).
    """
    if variant not in VARIANTS:
        raise ValueError(f"deepdream: variant must be one of {VARIANTS}, got {variant!r}")
    if steps < 0:
        raise ValueError(f"deepdream: steps must be >= 0, got {steps}")
    pixels = _check_image("deepdream", image)
    objective = dream_objective(layers)
    space = backend.input_space
    x0 = to_model_input(space, pixels)
    scales = None if variant == "simple" else octave_scales(octave_scale, octaves)
    if scales is not None:
        scales = _usable_scales(backend, objective.layers, x0.shape[2:], scales)
    r = render(
        backend,
        objective,
        InputParam(x0),
        steps,
        optimizer="normalized_sgd",
        optimizer_config={"learning_rate": _model_step(space, step_size), "norm": "std"},
        transforms=[Clip()],
        octaves=scales,
        tile_size=tile_size if variant == "tiled" else None,
        seed=seed,
        progress=progress,
        callback=callback,
        desc=f"dream ({variant})",
    )
    return DreamResult(_pixels(space, r.x), r.history, [_pixels(space, o) for o in r.octaves],
                       r.seconds)  # fmt: skip


def _pixels(space: Any, x: np.ndarray) -> np.ndarray:
    return np.clip(space.to_pixels(x), 0, 255).astype(np.float32)


def zoom_dream(
    backend: Any,
    image: np.ndarray,
    layers: Sequence[str] | Mapping[str, float] = ("mixed3",),
    *,
    zoom: float = 1.3,
    zoom_steps: int = 3,
    steps: int = 1000,
    max_shift: int = 100,
    learning_rate: float = 1e-3,
    seed: int | None = 0,
    progress: bool = False,
) -> DreamResult:
    """DeepDream with zoom steps: Adam ascent with random shifts, then enlarge the image.

    Round n (n = 0..zoom_steps-1) starts from the previous round's image enlarged by ``zoom``
    (round 0: the input) and runs ``steps`` Adam steps (Keras defaults, learning rate in
    half-range units) on the mean of the layers, with a random shift of up to ``max_shift``.

    Inputs:
    - backend, image (pixels (1, 3, H, W)), layers: as ``deepdream`` (default mixed3).
    - zoom: enlargement factor per round (1.3); zoom_steps: rounds (3).
    - steps: Adam steps per round (1000); max_shift: random shift in pixels (100).

    Returns a DreamResult whose image has the size after the last zoom, with every round's
    image in ``octaves``.
    """
    if zoom < 1 or zoom_steps < 1:
        raise ValueError(
            f"zoom_dream: need zoom >= 1 and zoom_steps >= 1, got {zoom}, {zoom_steps}"
        )
    pixels = _check_image("zoom_dream", image)
    r = render(
        backend,
        dream_objective(layers),
        PixelParam(pixels.shape, pixels),  # type: ignore[arg-type]
        steps,
        optimizer="adam",
        optimizer_config={"learning_rate": learning_rate, **KERAS_ADAM},
        transforms=[Jitter(max_shift)],
        octaves=[zoom**n for n in range(zoom_steps)],
        carry="image",
        seed=seed,
        progress=progress,
        desc="zoom",
    )
    rounds = [_pixels(backend.input_space, o) for o in r.octaves]
    return DreamResult(r.param.to_pixels(), r.history, rounds, r.seconds)


__all__ = [
    "DEFAULT_LAYERS",
    "VARIANTS",
    "DreamResult",
    "deepdream",
    "dream_objective",
    "octave_scales",
    "zoom_dream",
]
