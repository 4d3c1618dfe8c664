"""Image transforms for the input-optimisation loop, and the NumPy image helpers they use.

A transform has three hooks, called by :func:`convnet.inputgrad.optimize.render` every step
(all arrays NCHW, model units):

* ``before(x, rng, step) -> (x', state)``: applied to the image the model sees (jitter);
* ``undo_grad(g, state) -> g'``: maps the gradient w.r.t. ``x'`` back onto ``x``;
* ``after(x, step, space) -> x``: applied to the image after the update (blur, clipping).

Undoing the jitter on the *gradient* rather than on the updated image keeps a stateful update
rule (Adam's moments) aligned with the image's pixels.

Transformation robustness (Olah et al., "Feature Visualization", Distill 2017, and Lucid's
``transform.standard_transforms``): every step the model sees the image padded, randomly
cropped, rescaled and rotated, so the optimum cannot hide in one pixel grid alignment.
:class:`Pad`, :class:`RandomCrop`, :class:`RandomScale` and :class:`RandomRotate` are linear in
the image (up to the constant of the padding), so ``undo_grad`` is the exact adjoint (the
transpose) of the map ``before`` applied: for the two resamplers, bilinear interpolation is a
sparse matrix ``A`` (four taps per output pixel) and the gradient goes back through ``A^T`` as
a scatter-add of the same taps. :func:`robustness_transforms` builds Lucid's default list.
"""

from __future__ import annotations

from collections.abc import Sequence
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


class Pad(Transform):
    """Constant padding by ``width`` pixels on each side (Lucid's ``pad``).

    Inputs:
    - width: pixels added on every side (>= 0).
    - value: the padding in model units: a scalar or one value per channel (C,) (e.g. mid
      grey, ``space.to_model`` of pixel 127.5; see :func:`robustness_transforms`).

    ``before`` maps (N, C, H, W) to (N, C, H + 2 width, W + 2 width); the gradient is the
    centre crop (the padding is a constant).
    """

    def __init__(self, width: int, value: float | Sequence[float] | np.ndarray = 0.0) -> None:
        if width < 0:
            raise ValueError(f"Pad: width must be >= 0, got {width}")
        self.width = int(width)
        self.value = np.asarray(value, np.float64).reshape(-1)

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        p = self.width
        if p == 0:
            return x, None
        n, c, h, w = x.shape
        if self.value.size not in (1, c):
            raise ValueError(f"Pad: value must be a scalar or {c} values, got {self.value.size}")
        out = np.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
        out[...] = self.value.reshape(1, -1, 1, 1).astype(x.dtype)
        out[:, :, p : p + h, p : p + w] = x
        return out, None

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        p = self.width
        return g if p == 0 else np.ascontiguousarray(g[:, :, p:-p, p:-p])

    def __repr__(self) -> str:
        return f"Pad({self.width})"


class RandomCrop(Transform):
    """A random crop ``d`` pixels smaller in each direction (Lucid's ``jitter(d)``).

    The offset is drawn per step from ``0..d`` in y and x. ``before`` maps (N, C, H, W) to
    (N, C, H - d, W - d); the gradient is zero-padded back into place (the adjoint of a crop).
    """

    def __init__(self, d: int) -> None:
        if d < 0:
            raise ValueError(f"RandomCrop: d must be >= 0, got {d}")
        self.d = int(d)

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        d = self.d
        h, w = x.shape[2:]
        if d == 0:
            return x, None
        if d >= min(h, w):
            raise ValueError(f"RandomCrop: d={d} leaves nothing of a {h}x{w} image")
        oy, ox = (int(v) for v in rng.integers(0, d + 1, size=2))
        return np.ascontiguousarray(x[:, :, oy : oy + h - d, ox : ox + w - d]), (oy, ox, h, w)

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        if state is None:
            return g
        oy, ox, h, w = state
        out = np.zeros(g.shape[:2] + (h, w), dtype=g.dtype)
        out[:, :, oy : oy + g.shape[2], ox : ox + g.shape[3]] = g
        return out

    def __repr__(self) -> str:
        return f"RandomCrop({self.d})"


