"""Pictures of an autoencoder's latent space.

Every function takes plain arrays (or a ``decode`` callable) so that it works for any of the
autoencoders in :mod:`convnet.models.autoencoder` and writes one PNG atomically.

* :func:`latent_scatter` -- the test set's 2-D codes coloured by digit, with a colour bar;
* :func:`code_dims_scatter` -- two chosen dimensions of a higher-dimensional code;
* :func:`reconstruction_grid` -- originals above their reconstructions;
* :func:`manifold_grid` -- a 2-D grid of latent points decoded into images, on a linear grid
  over ``[-r, r]`` or on Normal quantiles (the VAE's prior);
* :func:`interpolation_strip` -- the decoded straight line between two codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import numpy as np

from convnet._io import atomic_save_figure


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically, then close it."""
    try:
        return atomic_save_figure(fig, path, format="png", dpi=100, bbox_inches="tight")
    finally:
        _figure().close(fig)


def _as_images(x: np.ndarray) -> np.ndarray:
    """(N, 1, H, W), (N, H, W) or (N, H*W) square images -> (N, H, W)."""
    x = np.asarray(x)
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ValueError(f"expected grey images (N, 1, H, W), got {x.shape}")
        return x[:, 0]
    if x.ndim == 3:
        return x
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"cannot view {x.shape[1]} features as a square image")
        return x.reshape(-1, side, side)
    raise ValueError(f"expected images (N, 1, H, W), (N, H, W) or (N, H*W), got {x.shape}")


def tile_images(images: np.ndarray, nrow: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile ``images`` (N, H, W) into one (rows*(H+pad)-pad, nrow*(W+pad)-pad) array, row-major."""
    images = _as_images(images)
    n, h, w = images.shape
    rows = -(-n // nrow)
    out = np.full((rows * (h + pad) - pad, nrow * (w + pad) - pad), fill, dtype=np.float64)
    for i in range(n):
        r, c = divmod(i, nrow)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return out


def latent_scatter(
    z: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str = "latent space"
) -> Path:
    """Scatter the 2-D codes ``z`` (N, 2) coloured by ``labels`` (N,), with a colour bar."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter: z must be (N, 2), got {z.shape}")
    return code_dims_scatter(z, labels, path, dims=(0, 1), title=title)


def code_dims_scatter(
    codes: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    dims: tuple[int, int] = (0, 1),
    title: str | None = None,
) -> Path:
    """Scatter dimensions ``dims`` of codes (N, D) coloured by digit (e.g. two of a 100-d code)."""
    codes = np.asarray(codes)
    labels = np.asarray(labels)
    if codes.ndim != 2 or len(codes) != len(labels):
        raise ValueError(
            f"code_dims_scatter: codes must be (N, D) with N == len(labels), "
            f"got {codes.shape} and {labels.shape}"
        )
    i, j = dims
    if not (0 <= i < codes.shape[1] and 0 <= j < codes.shape[1]):
        raise ValueError(f"code_dims_scatter: dims {dims} out of range for D={codes.shape[1]}")
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sc = ax.scatter(codes[:, i], codes[:, j], c=labels, cmap="jet", s=3, alpha=0.8)
    fig.colorbar(sc, ax=ax, label="digit", ticks=range(int(labels.max()) + 1))
    ax.set_xlabel(f"z[{i}]")
    ax.set_ylabel(f"z[{j}]")
    ax.set_title(title or f"code dimensions {i} and {j}")
    return _save(fig, path)


def reconstruction_grid(
    originals: np.ndarray, reconstructions: np.ndarray, path: str | os.PathLike, title: str = ""
) -> Path:
    """Originals (top row) above their reconstructions (bottom row); both (N, 1, H, W)."""
    a, b = _as_images(originals), _as_images(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"reconstruction_grid: shapes differ, {a.shape} vs {b.shape}")
    grid = tile_images(np.concatenate([a, b]), nrow=len(a))
    plt = _figure()
    fig, ax = plt.subplots(figsize=(max(4, len(a) * 0.6), 1.6))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title or "top: original, bottom: reconstruction")
    return _save(fig, path)


def latent_grid(n: int, radius: float = 3.0, quantiles: bool = False) -> np.ndarray:
    """Latent points of an ``n`` x ``n`` grid, shape (n*n, 2), row-major from top-left.

    ``quantiles=False``: a linear grid over ``[-radius, radius]``. ``quantiles=True``: the grid
    of standard Normal quantiles at ``(i + 0.5) / n``, so that each point stands for an equal
    share of the VAE prior's mass.
    """
    if n < 1:
        raise ValueError(f"latent_grid: n must be >= 1, got {n}")
    if quantiles:
        axis = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
    else:
        axis = np.linspace(-radius, radius, n)
    # Rows run from high z[1] (top) to low, as in a plot with the y axis pointing up.
    zy, zx = np.meshgrid(axis[::-1], axis, indexing="ij")
    return np.stack([zx.ravel(), zy.ravel()], axis=1)


def manifold_grid(
    decode: Callable[[np.ndarray], np.ndarray],
    path: str | os.PathLike,
    n: int = 15,
    radius: float = 3.0,
    quantiles: bool = False,
    title: str | None = None,
) -> tuple[Path, np.ndarray]:
    """Decode an ``n`` x ``n`` grid of 2-D latent points and tile the digits into one picture.

    ``decode`` maps codes (M, 2) to images (M, 1, H, W) in [0, 1]. Returns the path and the
    tiled array (so tests can check that it holds digits, not noise).
    """
    z = latent_grid(n, radius, quantiles)
    images = _as_images(decode(z.astype(np.float32)))
    grid = tile_images(images, nrow=n, pad=0)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    what = "Normal quantiles" if quantiles else f"linear grid over [-{radius:g}, {radius:g}]"
    ax.set_title(title or f"decoded latent space ({what})")
    return _save(fig, path), grid


def interpolation_strip(
    decode: Callable[[np.ndarray], np.ndarray],
    z0: np.ndarray,
    z1: np.ndarray,
    path: str | os.PathLike,
    steps: int = 10,
) -> Path:
    """Decode ``steps`` points on the straight line from code ``z0`` to ``z1`` (both (D,))."""
    z0, z1 = np.ravel(z0), np.ravel(z1)
    if z0.shape != z1.shape:
        raise ValueError(f"interpolation_strip: z0 {z0.shape} and z1 {z1.shape} differ")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    images = _as_images(decode(((1 - t) * z0 + t * z1).astype(np.float32)))
    plt = _figure()
    fig, ax = plt.subplots(figsize=(steps * 0.8, 1.2))
    ax.imshow(tile_images(images, nrow=steps), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    return _save(fig, path)
