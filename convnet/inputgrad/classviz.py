"""Class model visualisation (Simonyan, Vedaldi & Zisserman 2014), cs231n style.

Maximise ``score_c(x) - l2 * ||z||^2`` by normalised gradient ascent with random jitter,
a Gaussian blur every few steps and clipping to the valid pixel range.

Units: to make the cs231n defaults (l2 1e-3, learning rate 25, images standardised with the
ImageNet mean and std) mean the same for every model whatever its preprocessing, the
penalty and the step are stated on the *standardised* image ``z = (pixels - 127.5) / 57.375``
(57.375 = 0.225 * 255, the ImageNet pixel std) and converted to model units through the
backend's input space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convnet.backend import Backend
from convnet.inputgrad.objectives import L2, ClassScore, Objective
from convnet.inputgrad.optimize import render
from convnet.inputgrad.param import InputParam
from convnet.inputgrad.transforms import Blur, Clip, Jitter

PIXEL_STD = 57.375  # 0.225 * 255: one standardised unit in pixel levels
PIXEL_MID = 127.5


def standardised_l2(backend: Backend) -> Objective:
    """``||z||^2`` with ``z = (pixels - 127.5) / 57.375``, written in model units."""
    space = backend.input_space
    return L2(center=space.midpoint(), scale=PIXEL_STD * space.pixel_scale())


def random_image(
    backend: Backend, size: tuple[int, int], seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """(1, C, H, W) model-space image: mid-grey + one standardised unit of Gaussian noise."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    c = backend.input_space.channels
    p = PIXEL_MID + PIXEL_STD * rng.standard_normal((1, c, *size))
    return backend.input_space.clip(backend.input_space.to_model(p.astype(np.float32)))


def default_size(backend: Backend, size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        if backend.input_shape is not None:
            return tuple(backend.input_shape[1:])  # type: ignore[return-value]
        return (227, 227)
    h, w = (size, size) if isinstance(size, int) else size
    if backend.input_shape is not None and (h, w) != tuple(backend.input_shape[1:]):
        raise ValueError(
            f"class_visualization: this model only takes {backend.input_shape[1:]} images, "
            f"size {(h, w)} requested"
        )
    return int(h), int(w)


def class_visualization(
    backend: Backend,
    class_idx: int,
    steps: int = 100,
    l2: float = 1e-3,
    lr: float = 25.0,
    blur_every: int = 10,
    blur_sigma: float = 0.5,
    jitter: int = 16,
    seed: int | None = 0,
    size: int | tuple[int, int] | None = None,
    x0: np.ndarray | None = None,
    progress: bool = True,
    callback: Callable[[int, np.ndarray, float], bool | None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Generate an image that the model scores highly for ``class_idx``.

    Inputs:
    - backend: a :class:`Backend`.
    - class_idx: the class (pre-softmax score is maximised).
    - steps: gradient-ascent steps (cs231n: 100+).
    - l2: weight of ``||z||^2`` on the standardised image (see the module docstring).
    - lr: step length in standardised units: each step moves the image by ``lr`` in L2 norm
      (cs231n's ``lr * g / ||g||``).
    - blur_every, blur_sigma: Gaussian blur (sigma in pixels) at steps 0, k, 2k, ...
    - jitter: maximum random shift in pixels per step.
    - seed: seeds the start image and the jitter.
    - size: (H, W) or int; default the model's fixed size, else 227.
    - x0: optional (1, C, H, W) start in model units (default noise around mid-grey).

    Returns:
    - x: (1, C, H, W) image in model units (``backend.input_space.to_pixels`` to display).
    - history: objective value per step.
    """
    rng = np.random.default_rng(seed)
    k = backend.num_classes
    if k is not None and not 0 <= int(class_idx) < k:
        raise ValueError(f"class_visualization: class index {class_idx} out of range [0, {k})")
    if x0 is None:
        x0 = random_image(backend, default_size(backend, size), rng)
    x0 = backend.check_input(np.asarray(x0))
    objective = ClassScore(int(class_idx)) - l2 * standardised_l2(backend)
    # With a uniform pixel scale the L2-normalised step in model units equals lr
    # standardised units; per-channel scales (torch preprocessing) use their mean.
    lr_model = lr * PIXEL_STD * float(np.mean(backend.input_space.pixel_scale()))
    r = render(
        backend,
        objective,
        InputParam(x0),
        steps,
        optimizer="normalized_sgd",
        optimizer_config={"learning_rate": lr_model, "norm": "l2"},
        transforms=[Jitter(jitter), Blur(blur_every, blur_sigma), Clip()],
        seed=rng,
        progress=progress,
        callback=callback,
        desc=f"class {class_idx}",
    )
    return r.x, r.history


__all__ = ["class_visualization", "random_image", "standardised_l2", "PIXEL_STD"]
