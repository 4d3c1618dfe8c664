"""The kit's ``vis_utils.visualize_grid`` on :func:`convnet.viz.grid.visualize_grid`.

The kit takes images in (N, H, W, C) order (e.g. conv weights after
``W.transpose(0, 2, 3, 1)``); convnet's native function takes (F, C, HH, WW) weights.
"""

from __future__ import annotations

import math

import numpy as np

from convnet.viz.grid import visualize_grid as _native_grid

__all__ = ["visualize_grid"]


def visualize_grid(Xs: np.ndarray, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """Tile N images into one square grid, each image rescaled to [0, ubound].

    Inputs:
    - Xs: (N, H, W, C) with C == 1 or C == 3.
    - ubound: the top of the output range.
    - padding: pixels of 0 between tiles.

    Returns (G, G', C) float64 with G = ceil(sqrt(N)) * (H + padding) - padding (likewise
    G' with W): ceil(sqrt(N)) tiles per row and per column, filled row-major, cells without
    an image left 0. An image whose values are all equal is drawn mid-grey.

    Raises ValueError unless Xs is 4-D with 1 or 3 channels LAST: conv weights (F, C, HH, WW)
    must be transposed first, ``visualize_grid(W.transpose(0, 2, 3, 1))``.
    """
    x = np.asarray(Xs)
    if x.ndim != 4 or x.shape[3] not in (1, 3) or min(x.shape) < 1:
        hint = (
            "; it looks like (N, C, H, W): pass Xs.transpose(0, 2, 3, 1)"
            if x.ndim == 4 and x.shape[1] in (1, 3)
            else ""
        )
        raise ValueError(
            f"visualize_grid: Xs must be images (N, H, W, C) with C == 1 or 3, got shape "
            f"{x.shape}{hint}"
        )
    N, H, W, C = x.shape
    side = math.ceil(math.sqrt(N))
    grid = _native_grid(x.transpose(0, 3, 1, 2), ubound=ubound, padding=padding,
                        normalize="filter", ncols=side, pad_value=0.0)
    if grid.ndim == 2:
        grid = grid[:, :, None]
    # convnet stops after the last used row; the kit's grid is always side x side tiles
    full_h = side * (H + padding) - padding
    out = np.zeros((full_h, grid.shape[1], C), dtype=np.float64)
    out[: grid.shape[0]] = grid
    return out
