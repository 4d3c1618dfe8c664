"""Pictures of conv filters and image batches as one grid array, and PNGs of them.

The grid functions return plain arrays (no matplotlib), so they are easy to test and to
save with :func:`convnet.data.save_image`; the ``plot_*`` functions draw them with a title
through matplotlib's object API on the Agg canvas (no display, no global pyplot state) and
write the PNG atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from convnet._io import atomic_save_figure

__all__ = ["visualize_grid", "image_grid", "plot_filters", "save_figure"]


def _check_conv_weights(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 4 or min(w.shape) < 1:
        raise ValueError(
            f"visualize_grid: w must be conv weights (F, C, HH, WW), got shape {w.shape}"
        )
    if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
        raise ValueError(f"visualize_grid: w must be real numbers, got dtype {w.dtype}")
    return w.astype(np.float64)


def _rescale(x: np.ndarray, ubound: float) -> np.ndarray:
    """Map x linearly onto [0, ubound]; a constant x becomes mid-grey (no direction to show)."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("visualize_grid: weights contain NaN or Inf")
    if hi - lo < 1e-12 * max(1.0, abs(hi), abs(lo)):
        return np.full_like(x, ubound / 2.0)
    # divide first: (hi - lo) / (hi - lo) is exactly 1, so the top lands exactly on ubound
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0) * ubound


