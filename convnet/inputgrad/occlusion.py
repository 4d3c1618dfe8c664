"""Occlusion sensitivity (Zeiler & Fergus 2014): how much a class score drops when a square
patch of the image is covered.

Every patch position gives one occluded copy of the image; the copies go through the model in
batches. A pixel's value is the mean score drop over the patches that cover it, so the map
has the image's size whatever the stride. Works on any :class:`~convnet.backend.Backend`
(only forward passes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convnet.backend import OUTPUT, Backend

ClassIdx = int | Sequence[int] | np.ndarray


def patch_positions(n: int, patch: int, stride: int) -> list[int]:
    """Start offsets along an axis of length n: every ``stride``, plus one flush with the end
    so the last rows/columns are covered too."""
    if patch < 1 or stride < 1:
        raise ValueError(f"occlusion: patch and stride must be >= 1, got {patch}, {stride}")
    if patch > n:
        raise ValueError(f"occlusion: patch {patch} is larger than the image side {n}")
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


def fill_value(backend: Backend, x: np.ndarray, fill: float | str) -> np.ndarray:
    """The occluder's colour in model units, shape (N, C, 1, 1).

    ``fill``: a pixel level 0..255 (grey patches, as Zeiler & Fergus) or ``"mean"`` (each
    image's mean colour).
    """
    space = backend.input_space
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"occlusion: fill must be a pixel level or 'mean', got {fill!r}")
        return x.mean(axis=(2, 3), keepdims=True).astype(x.dtype)
    if not 0.0 <= float(fill) <= 255.0:
        raise ValueError(f"occlusion: fill must be a pixel level in [0, 255], got {fill}")
    p = np.full((x.shape[0], x.shape[1], 1, 1), float(fill), dtype=x.dtype)
    return space.to_model(p)


def occlusion(
    backend: Backend,
    x: np.ndarray,
    class_idx: ClassIdx,
    patch: int = 16,
    stride: int = 8,
    fill: float | str = 127.5,
    batch_size: int = 32,
) -> np.ndarray:
    """Occlusion map: mean drop of the class score over the patches covering each pixel.

    Inputs:
    - backend, x (N, C, H, W) in model space, class_idx int or (N,) ints;
    - patch: side of the square occluder in pixels; stride: step between patches;
    - fill: occluder colour, a pixel level (default mid-grey 127.5) or ``"mean"``;
    - batch_size: occluded copies per forward pass.

    Returns (N, H, W) float64 in score units: positive where covering the pixel lowers the
    score (evidence for the class), negative where it raises it.
    """
    x = backend.check_input(x)
    n, _, h, w = x.shape
    cls = backend.check_class(class_idx, n)
    if batch_size < 1:
        raise ValueError(f"occlusion: batch_size must be >= 1, got {batch_size}")
    boxes = [(r, c) for r in patch_positions(h, patch, stride)
             for c in patch_positions(w, patch, stride)]  # fmt: skip
    colour = fill_value(backend, x, fill)
    base = backend.forward(x, [OUTPUT])[OUTPUT].astype(np.float64)[np.arange(n), cls]
    out = np.zeros((n, h, w), dtype=np.float64)
    count = np.zeros((h, w), dtype=np.float64)
    for r, c in boxes:
        count[r : r + patch, c : c + patch] += 1
    for i in range(n):
        for s in range(0, len(boxes), batch_size):
            chunk = boxes[s : s + batch_size]
            xs = np.repeat(x[i : i + 1], len(chunk), axis=0)
            for j, (r, c) in enumerate(chunk):
                xs[j, :, r : r + patch, c : c + patch] = colour[i]
            scores = backend.forward(xs, [OUTPUT])[OUTPUT].astype(np.float64)[:, cls[i]]
            for (r, c), sc in zip(chunk, scores, strict=True):
                out[i, r : r + patch, c : c + patch] += base[i] - sc
    return out / np.maximum(count, 1.0)


__all__ = ["occlusion", "patch_positions", "fill_value"]
