"""Image parameterisations: what the input-optimisation loop actually optimises.

A parameterisation holds the optimisation variable ``params`` and maps it to the model input
(through a backend's :class:`~convnet.backend.InputSpace`), carries the input gradient back
to ``params``, and keeps ``params`` valid after each update. The loop
(:func:`convnet.inputgrad.optimize.render`) sees only this protocol::

    x = param.to_input(space)            # model input (N, C, H, W)
    dparams = param.grad(space, dx)      # d objective / d params from d objective / d x
    param.after(step, space, transforms) # projection after the update (clip, blur)
    param.bounds                         # (lo, hi) box on params for L-BFGS-B, or None
    param.restart(space, x)              # the same kind, started from x (octaves)

* ``InputParam``: the model input itself (class visualisation, DeepDream, attacks); the
  transforms' ``after`` hooks (blur, clipping) act on it directly.
* ``PixelParam``: the RGB pixels, rescaled linearly to ``value_range`` (default [-1, 1]:
  half-range units ``v = pixels / 127.5 - 1``; style transfer uses [0, 1]). For
  InceptionV3/MobileNet (input space [-1, 1]) ``v`` is exactly the model input.
* ``FourierParam``: Lucid's decorrelated parameterisation (Olah et al., "Feature
  Visualization", Distill 2017): the image is the inverse real FFT of a spectrum whose
  frequency f is scaled by 1/f^decay (so optimising the spectrum is gradient descent in a
  whitened space that favours low frequencies), followed by a fixed colour decorrelation matrix
  (the square root of ImageNet's colour covariance) and a sigmoid into [0, 1].
* ``WithReference``: another parameterisation with a fixed reference image put first in the
  batch, so that objectives can compare the optimised images with it (caricatures).

Also ``to_model_input`` / ``pixel_grad``: pixels -> model input through a backend's input space,
and the transpose of that (affine, per-pixel) map for gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Square root of ImageNet's RGB colour covariance, as in Lucid (lucid/optvis/param/color.py);
# scaled below so that its largest column has norm 1.
_COLOR_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)
COLOR_CORRELATION = _COLOR_SVD_SQRT / np.max(np.linalg.norm(_COLOR_SVD_SQRT, axis=0))


def to_model_input(input_space: Any, pixels: np.ndarray) -> np.ndarray:
    """RGB pixels (N, 3, H, W) in [0, 255] -> model input (N, C, H, W) float32."""
    return np.asarray(input_space.to_model(np.asarray(pixels, dtype=np.float32)), dtype=np.float32)


def _input_jacobian(input_space: Any, channels: int = 3) -> np.ndarray:
    """Matrix J (C_model, C_pixels) of the affine per-pixel map pixels -> model input.

    Probing with one-hot pixels works for any affine per-pixel input space (scaling, mean
    subtraction, RGB<->BGR), so we do not depend on how the space stores its constants.
    """
    zero = np.zeros((1, channels, 1, 1), np.float64)
    base = np.asarray(input_space.to_model(zero.astype(np.float32)), np.float64)[0, :, 0, 0]
    cols = []
    for c in range(channels):
        e = zero.copy()
        # A large probe keeps float32 rounding of the offset (e.g. -123.68) negligible.
        e[0, c] = 100.0
        out = np.asarray(input_space.to_model(e.astype(np.float32)), np.float64)[0, :, 0, 0]
        cols.append((out - base) / 100.0)
    return np.stack(cols, axis=1)


def pixel_grad(input_space: Any, gx: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the model input (N, C, H, W) -> gradient w.r.t. RGB pixels (N, 3, H, W).

    This is J^T gx with J the Jacobian of ``input_space.to_model`` (per pixel, C x 3).
    """
    gx = np.asarray(gx)
    if gx.ndim != 4:
        raise ValueError(f"pixel_grad: gradient must be (N, C, H, W), got shape {gx.shape}")
    jac = _input_jacobian(input_space, 3)
    # Round to kill float32 noise of the probe: real input spaces have exact small constants.
    jac = np.where(np.abs(jac) < 1e-6, 0.0, jac)
    return np.einsum("cp,nchw->nphw", jac, gx).astype(gx.dtype, copy=False)