def visualize_grid(
    w: np.ndarray,
    ubound: float = 255.0,
    padding: int = 1,
    normalize: str = "filter",
    ncols: int | None = None,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Lay out conv weights as one picture (cs231n ``visualize_grid`` for (F, C, HH, WW)).

    How the four axes of ``w`` (F, C, HH, WW) appear:

    - HH, WW: each filter's spatial kernel is drawn as an HH x WW tile, one weight per
      pixel, row ``i`` of the kernel is pixel row ``i`` of the tile (no resampling).
    - F: the F tiles are placed row-major in a near-square grid of ``ncols`` columns
      (default ``ceil(sqrt(F))``) and ``ceil(F / ncols)`` rows; filter ``f`` is at grid row
      ``f // ncols``, column ``f % ncols``; unused cells stay ``pad_value``.
    - C == 3: the three input channels are the tile's red, green and blue (the network sees
      RGB images, so a filter tuned to red edges looks red). Result (H, W, 3).
    - C == 1: a grey tile. Result (H, W).
    - any other C (e.g. a deeper layer with 16 input channels): one grey tile per
      (filter, channel), filter ``f`` being grid *row* ``f`` and channel ``c`` grid
      *column* ``c`` (``ncols`` is ignored), so each row shows one filter across all the
      channels it reads. Result (H, W).

    Normalisation (``normalize``): ``'filter'`` (default) maps each filter's weights, all its
    channels together, linearly onto [0, ubound], so every filter uses the full range and
    the relative strength of its channels is kept; ``'global'`` uses one min/max for all
    filters, showing which filters have larger weights. A constant filter is mid-grey.

    Padding: ``padding`` pixels of ``pad_value`` between tiles (none around the border).

    Inputs:
    - w: (F, C, HH, WW) real array.
    - ubound: the top of the output range.
    - padding: pixels between tiles (>= 0).
    - normalize: 'filter' or 'global'.
    - ncols: tiles per grid row for C in (1, 3).
    - pad_value: value of the padding and empty cells.

    Returns: float64 grid, (G_H, G_W, 3) for C == 3, else (G_H, G_W), values in
    [0, ubound] (padding ``pad_value``), where G_H = rows * (HH + padding) - padding and
    G_W = cols * (WW + padding) - padding.
    """
    w = _check_conv_weights(w)
    if normalize not in ("filter", "global"):
        raise ValueError(
            f"visualize_grid: normalize must be 'filter' or 'global', got {normalize!r}"
        )
    if int(padding) != padding or padding < 0:
        raise ValueError(f"visualize_grid: padding must be an int >= 0, got {padding!r}")
    F, C, HH, WW = w.shape
    if normalize == "filter":
        w = np.stack([_rescale(f, ubound) for f in w])
    else:
        w = _rescale(w, ubound)
    if C == 3:
        tiles = w.transpose(0, 2, 3, 1)  # (F, HH, WW, 3)
        cols = ncols or math.ceil(math.sqrt(F))
    elif C == 1:
        tiles = w[:, 0]
        cols = ncols or math.ceil(math.sqrt(F))
    else:
        tiles = w.reshape(F * C, HH, WW)  # filter-major: row f holds its C channels
        cols = C
    if int(cols) != cols or cols < 1:
        raise ValueError(f"visualize_grid: ncols must be a positive int, got {ncols!r}")
    return _tile(tiles, int(cols), int(padding), pad_value)


def _tile(tiles: np.ndarray, cols: int, padding: int, pad_value: float) -> np.ndarray:
    """Place (N, h, w[, c]) tiles row-major into a grid with ``cols`` tiles per row."""
    n, h, w = tiles.shape[:3]
    rows = -(-n // cols)
    shape = (rows * (h + padding) - padding, cols * (w + padding) - padding) + tiles.shape[3:]
    grid = np.full(shape, pad_value, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (h + padding), c * (w + padding)
        grid[y : y + h, x : x + w] = tiles[i]
    return grid


def image_grid(
    images: np.ndarray,
    nrow: int | None = None,
    padding: int = 1,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Tile a batch of images into one image (values unchanged).

    Inputs:
    - images: NCHW (N, C, H, W) with C == 1 or 3, or (N, H, W) grey.
    - nrow: images per grid row (as in torchvision's ``make_grid``); default
      ``ceil(sqrt(N))``. The grid has ``ceil(N / nrow)`` rows, filled row-major.
    - padding, pad_value: pixels of ``pad_value`` between images.

    Returns: (G_H, G_W, 3) for colour or (G_H, G_W) for grey, in the input's value range,
    with G_H = rows * (H + padding) - padding, G_W = nrow * (W + padding) - padding. Save it
    with :func:`convnet.data.save_image`.
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        tiles = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
    elif x.ndim == 3:
        tiles = x
    else:
        raise ValueError(
            f"image_grid: images must be (N, C, H, W) with C in (1, 3) or (N, H, W), got {x.shape}"
        )
    n = tiles.shape[0]
    if n == 0:
        raise ValueError("image_grid: no images")
    cols = math.ceil(math.sqrt(n)) if nrow is None else nrow
    if int(cols) != cols or cols < 1:
        raise ValueError(f"image_grid: nrow must be a positive int, got {nrow!r}")
    if int(padding) != padding or padding < 0:
        raise ValueError(f"image_grid: padding must be an int >= 0, got {padding!r}")
    return _tile(tiles.astype(np.float64), int(cols), int(padding), pad_value)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib Figure as PNG atomically (temp file in the same folder + rename)."""
    return atomic_save_figure(fig, path, format="png", dpi=dpi, bbox_inches="tight")


def plot_filters(
    w: np.ndarray,
    path: str | os.PathLike,
    title: str | None = None,
    scale: int = 8,
    **grid_kwargs,
) -> Path:
    """Save a picture of conv weights (F, C, HH, WW) as PNG (layout: :func:`visualize_grid`).

    Inputs:
    - w: (F, C, HH, WW) weights, e.g. ``model.params['conv1/W']``.
    - path: PNG to write (atomically).
    - title: optional title; default ``"F filters, C x HH x WW"``.
    - scale: screen pixels per weight (nearest-neighbour, so weights stay sharp squares).
    - grid_kwargs: passed to :func:`visualize_grid` (normalize, padding, ncols, ...).

    Returns: the path written.
    """
    from matplotlib.figure import Figure

    F, C, HH, WW = _check_conv_weights(w).shape
    grid = visualize_grid(w, ubound=1.0, **grid_kwargs)
    h, wd = grid.shape[:2]
    fig = Figure(figsize=(max(2.0, wd * scale / 100), max(2.0, h * scale / 100) + 0.4))
    ax = fig.add_subplot()
    ax.imshow(
        grid, cmap=None if grid.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_axis_off()
    ax.set_title(title if title is not None else f"{F} filters, {C} x {HH} x {WW}")
    return save_figure(fig, path)