class Resampling:
    """A bilinear resampling of (H, W) images onto an (Ho, Wo) grid, and its adjoint.

    Output pixel (i, j), at offset ``o = (i - (Ho-1)/2, j - (Wo-1)/2)`` from the output's
    centre, samples the input at offset ``matrix @ o`` from the input's centre. Source points
    outside the image are clamped to its border (so no fill value is needed and the map stays
    linear). The map is a sparse (Ho Wo, H W) matrix with four taps per row:

    - ``apply(x)``: x (N, C, H, W) -> (N, C, Ho, Wo), x's dtype;
    - ``adjoint(g)``: g (N, C, Ho, Wo) -> (N, C, H, W), the transpose applied to g (each
      output pixel's gradient goes back onto its four taps with the same weights), g's dtype.

    Inputs:
    - in_size: (H, W); out_size: (Ho, Wo); matrix: (2, 2) in (y, x) order.
    """

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int],
                 matrix: np.ndarray) -> None:  # fmt: skip
        hi, wi = (int(v) for v in in_size)
        ho, wo = (int(v) for v in out_size)
        if min(hi, wi, ho, wo) < 1:
            raise ValueError(f"Resampling: sizes must be positive, got {in_size} -> {out_size}")
        m = np.asarray(matrix, np.float64)
        if m.shape != (2, 2):
            raise ValueError(f"Resampling: matrix must be (2, 2), got {m.shape}")
        self.in_size, self.out_size = (hi, wi), (ho, wo)
        oy, ox = np.meshgrid(np.arange(ho) - (ho - 1) / 2, np.arange(wo) - (wo - 1) / 2,
                             indexing="ij")  # fmt: skip
        sy = np.clip(m[0, 0] * oy + m[0, 1] * ox + (hi - 1) / 2, 0, hi - 1).ravel()
        sx = np.clip(m[1, 0] * oy + m[1, 1] * ox + (wi - 1) / 2, 0, wi - 1).ravel()
        y0 = np.floor(sy).astype(np.int64)
        x0 = np.floor(sx).astype(np.int64)
        y1, x1 = np.minimum(y0 + 1, hi - 1), np.minimum(x0 + 1, wi - 1)
        fy, fx = sy - y0, sx - x0
        # taps (4, Ho*Wo): flat input indices and their weights (each column sums to 1).
        self.index = np.stack([y0 * wi + x0, y0 * wi + x1, y1 * wi + x0, y1 * wi + x1])
        self.weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
        self._transposed: tuple[np.ndarray, ...] | None = None

    def _check(self, a: np.ndarray, size: tuple[int, int], what: str) -> None:
        if a.ndim != 4 or tuple(a.shape[2:]) != size:
            raise ValueError(f"Resampling.{what}: expected (N, C, {size[0]}, {size[1]}), "
                             f"got {a.shape}")  # fmt: skip

    def apply(self, x: np.ndarray) -> np.ndarray:
        self._check(x, self.in_size, "apply")
        n, c = x.shape[:2]
        xf = x.reshape(n * c, -1)
        w = self.weight.astype(x.dtype)
        out = xf[:, self.index[0]] * w[0]
        for k in range(1, 4):
            out += xf[:, self.index[k]] * w[k]
        return out.reshape(n, c, *self.out_size)

    def _transpose_taps(self) -> tuple[np.ndarray, ...]:
        # The taps sorted by input pixel: each input pixel's gradient is then one contiguous
        # run of (output pixel, weight) pairs, summed with reduceat for all N*C maps at once.
        if self._transposed is None:
            idx = self.index.ravel()
            cols = np.tile(np.arange(self.index.shape[1]), 4)
            order = np.argsort(idx, kind="stable")
            idx, cols, w = idx[order], cols[order], self.weight.ravel()[order]
            starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
            self._transposed = (cols, w, starts, idx[starts])
        return self._transposed

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        self._check(g, self.out_size, "adjoint")
        n, c = g.shape[:2]
        cols, w, starts, targets = self._transpose_taps()
        gf = g.reshape(n * c, -1)
        sums = np.add.reduceat(gf[:, cols] * w.astype(g.dtype), starts, axis=1)
        out = np.zeros((n * c, self.in_size[0] * self.in_size[1]), dtype=g.dtype)
        out[:, targets] = sums
        return out.reshape(n, c, *self.in_size)


def scale_resampling(in_size: tuple[int, int], scale: float) -> Resampling:
    """Bilinear rescaling by ``scale``: output size ``round(scale * H)`` x ``round(scale * W)``.

    Half-pixel centres, like :func:`resize_bilinear` (the same image for the same sizes).
    """
    h, w = (int(v) for v in in_size)
    return resize_resampling((h, w), (max(1, int(round(scale * h))), max(1, int(round(scale * w)))))


def resize_resampling(in_size: tuple[int, int], out_size: tuple[int, int]) -> Resampling:
    """Bilinear resize from ``in_size`` to ``out_size`` (half-pixel centres)."""
    (h, w), (ho, wo) = in_size, out_size
    return Resampling((h, w), (ho, wo), np.diag([h / ho, w / wo]))