class _ImageParam:
    """Shared protocol of the parameterisations that produce RGB pixels (``to_pixels``)."""

    params: np.ndarray
    bounds: tuple[float, float] | None = None

    def to_pixels(self, space: Any = None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dpixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def clip(self) -> None:
        """Keep ``params`` in range after an update (nothing by default)."""

    def to_input(self, space: Any) -> np.ndarray:
        """Model input (N, C, H, W) float32 through ``space``."""
        return to_model_input(space, self.to_pixels())

    def grad(self, space: Any, gx: np.ndarray) -> np.ndarray:
        """d/dparams from the gradient w.r.t. the model input (N, C, H, W)."""
        return self.backward(pixel_grad(space, gx))

    def after(self, step: int, space: Any, transforms: Sequence[Any]) -> None:
        # Pixel-changing transforms (blur, clip) act on the model input: see InputParam.
        self.clip()

    def restart(self, space: Any, x: np.ndarray) -> Any:
        """A parameterisation of the same kind starting from model input x (for octaves)."""
        raise ValueError(f"{type(self).__name__} cannot restart from an image (octaves)")


class InputParam:
    """The model input itself as the variable (model units, x0's dtype).

    Inputs:
    - x0: (N, C, H, W) float start, model units; copied.
    - bounds: optional (lo, hi) box on the input for L-BFGS-B.
    """

    def __init__(self, x0: np.ndarray, bounds: tuple[float, float] | None = None) -> None:
        x0 = np.asarray(x0)
        if x0.ndim != 4 or not np.issubdtype(x0.dtype, np.floating):
            raise ValueError(
                f"InputParam: x0 must be a float (N, C, H, W) array, got {x0.dtype} {x0.shape}"
            )
        self.params = x0.copy()
        self.bounds = bounds

    def to_input(self, space: Any) -> np.ndarray:
        return self.params

    def to_pixels(self, space: Any) -> np.ndarray:
        """RGB pixels (N, C, H, W), not clipped."""
        return space.to_pixels(self.params)

    def grad(self, space: Any, gx: np.ndarray) -> np.ndarray:
        return gx

    def after(self, step: int, space: Any, transforms: Sequence[Any]) -> None:
        for t in transforms:
            self.params = t.after(self.params, step, space)

    def restart(self, space: Any, x: np.ndarray) -> InputParam:
        return InputParam(x, self.bounds)


class PixelParam(_ImageParam):
    """RGB pixels as the variable, rescaled linearly to ``value_range``.

    ``v = lo + pixels * (hi - lo) / 255``; the default [-1, 1] gives half-range units
    ``v = pixels / 127.5 - 1``, [0, 1] gives unit pixels ``u = pixels / 255``.

    Inputs:
    - shape: (N, 3, H, W).
    - init: a constant in ``value_range`` (feature visualisation's constant offset; 0 = mid
      grey for [-1, 1]), 'random' (uniform noise of amplitude ``std`` half-ranges around mid
      grey), or an explicit pixel image (N, 3, H, W).
    - std: noise amplitude for ``init='random'``, in units of half the range.
    - seed: seed of that noise.
    - value_range: (lo, hi), the values of pixel 0 and pixel 255.
    """

    def __init__(
        self,
        shape: tuple[int, int, int, int],
        init: float | str | np.ndarray = 0.0,
        std: float = 0.1,
        seed: int | None = 0,
        value_range: tuple[float, float] = (-1.0, 1.0),
    ) -> None:
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"PixelParam: shape must be (N, 3, H, W), got {shape}")
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"PixelParam: value_range must have lo < hi, got {value_range}")
        self.bounds = (lo, hi)
        self.unit = 255.0 / (hi - lo)  # pixel levels per unit of v
        if isinstance(init, str):
            if init != "random":
                raise ValueError(
                    f"PixelParam: init must be a number, 'random' or an image, got {init!r}"
                )
            mid, amp = 0.5 * (lo + hi), std * 0.5 * (hi - lo)
            self.params = np.random.default_rng(seed).uniform(mid - amp, mid + amp, shape)
        elif np.isscalar(init):
            self.params = np.full(shape, float(init))  # type: ignore[arg-type]
        else:
            img = np.asarray(init, np.float64)
            if img.shape != tuple(shape):
                raise ValueError(f"PixelParam: init image must have shape {shape}, got {img.shape}")
            self.params = img / self.unit + lo

    def to_pixels(self, space: Any = None) -> np.ndarray:
        """RGB pixels (N, 3, H, W) float32 in [0, 255]."""
        return (self.unit * (self.params - self.bounds[0])).astype(np.float32)

    def backward(self, dpixels: np.ndarray) -> np.ndarray:
        """d/dparams from d/dpixels (same shape)."""
        return self.unit * np.asarray(dpixels, np.float64)

    def clip(self) -> None:
        np.clip(self.params, *self.bounds, out=self.params)

    def restart(self, space: Any, x: np.ndarray) -> PixelParam:
        pixels = space.to_pixels(x)
        return PixelParam(pixels.shape, pixels, value_range=self.bounds)


