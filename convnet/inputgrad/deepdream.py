"""DeepDream: gradient ascent on the mean activation of chosen layers, starting from a photo.

The three variants of the course material (paper 004, "Deep Dream", after the TensorFlow
tutorial; notebook 000, section 3.2), all on any backend and any set of weighted layers:

* ``variant="simple"``: ``x += step * g / std(g)`` (the gradient normalised by its standard
  deviation), clipped to the valid range, ``steps`` times at the image's own size;
* ``variant="octaves"``: the same at a sequence of scales ``octave_scale**n`` (the paper:
  n = -2..2, scale 1.3..1.5), small to large, with the detail added at one scale upsampled and
  carried to the next;
* ``variant="tiled"``: octaves, with the gradient computed tile by tile (tile 512) after a
  random roll of the image, so memory is bounded by the tile, not the image, and the seams
  move every step.

``step_size`` is in the course's units: 0.01 is a step of 0.01 in InceptionV3's [-1, 1] input,
i.e. 1.275 pixel levels, whatever the backend's input space (0..255 BGR for SqueezeNet).

``zoom_dream`` is notebook 000's version (3.2.1): Adam with a random shift, and the image
itself enlarged by ``zoom`` between rounds ("Zoom-Schritte").
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.inputgrad.objectives import LayerMean, Objective
from convnet.inputgrad.optimize import optimize_input
from convnet.inputgrad.param import to_model_input
from convnet.inputgrad.transforms import resize_bilinear

# The paper's layers on InceptionV3 (004, "names = ['mixed3', 'mixed5']").
DEFAULT_LAYERS: dict[str, float] = {"mixed3": 1.0, "mixed5": 1.0}
VARIANTS = ("simple", "octaves", "tiled")
# Half the pixel range: the course's step sizes are in [-1, 1] units.
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
    """Sum over layers of weight * mean activation (the paper's ``calc_loss``).

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
    """The scales ``octave_scale**n`` for n in ``octaves`` (the paper: 1.3, n = -2..2)."""
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
    - step_size: in half-ranges of the pixel scale (course: 0.01).
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
    snapshots: list[np.ndarray] = []

    def on_step(step: int, x: np.ndarray, value: float) -> Any:
        if step == steps - 1:
            snapshots.append(np.clip(space.to_pixels(x), 0, 255).astype(np.float32))
        return callback(step, x, value) if callback is not None else None

    t0 = time.perf_counter()
    x, history = optimize_input(
        backend,
        objective,
        x0,
        steps,
        update="normalized_sgd",
        lr=_model_step(space, step_size),
        update_config={"norm": "std"},
        clip=True,
        seed=seed,
        progress=progress,
        callback=on_step,
        octave_scales=scales,
        tile_size=tile_size if variant == "tiled" else None,
        desc=f"dream ({variant})",
    )
    seconds = time.perf_counter() - t0
    out = np.clip(space.to_pixels(x), 0, 255).astype(np.float32)
    return DreamResult(out, history, snapshots, seconds)


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
    """Notebook 000's DeepDream with zoom steps: Adam ascent with random shifts, then enlarge.

    Round n (n = 0..zoom_steps-1) enlarges the current image by ``zoom`` (not in round 0) and
    runs ``steps`` Adam steps (Keras defaults, learning rate in half-range units: the course's
    1e-3 in [-1, 1]) on the mean of the layers, with a random shift of up to ``max_shift``.

    Inputs:
    - backend, image (pixels (1, 3, H, W)), layers: as ``deepdream`` (course: mixed3).
    - zoom: enlargement factor per round (course 1.3); zoom_steps: rounds (course 3).
    - steps: Adam steps per round (course 1000); max_shift: random shift (course 100).

    Returns a DreamResult whose image has the size after the last zoom, with every round's
    image in ``octaves``.
    """
    from convnet.inputgrad.features import maximize

    if zoom < 1 or zoom_steps < 1:
        raise ValueError(
            f"zoom_dream: need zoom >= 1 and zoom_steps >= 1, got {zoom}, {zoom_steps}"
        )
    pixels = _check_image("zoom_dream", image)
    objective = dream_objective(layers)
    history: list[float] = []
    rounds: list[np.ndarray] = []
    t0 = time.perf_counter()
    for n in range(zoom_steps):
        if n > 0:
            h, w = pixels.shape[2:]
            pixels = resize_bilinear(pixels, (int(h * zoom), int(w * zoom)))
        res = maximize(
            backend,
            objective,
            init=pixels,
            steps=steps,
            learning_rate=learning_rate,
            max_shift=max_shift,
            seed=None if seed is None else seed + n,
            progress=progress,
        )
        pixels = res.images
        history.extend(res.history)
        rounds.append(pixels)
    return DreamResult(pixels, history, rounds, time.perf_counter() - t0)


__all__ = [
    "DEFAULT_LAYERS",
    "VARIANTS",
    "DreamResult",
    "deepdream",
    "dream_objective",
    "octave_scales",
    "zoom_dream",
]
