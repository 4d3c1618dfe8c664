"""Image transforms for the input-optimisation loop, and the NumPy image helpers they use.

A transform has three hooks, called by :func:`convnet.inputgrad.optimize.optimize_input`
every step (all arrays NCHW, model units):

* ``before(x, rng, step) -> (x', state)``: applied to the image the model sees (jitter);
* ``undo_grad(g, state) -> g'``: maps the gradient w.r.t. ``x'`` back onto ``x``;
* ``after(x, step, space) -> x``: applied to the image after the update (blur, clipping).

Undoing the jitter on the *gradient* rather than on the updated image keeps a stateful update
rule (Adam's moments) aligned with the image's pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convnet.backend import InputSpace


class Transform:
    """Identity transform; subclasses override the hooks they need."""

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        return x, None

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        return g

    def after(self, x: np.ndarray, step: int, space: InputSpace) -> np.ndarray:
        return x


class Jitter(Transform):
    """Random circular shift by up to ``max_shift`` pixels in each direction (cs231n jitter).

    The shift is drawn per step from ``[-max_shift, max_shift]``; the gradient is rolled back.
    """

    def __init__(self, max_shift: int) -> None:
        if max_shift < 0:
            raise ValueError(f"Jitter: max_shift must be >= 0, got {max_shift}")
        self.max_shift = int(max_shift)

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        j = self.max_shift
        if j == 0:
            return x, (0, 0)
        dy, dx = (int(v) for v in rng.integers(-j, j + 1, size=2))
        return np.roll(x, (dy, dx), axis=(2, 3)), (dy, dx)

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        dy, dx = state
        return np.roll(g, (-dy, -dx), axis=(2, 3)) if (dy or dx) else g

    def __repr__(self) -> str:
        return f"Jitter({self.max_shift})"


class Blur(Transform):
    """Gaussian blur of the image every ``every`` steps (at steps 0, every, 2*every, ...)."""

    def __init__(self, every: int = 10, sigma: float = 0.5) -> None:
        if every < 1 or sigma < 0:
            raise ValueError(f"Blur: need every >= 1 and sigma >= 0, got {every}, {sigma}")
        self.every, self.sigma = int(every), float(sigma)

    def after(self, x: np.ndarray, step: int, space: InputSpace) -> np.ndarray:
        if self.sigma > 0 and step % self.every == 0:
            return gaussian_blur(x, self.sigma)
        return x

    def __repr__(self) -> str:
        return f"Blur(every={self.every}, sigma={self.sigma:g})"


class Clip(Transform):
    """Clip to the input space's valid pixel range (or ``[lo, hi]`` in pixel units)."""

    def __init__(self, lo_pixels: float = 0.0, hi_pixels: float = 255.0) -> None:
        self.lo, self.hi = float(lo_pixels), float(hi_pixels)

    def after(self, x: np.ndarray, step: int, space: InputSpace) -> np.ndarray:
        if self.lo == 0.0 and self.hi == 255.0:
            return space.clip(x)
        p = np.clip(space.to_pixels(x), self.lo, self.hi)
        return space.to_model(p.astype(x.dtype))

    def __repr__(self) -> str:
        return f"Clip({self.lo:g}, {self.hi:g})"


class ClipDelta(Transform):
    """Project onto the L-inf ball ``|x - center| <= eps`` (model units, per channel)."""

    def __init__(self, center: np.ndarray, eps: np.ndarray) -> None:
        self.center, self.eps = center, eps

    def after(self, x: np.ndarray, step: int, space: InputSpace) -> np.ndarray:
        return np.clip(x, self.center - self.eps, self.center + self.eps).astype(x.dtype)


# ----------------------------------------------------------------- image helpers
def gaussian_kernel1d(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian, radius ceil(3 sigma), shape (2r+1,)."""
    r = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of each channel of x (N, C, H, W), reflect padding.

    Returns an array of x's shape and dtype.
    """
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma).astype(x.dtype)
    r = k.size // 2
    out = x
    for axis in (2, 3):
        if out.shape[axis] <= r:  # reflect padding needs the map to be wider than the radius
            mode = "edge"
        else:
            mode = "reflect"
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode=mode)
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            acc += w * np.take(p, np.arange(i, i + n), axis=axis)
        out = acc
    return out


def _bilinear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Half-pixel centres (PIL without antialiasing, TF resize with half_pixel_centers).
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0)


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of x (N, C, H, W) to (N, C, size[0], size[1]), same dtype."""
    h, w = int(size[0]), int(size[1])
    if (h, w) == x.shape[2:]:
        return x.copy()
    if h < 1 or w < 1:
        raise ValueError(f"resize_bilinear: target size must be positive, got {size}")
    y0, y1, fy = _bilinear_weights(x.shape[2], h)
    x0, x1, fx = _bilinear_weights(x.shape[3], w)
    fy = fy.astype(x.dtype)[:, None]
    fx = fx.astype(x.dtype)[None, :]
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bot = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(x.dtype)


def tile_bounds(n: int, tile_size: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into ``max(1, round(n / tile_size))`` near-equal tiles.

    Near-equal rather than fixed-size tiles so no sliver is too small for a deep model.
    """
    k = max(1, int(round(n / tile_size)))
    b = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(b[i]), int(b[i + 1])) for i in range(k)]


__all__ = [
    "Transform",
    "Jitter",
    "Blur",
    "Clip",
    "ClipDelta",
    "gaussian_kernel1d",
    "gaussian_blur",
    "resize_bilinear",
    "tile_bounds",
]