def _rfft2_adjoint_weights(w: int) -> np.ndarray:
    """c_k / W of the adjoint of irfft along an axis of length W (see FourierParam.backward)."""
    k = w // 2 + 1
    c = np.full(k, 2.0)
    c[0] = 1.0
    if w % 2 == 0:
        c[-1] = 1.0
    return c / w


class FourierParam(_ImageParam):
    """Lucid's decorrelated Fourier parameterisation of an RGB image.

    pixels = 255 * sigmoid(M @ irfft2(S * scale) / 4), with S the complex half spectrum stored
    as real ``params`` of shape (N, 3, H, W//2+1, 2),
    scale = sqrt(H W) / max(f, 1/max(H, W))^decay and M = ``COLOR_CORRELATION`` (per pixel,
    RGB). The /4 and the 0.01 initial std are Lucid's.

    Inputs:
    - shape: (N, 3, H, W).
    - decorrelate: apply the colour matrix M (False: identity).
    - decay_power: exponent of the 1/f frequency scaling (Lucid: 1).
    - std: standard deviation of the initial spectrum; seed: its seed.
    """

    def __init__(
        self,
        shape: tuple[int, int, int, int],
        decorrelate: bool = True,
        decay_power: float = 1.0,
        std: float = 0.01,
        seed: int | None = 0,
    ) -> None:
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"FourierParam: shape must be (N, 3, H, W), got {shape}")
        n, c, h, w = shape
        self.shape = tuple(shape)
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freqs = np.sqrt(fx * fx + fy * fy)
        # sqrt(h w) undoes irfft2's 1/(h w) up to the spectrum's energy (Lucid's fft_image).
        self.scale = np.sqrt(h * w) / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power
        self.color = COLOR_CORRELATION if decorrelate else np.eye(3)
        self.params = np.random.default_rng(seed).normal(0.0, std, (n, c, h, w // 2 + 1, 2))
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def _spatial(self) -> np.ndarray:
        spec = (self.params[..., 0] + 1j * self.params[..., 1]) * self.scale
        return np.fft.irfft2(spec, s=self.shape[2:], axes=(-2, -1)) / 4.0

    def to_pixels(self, space: Any = None) -> np.ndarray:
        """RGB pixels (N, 3, H, W) float32 in [0, 255]."""
        y = self._spatial()
        z = np.einsum("pc,nchw->nphw", self.color, y)
        s = 1.0 / (1.0 + np.exp(-z))
        self._cache = (self.params.copy(), s)
        return (255.0 * s).astype(np.float32)

    def backward(self, dpixels: np.ndarray) -> np.ndarray:
        """d/dparams (N, 3, H, W//2+1, 2) from d/dpixels (N, 3, H, W).

        Adjoint chain: sigmoid' -> M^T -> /4 -> adjoint of irfft2 -> * scale. The adjoint of
        irfft (length W, half spectrum Y) under the real inner product Re<., .> is
        Z_k = c_k / W * rfft(g)_k with c_k = 1 for the self-conjugate bins (k = 0 and W/2) and 2
        for the others, each of which stands for itself and its conjugate partner; the adjoint
        of the complex ifft along H is fft / H.
        """
        if self._cache is None or not np.array_equal(self._cache[0], self.params):
            self.to_pixels()
        assert self._cache is not None
        s = self._cache[1]
        dz = 255.0 * np.asarray(dpixels, np.float64) * s * (1.0 - s)
        dy = np.einsum("pc,nphw->nchw", self.color, dz) / 4.0
        h, w = self.shape[2:]
        zk = np.fft.rfft(dy, axis=-1) * _rfft2_adjoint_weights(w)
        dspec = np.fft.fft(zk, axis=-2) / h
        dspec = dspec * self.scale
        return np.stack([dspec.real, dspec.imag], axis=-1)

    def clip(self) -> None:
        """The sigmoid keeps pixels in range: nothing to clip."""

    def set_pixels(self, pixels: np.ndarray, margin: float = 0.5) -> None:
        """Set ``params`` so that :meth:`to_pixels` gives ``pixels`` (N, 3, H, W) in [0, 255].

        The inverse of the chain: logit, M^-1, *4, rfft2 (which irfft2 undoes exactly), / scale.
        Pixels are first clipped to [margin, 255 - margin], where the logit is finite.
        """
        p = np.asarray(pixels, np.float64)
        if p.shape != self.shape:
            raise ValueError(f"FourierParam.set_pixels: expected {self.shape}, got {p.shape}")
        u = np.clip(p, margin, 255.0 - margin) / 255.0
        z = np.log(u) - np.log1p(-u)
        y = np.einsum("cp,nphw->nchw", np.linalg.inv(self.color), z) * 4.0
        spec = np.fft.rfft2(y, axes=(-2, -1)) / self.scale
        self.params = np.stack([spec.real, spec.imag], axis=-1)
        self._cache = None


class WithReference(_ImageParam):
    """A parameterisation whose batch is preceded by a fixed reference image.

    ``to_pixels`` is ``concat([reference, inner.to_pixels()])`` (N + 1 images), so the
    reference goes through the same random transforms as the optimised images and an
    objective can compare them at any layer (Lucid's caricatures). The reference is a
    constant: its gradient is dropped. ``params`` is the inner parameterisation's.

    Inputs:
    - inner: a ``PixelParam`` or ``FourierParam`` of shape (N, 3, H, W).
    - reference: pixels (1, 3, H, W) in [0, 255].
    """

    def __init__(self, inner: _ImageParam, reference: np.ndarray) -> None:
        ref = np.asarray(reference, np.float32)
        want = (1, 3) + tuple(inner.to_pixels().shape[2:])
        if ref.shape != want:
            raise ValueError(f"WithReference: reference must be pixels {want}, got {ref.shape}")
        self.inner, self.reference = inner, ref
        self.bounds = inner.bounds

    @property
    def params(self) -> np.ndarray:  # type: ignore[override]
        return self.inner.params

    @params.setter
    def params(self, value: np.ndarray) -> None:
        self.inner.params = value

    def to_pixels(self, space: Any = None) -> np.ndarray:
        """Pixels (N + 1, 3, H, W): the reference first."""
        return np.concatenate([self.reference, self.inner.to_pixels()])

    def backward(self, dpixels: np.ndarray) -> np.ndarray:
        return self.inner.backward(np.asarray(dpixels)[1:])

    def clip(self) -> None:
        self.inner.clip()


__all__ = [
    "COLOR_CORRELATION",
    "FourierParam",
    "InputParam",
    "PixelParam",
    "WithReference",
    "pixel_grad",
    "to_model_input",
]
