"""The input-optimisation loop shared by class visualisation, feature visualisation,
DeepDream, fooling images and style transfer.

Each step: apply the transforms' ``before`` (jitter), compute the objective and its gradient
(whole image, or tile by tile with a random roll), map the gradient back (``undo_grad``),
take one step of the update rule (ascent if ``maximize``), then the transforms' ``after``
(blur, clipping). With ``octave_scales`` the loop runs once per scale, small to large, and
the detail it added at one scale is upsampled and carried to the next (DeepDream octaves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convnet.backend import Backend
from convnet.inputgrad.objectives import Objective
from convnet.inputgrad.transforms import Clip, Transform, resize_bilinear, tile_bounds

NORMALIZED = ("normalized_sgd",)


def value_and_grad(
    backend: Backend,
    objective: Objective,
    x: np.ndarray,
    tile_size: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[float, np.ndarray]:
    """Objective value and gradient w.r.t. x (N, C, H, W), optionally tile by tile.

    With ``tile_size`` the image is rolled by a random shift (so tile seams move every
    step), cut into near-equal tiles of about ``tile_size`` pixels, each tile's gradient is
    computed on its own (bounded memory for big images) and the assembled gradient is rolled
    back. The value is the sum of the tiles' values.
    """
    if tile_size is None or (x.shape[2] <= tile_size and x.shape[3] <= tile_size):
        return backend.value_and_grad(objective, x)
    rng = rng if rng is not None else np.random.default_rng()
    sy, sx = (int(v) for v in rng.integers(-tile_size, tile_size, size=2))
    xr = np.roll(x, (sy, sx), axis=(2, 3))
    g = np.zeros_like(xr)
    total = 0.0
    for y0, y1 in tile_bounds(x.shape[2], tile_size):
        for x0, x1 in tile_bounds(x.shape[3], tile_size):
            v, gt = backend.value_and_grad(objective, np.ascontiguousarray(xr[:, :, y0:y1, x0:x1]))
            g[:, :, y0:y1, x0:x1] = gt
            total += v
    return total, np.roll(g, (-sy, -sx), axis=(2, 3))


def _normalized_step(x: np.ndarray, g: np.ndarray, lr: float, norm: str) -> np.ndarray:
    # Per-image normalisation: the step size is lr whatever the gradient's scale.
    axes = tuple(range(1, g.ndim))
    if norm == "mean_abs":
        s = np.mean(np.abs(g), axis=axes, keepdims=True)
    elif norm == "std":
        s = np.std(g, axis=axes, keepdims=True)
    elif norm == "l2":
        s = np.sqrt(np.sum(g * g, axis=axes, keepdims=True))
    else:
        raise ValueError(f"optimize_input: norm must be mean_abs|std|l2, got {norm!r}")
    return (x + lr * g / (s + 1e-8)).astype(x.dtype)


def optimize_input(
    backend: Backend,
    objective: Objective,
    x0: np.ndarray,
    steps: int,
    update: str | Callable = "adam",
    lr: float = 1e-2,
    transforms: Sequence[Transform] = (),
    clip: bool = True,
    seed: int | np.random.Generator | None = None,
    progress: bool = True,
    callback: Callable[[int, np.ndarray, float], bool | None] | None = None,
    maximize: bool = True,
    update_config: dict[str, Any] | None = None,
    octave_scales: Sequence[float] | None = None,
    tile_size: int | None = None,
    desc: str = "optimize",
) -> tuple[np.ndarray, list[float]]:
    """Optimise an input image for an objective.

    Inputs:
    - backend: a :class:`Backend`.
    - objective: an :class:`Objective` (maximised if ``maximize``, else minimised).
    - x0: (N, C, H, W) float start, in model units; not modified.
    - steps: iterations (per octave).
    - update: a convnet.optim rule name ('adam', 'sgd', 'sgd_momentum', 'rmsprop',
      'nesterov'), a rule callable ``(w, dw, config) -> (w, config)``, or 'normalized_sgd'
      (``x += lr * g / norm(g)`` per image, DeepDream/Simonyan; ``update_config['norm']`` is
      'mean_abs' (default), 'std' or 'l2').
    - lr: learning rate in model units.
    - transforms: e.g. ``[Jitter(16), Blur(10, 0.5)]``; applied in order (undone in reverse).
    - clip: clip to the input space's pixel range after every step.
    - seed: for jitter and tile rolls.
    - progress: show a tqdm progress bar.
    - callback: ``callback(step, x, value)`` after each step; returning True stops early.
    - update_config: extra hyperparameters for the rule (beta1, momentum, ...).
    - octave_scales: e.g. ``[1/1.4**2, 1/1.4, 1]``: run ``steps`` at each scale of x0's size.
    - tile_size: compute gradients in tiles of about this many pixels (random roll).

    Returns:
    - x: (N, C, H, W) optimised image (x0's size and dtype).
    - history: objective value at every step (before that step's update), all octaves.
    """
    from tqdm.auto import tqdm

    x0 = np.asarray(x0)
    if not np.issubdtype(x0.dtype, np.floating):
        x0 = x0.astype(np.float32)
    if x0.ndim != 4:
        raise ValueError(f"optimize_input: x0 must be (N, C, H, W), got {x0.shape}")
    if steps < 0:
        raise ValueError(f"optimize_input: steps must be >= 0, got {steps}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ts = list(transforms) + ([Clip()] if clip else [])
    space = backend.input_space
    if isinstance(update, str) and update in NORMALIZED:
        rule = None
    else:
        from convnet.optim import get_update_rule

        rule = get_update_rule(update)
    scales = list(octave_scales) if octave_scales else [1.0]
    H, W = x0.shape[2:]
    history: list[float] = []
    bar = tqdm(total=steps * len(scales), desc=desc, disable=not progress, leave=False)
    x = x0.copy()
    detail: np.ndarray | None = None
    stop = False
    try:
        for scale in scales:
            size = (max(1, int(round(H * scale))), max(1, int(round(W * scale))))
            base = resize_bilinear(x0, size)
            x = base if detail is None else base + resize_bilinear(detail, size)
            config: dict[str, Any] = {"learning_rate": lr, **(update_config or {})}
            norm = config.pop("norm", "mean_abs") if rule is None else None
            for step in range(steps):
                xt = x
                states = []
                for t in ts:
                    xt, st = t.before(xt, rng, step)
                    states.append(st)
                value, g = value_and_grad(backend, objective, xt, tile_size, rng)
                for t, st in zip(reversed(ts), reversed(states), strict=True):
                    g = t.undo_grad(g, st)
                history.append(value)
                if rule is None:
                    x = _normalized_step(x, g if maximize else -g, lr, str(norm))
                else:
                    x, config = rule(x, -g if maximize else g, config)
                for t in ts:
                    x = t.after(x, step, space)
                bar.update(1)
                bar.set_postfix(value=f"{value:.4g}")
                if callback is not None and callback(step, x, value):
                    stop = True
                    break
            detail = x - base
            if stop:
                break
    finally:
        bar.close()
    if x.shape[2:] != (H, W):
        # Stopped early at a smaller octave: bring the result back to x0's size.
        x = resize_bilinear(x, (H, W))
    return x.astype(x0.dtype, copy=False), history


__all__ = ["optimize_input", "value_and_grad"]