def rotation_resampling(size: tuple[int, int], degrees: float) -> Resampling:
    """Bilinear rotation about the image centre by ``degrees``, counter-clockwise as displayed
    (rows pointing down); the size is kept and the corners repeat the border."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    # Output offset (y, x) samples the input at the offset rotated back by the angle.
    return Resampling(size, size, np.array([[c, s], [-s, c]]))


class RandomScale(Transform):
    """Rescale the image by a factor drawn per step from ``scales`` (Lucid's ``random_scale``).

    ``before`` maps (N, C, H, W) to (N, C, round(s H), round(s W)) by bilinear interpolation;
    ``undo_grad`` applies the interpolation's transpose (:class:`Resampling`).
    """

    def __init__(self, scales: Sequence[float]) -> None:
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"RandomScale: scales must be positive numbers, got {scales!r}")

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        s = self.scales[int(rng.integers(len(self.scales)))]
        r = scale_resampling(x.shape[2:], s)
        if r.out_size == r.in_size:  # the same grid: the identity
            return x, None
        return r.apply(x), r

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        return g if state is None else state.adjoint(g)

    def __repr__(self) -> str:
        return f"RandomScale({min(self.scales):g}..{max(self.scales):g})"


class RandomRotate(Transform):
    """Rotate the image by an angle in degrees drawn per step from ``angles`` (Lucid's
    ``random_rotate``); the size is kept. Exact adjoint as for :class:`RandomScale`."""

    def __init__(self, angles: Sequence[float]) -> None:
        self.angles = tuple(float(a) for a in angles)
        if not self.angles:
            raise ValueError("RandomRotate: angles must not be empty")

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        a = self.angles[int(rng.integers(len(self.angles)))]
        if a == 0.0:
            return x, None
        r = rotation_resampling(x.shape[2:], a)
        return r.apply(x), r

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        return g if state is None else state.adjoint(g)

    def __repr__(self) -> str:
        return f"RandomRotate({min(self.angles):g}..{max(self.angles):g})"


class Resize(Transform):
    """Bilinear resize to a fixed (H, W), e.g. the input size of a model that takes only one
    (after transforms that change the size). Exact adjoint as for :class:`RandomScale`."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"Resize: size must be positive, got {size}")

    def before(self, x: np.ndarray, rng: np.random.Generator, step: int) -> tuple[np.ndarray, Any]:
        if tuple(x.shape[2:]) == self.size:
            return x, None
        r = resize_resampling(x.shape[2:], self.size)
        return r.apply(x), r

    def undo_grad(self, g: np.ndarray, state: Any) -> np.ndarray:
        return g if state is None else state.adjoint(g)

    def __repr__(self) -> str:
        return f"Resize({self.size[0]}, {self.size[1]})"


# Lucid's standard_transforms: scales 0.9 .. 1.1 in steps of 0.02, angles -10 .. 10 degrees
# with 0 given five more draws.
ROBUST_SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
ROBUST_ANGLES = tuple(float(a) for a in range(-10, 11)) + (0.0,) * 5


def robustness_transforms(
    space: InputSpace | None = None,
    pad: int = 12,
    jitter: int = 8,
    scales: Sequence[float] = ROBUST_SCALES,
    angles: Sequence[float] = ROBUST_ANGLES,
    jitter_after: int = 4,
    output_size: tuple[int, int] | None = None,
) -> list[Transform]:
    """Lucid's transformation robustness: pad, jitter, random scale, random rotation, jitter.

    ``[Pad(pad, grey), RandomCrop(jitter), RandomScale(scales), RandomRotate(angles),
    RandomCrop(jitter_after)]`` with the padding mid grey (pixel 127.5) in ``space``'s model
    units (0 if ``space`` is None). Each part is skipped when its size is 0 or its list empty.
    ``output_size`` (H, W) appends a :class:`Resize` to it (for models of one input size).
    Returns the list of transforms for :func:`convnet.inputgrad.optimize.render`.
    """
    grey: Any = 0.0
    if space is not None:
        probe = np.full((1, space.channels, 1, 1), 127.5, np.float32)
        grey = np.asarray(space.to_model(probe), np.float64)[0, :, 0, 0]
    out: list[Transform] = []
    if pad:
        out.append(Pad(pad, grey))
    if jitter:
        out.append(RandomCrop(jitter))
    if len(scales):
        out.append(RandomScale(scales))
    if len(angles):
        out.append(RandomRotate(angles))
    if jitter_after:
        out.append(RandomCrop(jitter_after))
    if output_size is not None:
        out.append(Resize(output_size))
    return out


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
    "Pad",
    "RandomCrop",
    "RandomScale",
    "RandomRotate",
    "Resampling",
    "Resize",
    "resize_resampling",
    "ROBUST_ANGLES",
    "ROBUST_SCALES",
    "robustness_transforms",
    "rotation_resampling",
    "scale_resampling",
    "gaussian_kernel1d",
    "gaussian_blur",
    "resize_bilinear",
    "tile_bounds",
]
