"""The one input-optimisation loop, :func:`render`, and its pieces.

Class visualisation, feature visualisation, DeepDream (simple, octaves, tiled, zoom), style
transfer and preferred inputs are short presets on :func:`render`, in the manner of lucent's
``render_vis``: each chooses an objective, a parameterisation, an optimiser and transforms.

One step of the first-order loop: the parameterisation gives the model input, the transforms'
``before`` hooks move it (jitter), the objective's value and gradient are computed (the whole
image, or tile by tile after a random roll), the gradient is mapped back (``undo_grad``, then
the parameterisation's ``grad``), one step of the update rule is taken (ascent if
``maximize``), and the parameterisation projects itself (the transforms' ``after``: blur,
clipping). With L-BFGS the same evaluation is handed to ``scipy.optimize`` instead. With
``octaves`` the loop runs once per scale, small to large: with ``carry="detail"`` the detail
added at one scale is upsampled and added to the start image at the next (DeepDream octaves,
Mordvintsev et al. 2015), with ``carry="image"`` the result itself is enlarged (zoom).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.backend import Backend
from convnet.errors import NonFiniteError
from convnet.inputgrad.objectives import Objective
from convnet.inputgrad.param import InputParam
from convnet.inputgrad.transforms import Clip, Transform, resize_bilinear, tile_bounds

NORMALIZED = ("normalized_sgd",)
LBFGS = "lbfgs"
CARRY = ("detail", "image")
Callback = Callable[[int, np.ndarray, float], "bool | None"]


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


def normalized_sgd(
    w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalised gradient step ``w - learning_rate * dw / norm(dw)``, per image.

    The step length is ``learning_rate`` whatever the gradient's scale: Simonyan et al. (2014)
    class visualisation (``norm='l2'``), Mordvintsev et al. (2015) DeepDream (``'std'``).
    Same contract as the :mod:`convnet.optim` rules.

    Inputs:
    - w, dw: (N, ...) arrays of the same shape; the norm is taken per leading index.
    - config: learning_rate (1e-2), norm ('mean_abs' (default) | 'std' | 'l2').

    Returns (next_w of w's dtype, config).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    norm = config.setdefault("norm", "mean_abs")
    axes = tuple(range(1, dw.ndim))
    if norm == "mean_abs":
        s = np.mean(np.abs(dw), axis=axes, keepdims=True)
    elif norm == "std":
        s = np.std(dw, axis=axes, keepdims=True)
    elif norm == "l2":
        s = np.sqrt(np.sum(dw * dw, axis=axes, keepdims=True))
    else:
        raise ValueError(f"normalized_sgd: norm must be mean_abs|std|l2, got {norm!r}")
    return (w - config["learning_rate"] * dw / (s + 1e-8)).astype(w.dtype), config


def _update_rule(optimizer: str | Callable) -> Callable | str:
    if isinstance(optimizer, str) and optimizer in NORMALIZED:
        return normalized_sgd
    if optimizer == LBFGS:
        return LBFGS
    from convnet.optim import get_update_rule

    return get_update_rule(optimizer)


class Monitor:
    """Named objectives evaluated at every step on the same activations, for loss curves.

    They add no gradient; ``history[name]`` holds one value per step.
    """

    def __init__(self, objectives: Mapping[str, Objective] | None = None) -> None:
        self.objectives = dict(objectives or {})
        self.history: dict[str, list[float]] = {k: [] for k in self.objectives}
        self.layers = tuple(n for o in self.objectives.values() for n in o.layers)

    def record(self, acts: Mapping[str, np.ndarray]) -> None:
        for k, obj in self.objectives.items():
            self.history[k].append(float(obj.value(acts)))

    def last(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.history.items() if v}


@dataclass
class Rendering:
    """Result of :func:`render`.

    - x: the final model input (N, C, H, W) (the start size after octaves with
      ``carry='detail'``, the last octave's size with ``carry='image'``).
    - param: the parameterisation (of the last octave), holding the optimised ``params``.
    - history: objective value at every step (before that step's update), all octaves.
    - monitor: {name: values per step} of the monitored objectives.
    - octaves: the model input at the end of each octave (at that octave's size).
    - seconds: wall time of the loop.
    """

    x: np.ndarray
    param: Any
    history: list[float] = field(default_factory=list)
    monitor: dict[str, list[float]] = field(default_factory=dict)
    octaves: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


class _Stop(Exception):
    """The callback asked to stop (raised through scipy's L-BFGS)."""


def _non_finite(step: int, value: float, first: bool) -> NonFiniteError:
    if first and not np.isfinite(value):  # NaN before any update: the model, not the step
        err = NonFiniteError(
            f"render: the objective is {value} on the start image, so the image became NaN "
            "at step 0: the model's weights (or the start image) hold NaN or Inf"
        )
    else:
        err = NonFiniteError(
            f"render: the image became NaN or Inf at step {step} (objective value "
            f"{value:.4g}); a smaller learning rate or step size keeps it finite"
        )
    err.at_start = first and not np.isfinite(value)  # type: ignore[attr-defined]
    return err


class _Run:
    """What one render call shares across steps and octaves: evaluation and bookkeeping."""

    def __init__(self, backend, objective, transforms, tile_size, maximize, monitor, rng, bar,
                 callback) -> None:  # fmt: skip
        self.backend, self.objective, self.space = backend, objective, backend.input_space
        self.transforms, self.tile_size, self.maximize = list(transforms), tile_size, maximize
        self.monitor, self.rng, self.bar, self.callback = monitor, rng, bar, callback
        self.history: list[float] = []

    def _evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.tile_size is not None:
            return value_and_grad(self.backend, self.objective, x, self.tile_size, self.rng)
        acts = self.backend.forward(x, [*self.objective.layers, *self.monitor.layers])
        self.monitor.record(acts)
        return float(self.objective.value(acts)), self.backend.vjp(self.objective.grad(acts))

    def gradient(self, param: Any, step: int) -> tuple[float, np.ndarray]:
        """Objective value at the (transformed) input and its gradient w.r.t. param.params."""
        xt = param.to_input(self.space)
        states = []
        for t in self.transforms:
            xt, st = t.before(xt, self.rng, step)
            states.append(st)
        value, g = self._evaluate(xt)
        for t, st in zip(reversed(self.transforms), reversed(states), strict=True):
            g = t.undo_grad(g, st)
        if not self.history and not np.any(g):
            # A ReLU unit that is off everywhere has no gradient: the image would never move.
            warnings.warn(
                f"render: {self.objective!r} has zero gradient at the start image (e.g. a dead "
                "unit); try another start (random noise or another constant)",
                stacklevel=4,
            )
        return value, param.grad(self.space, g)

    def tick(self, step: int, param: Any, value: float) -> bool:
        """Record a step; True if the callback asks to stop.

        Raises NonFiniteError when the step left NaN or Inf in the parameters: every later
        step would compute on NaN and the result would be a black (or empty) image.
        """
        if not np.all(np.isfinite(param.params)):
            raise _non_finite(step, value, first=not self.history)
        self.history.append(value)
        self.bar.update(1)
        self.bar.set_postfix(value=f"{value:.4g}")
        if self.callback is None:
            return False
        return bool(self.callback(step, param.to_input(self.space), value))


def _first_order(run: _Run, param: Any, steps: int, rule: Callable, config: dict) -> bool:
    config = dict(config)  # a fresh state (Adam's moments) per octave
    for step in range(steps):
        value, d = run.gradient(param, step)
        param.params, config = rule(param.params, -d if run.maximize else d, config)
        param.after(step, run.space, run.transforms)
        if run.tick(step, param, value):
            return True
    return False


def _lbfgs(run: _Run, param: Any, steps: int) -> bool:
    from scipy.optimize import Bounds, minimize

    shape, dtype = param.params.shape, param.params.dtype
    sign = -1.0 if run.maximize else 1.0
    count = [0]

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        param.params = flat.reshape(shape).astype(dtype, copy=False)
        value, d = run.gradient(param, count[0])
        count[0] += 1
        if run.tick(count[0] - 1, param, value):
            raise _Stop
        return sign * value, sign * np.asarray(d, np.float64).ravel()

    bounds = None if param.bounds is None else Bounds(*param.bounds)
    try:
        res = minimize(fun, param.params.ravel().astype(np.float64), jac=True,
                       method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": steps, "maxfun": steps})  # fmt: skip
    except _Stop:
        return True
    param.params = res.x.reshape(shape).astype(dtype, copy=False)
    return False


def _check_render(param: Any, steps: int, rule: Any, transforms: Sequence[Transform],
                  carry: str, monitor: Monitor, tile_size: int | None) -> None:  # fmt: skip
    if steps < 0:
        raise ValueError(f"render: steps must be >= 0, got {steps}")
    if carry not in CARRY:
        raise ValueError(f"render: carry must be one of {CARRY}, got {carry!r}")
    if rule == LBFGS and transforms:
        raise ValueError(
            "render: L-BFGS takes no transforms (its line search needs a fixed objective); "
            "state a box through the parameterisation's bounds"
        )
    if not isinstance(param, InputParam) and any(
        type(t).after is not Transform.after for t in transforms
    ):
        raise ValueError(
            "render: transforms that change the image after a step (blur, clipping) need the "
            "input itself as the parameterisation"
        )
    if monitor.objectives and tile_size is not None:
        raise ValueError("render: monitored objectives are not supported with tiles")


def _octave_start(
    x0: np.ndarray, prev: np.ndarray, base: np.ndarray | None, size: tuple[int, int], carry: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Start image at ``size`` and the new base image (carry='detail' only)."""
    if carry == "image":
        return resize_bilinear(prev, size), None
    new_base = resize_bilinear(x0, size)
    if base is None:
        return new_base, new_base
    return new_base + resize_bilinear(prev - base, size), new_base


def render(
    backend: Backend,
    objective: Objective,
    param: Any,
    steps: int,
    *,
    optimizer: str | Callable = "adam",
    optimizer_config: dict[str, Any] | None = None,
    transforms: Sequence[Transform] = (),
    octaves: Sequence[float] | None = None,
    carry: str = "detail",
    tile_size: int | None = None,
    maximize: bool = True,
    monitor: Monitor | Mapping[str, Objective] | None = None,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    desc: str = "render",
) -> Rendering:
    """Optimise an input for an objective: the loop behind every method of this package.

    Inputs:
    - backend: a :class:`Backend`.
    - objective: an :class:`Objective`; maximised if ``maximize``, else minimised.
    - param: a parameterisation (:class:`InputParam`, ``PixelParam``, ``FourierParam``, see
      :mod:`convnet.inputgrad.param`), or a start image (N, C, H, W) in model units (wrapped
      in an :class:`InputParam`; not modified).
    - steps: update steps per octave (L-BFGS: objective evaluations).
    - optimizer: a :mod:`convnet.optim` rule name ('adam', 'sgd', 'sgd_momentum', 'rmsprop',
      'nesterov'), a rule ``(w, dw, config) -> (w, config)``, 'normalized_sgd' (see
      :func:`normalized_sgd`) or 'lbfgs' (scipy's L-BFGS-B within ``param.bounds``).
    - optimizer_config: the rule's hyperparameters (learning_rate, beta1, norm, ...); each
      octave starts from a copy of it (fresh optimiser state).
    - transforms: e.g. ``[Jitter(16), Blur(10, 0.5), Clip()]``, applied in order.
    - octaves: scales of the start size, run small to large; the parameterisation restarts
      from the resized image at each (InputParam, PixelParam).
    - carry: 'detail' (DeepDream octaves; the result has the start size) or 'image' (zoom:
      each octave enlarges the previous result; the result has the last octave's size).
    - tile_size: compute gradients in tiles of about this many pixels (random roll).
    - monitor: {name: Objective} (or a :class:`Monitor`) also evaluated every step, no gradient.
    - seed: seeds the transforms and the tile rolls.
    - progress: a tqdm progress bar (closed however the loop ends).
    - callback: ``callback(step, x, value)`` after each step, x the model input; True stops.
    - desc: the progress bar's label.

    Returns a :class:`Rendering` (x, param, history, monitor, octaves, seconds).
    """
    from tqdm.auto import tqdm

    if not hasattr(param, "to_input"):
        param = InputParam(param)
    mon = monitor if isinstance(monitor, Monitor) else Monitor(monitor)
    rule = _update_rule(optimizer)
    _check_render(param, steps, rule, transforms, carry, mon, tile_size)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    scales = list(octaves) if octaves else [None]
    bar = tqdm(total=steps * len(scales), desc=desc, disable=not progress, leave=False)
    run = _Run(backend, objective, transforms, tile_size, maximize, mon, rng, bar, callback)
    config = dict(optimizer_config or {})
    t0 = time.perf_counter()
    x0 = np.array(param.to_input(backend.input_space)) if octaves else None
    snapshots: list[np.ndarray] = []
    base = None
    try:
        for scale in scales:
            if scale is not None:
                h, w = (max(1, int(round(n * scale))) for n in x0.shape[2:])  # type: ignore[union-attr]
                prev = param.to_input(backend.input_space)
                x, base = _octave_start(x0, prev, base, (h, w), carry)  # type: ignore[arg-type]
                param = param.restart(backend.input_space, x)
            if rule == LBFGS:
                stop = _lbfgs(run, param, steps)
            else:
                stop = _first_order(run, param, steps, rule, config)  # type: ignore[arg-type]
            snapshots.append(np.array(param.to_input(backend.input_space)))
            if stop:
                break
    finally:
        bar.close()
    x = param.to_input(backend.input_space)
    if octaves and carry == "detail" and x.shape[2:] != x0.shape[2:]:  # type: ignore[union-attr]
        x = resize_bilinear(x, x0.shape[2:])  # type: ignore[union-attr]
    return Rendering(x, param, run.history, mon.history, snapshots, time.perf_counter() - t0)


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
    callback: Callback | None = None,
    maximize: bool = True,
    update_config: dict[str, Any] | None = None,
    octave_scales: Sequence[float] | None = None,
    tile_size: int | None = None,
    desc: str = "optimize",
) -> tuple[np.ndarray, list[float]]:
    """Optimise an input image (model units) for an objective: :func:`render` on the input.

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
    x0 = np.asarray(x0)
    if not np.issubdtype(x0.dtype, np.floating):
        x0 = x0.astype(np.float32)
    if x0.ndim != 4:
        raise ValueError(f"optimize_input: x0 must be (N, C, H, W), got {x0.shape}")
    if steps < 0:
        raise ValueError(f"optimize_input: steps must be >= 0, got {steps}")
    r = render(
        backend,
        objective,
        InputParam(x0),
        steps,
        optimizer=update,
        optimizer_config={"learning_rate": lr, **(update_config or {})},
        transforms=[*transforms, Clip()] if clip else list(transforms),
        octaves=octave_scales,
        tile_size=tile_size,
        maximize=maximize,
        seed=seed,
        progress=progress,
        callback=callback,
        desc=desc,
    )
    return r.x.astype(x0.dtype, copy=False), r.history


__all__ = [
    "Monitor",
    "Rendering",
    "normalized_sgd",
    "optimize_input",
    "render",
    "value_and_grad",
]
