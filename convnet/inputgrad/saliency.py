"""Saliency maps (Simonyan, Vedaldi & Zisserman 2014) and SmoothGrad (Smilkov et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convnet.backend import Backend
from convnet.inputgrad.objectives import ClassScore


def input_gradient_pixels(
    backend: Backend, x: np.ndarray, class_idx: int | Sequence[int] | np.ndarray
) -> np.ndarray:
    """Gradient of the class logit w.r.t. the input **pixels** (RGB order), (N, C, H, W).

    The chain rule through the input space: d/dpixel = d/dx * pixel_scale, and the channels are
    put back into RGB order so maps from BGR and RGB models compare.
    """
    x = backend.check_input(x)
    cls = backend.check_class(class_idx, x.shape[0])
    _, g = backend.value_and_grad(ClassScore(cls), x)
    space = backend.input_space
    g = g * space.pixel_scale_col(g.dtype)
    return g[:, ::-1] if space.channel_order == "BGR" else g


def saliency_map(
    backend: Backend,
    x: np.ndarray,
    class_idx: int | Sequence[int] | np.ndarray,
    smoothgrad: int = 0,
    noise: float = 0.15,
    seed: int | np.random.Generator | None = 0,
    batch_size: int = 8,
) -> np.ndarray:
    """Saliency: max over channels of |d score_class / d pixel|.

    Inputs:
    - backend: a :class:`Backend`.
    - x: (N, C, H, W) images in model units.
    - class_idx: int or (N,) ints: the class whose (pre-softmax) score is explained.
    - smoothgrad: if > 0, average the gradient over this many copies of x with Gaussian
      noise of std ``noise * (pixel range)`` (SmoothGrad) before taking |.|.
    - noise: noise level as a fraction of the 0..255 range (0.10-0.20 in the paper).
    - seed: noise seed.
    - batch_size: noisy copies per forward pass (bounds memory).

    Returns: (N, H, W) non-negative float32 saliency in score units per pixel level.
    """
    x = backend.check_input(x)
    n = x.shape[0]
    cls = backend.check_class(class_idx, n)
    if smoothgrad < 0:
        raise ValueError(f"saliency_map: smoothgrad must be >= 0, got {smoothgrad}")
    if smoothgrad == 0:
        g = input_gradient_pixels(backend, x, cls)
        return np.abs(g).max(axis=1).astype(np.float32)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sigma = noise * 255.0 * backend.input_space.pixel_scale_col(x.dtype)
    total = np.zeros(x.shape, dtype=np.float64)
    for i in range(n):
        done = 0
        while done < smoothgrad:
            k = min(batch_size, smoothgrad - done)
            xs = x[i : i + 1] + sigma * rng.standard_normal((k, *x.shape[1:])).astype(x.dtype)
            g = input_gradient_pixels(backend, xs, np.full(k, cls[i]))
            total[i] += g.sum(axis=0)
            done += k
    return np.abs(total / smoothgrad).max(axis=1).astype(np.float32)


__all__ = ["saliency_map", "input_gradient_pixels"]
