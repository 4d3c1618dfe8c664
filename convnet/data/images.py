"""User images: load, save, convert layouts, and turn a photo of a digit into an MNIST input.

Layout convention: :func:`load_image` returns **(H, W, C) float32 in [0, 255]** (what Pillow
and matplotlib use, C = 3 for RGB, 1 for grey); models want NCHW, so convert with
:func:`to_nchw` / :func:`from_nchw`. Pixel values stay in [0, 255] so that each model applies
its own preprocessing (value range, channel order) in one documented place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from convnet._io import atomic_write
from convnet.errors import DataError, DataNotFoundError

__all__ = [
    "MAX_PIXELS",
    "ImageTooLargeError",
    "image_size_of",
    "load_image",
    "save_image",
    "to_nchw",
    "from_nchw",
    "scale_pixels",
    "preprocess_digit",
]

# 64 megapixels: far above any photo in the examples (the largest is 10 MP) yet small
# enough that a hostile or mistaken file cannot take gigabytes once decoded to float32.
MAX_PIXELS = 64_000_000



class ImageTooLargeError(DataError):
    """An image has more pixels than the limit (checked from its header, before decoding).

    ``path``, ``width``, ``height`` and ``limit`` let a caller phrase its own fix (the
    library's message names the ``max_pixels=`` argument; the CLI names no such option).
    """

    def __init__(self, message: str, path: Path, width: int, height: int, limit: int) -> None:
        super().__init__(message)
        self.path, self.width, self.height, self.limit = path, width, height, limit


_RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


def _resample(name: str):
    from PIL import Image

    if name not in _RESAMPLE:
        raise ValueError(f"load_image: resample must be one of {_RESAMPLE}, got {name!r}")
    return getattr(Image.Resampling, name.upper())


def _size_hw(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int | np.integer):
        size = (int(size), int(size))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"load_image: size must be an int or (height, width) > 0, got {size!r}")
    return int(size[0]), int(size[1])


def _open_lazy(path: str | os.PathLike, max_pixels: int | None, who: str):
    """Open an image without decoding it; refuse a missing file, a non-image or a huge one."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{who}: image file {path} not found")
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            # our own limit is checked below; Pillow's warning would be a second message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(
            f"{who}: {path} is far over the limit of {limit / 1e6:.1f} megapixels ({e})",
            path, 0, 0, limit,
        ) from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{who}: {path} is not a readable image ({e})") from e
    w, h = img.size
    if w * h > limit:
        img.close()
        raise ImageTooLargeError(
            f"{who}: {path} is {w}x{h} = {w * h / 1e6:.1f} megapixels, over the limit of "
            f"{limit / 1e6:.1f} megapixels; pass max_pixels= to allow it or shrink the image",
            path, w, h, limit,
        )
    return img


def image_size_of(path: str | os.PathLike, max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) of an image file, read from its header (nothing is decoded).

    Raises DataNotFoundError, DataError (not an image) or ImageTooLargeError (over
    ``max_pixels``, default ``MAX_PIXELS``), as :func:`load_image` does.
    """
    img = _open_lazy(path, max_pixels, "image_size_of")
    try:
        w, h = img.size
    finally:
        img.close()
    return h, w


def _open(path: str | os.PathLike, max_pixels: int | None, who: str):
    """Open an image lazily, check its pixel count before decoding, apply EXIF rotation."""
    from PIL import Image, ImageOps

    img = _open_lazy(path, max_pixels, who)
    try:
        # phone photos store their rotation in EXIF; honour it so digits are upright
        img = ImageOps.exif_transpose(img)
        img.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{who}: cannot decode {path} ({e})") from e
    return img


def _to_mode(img, mode: str):
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # transparent pixels become white, as the picture looks in a viewer
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return img.convert(mode)


def load_image(
    path: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    mode: str = "RGB",
    resample: str = "bilinear",
    max_pixels: int | None = None,
) -> np.ndarray:
    """Load an image file with Pillow.

    Inputs:
    - path: any format Pillow reads (PNG, JPEG, ...). EXIF orientation is applied;
      transparent pixels are composited onto white.
    - size: None (keep), an int (square) or (height, width): resize to exactly that with
      Pillow's ``resample`` filter (no aspect-ratio preservation, like Keras ``load_img``).
    - mode: ``'RGB'`` (C = 3) or ``'L'`` (grey, C = 1).
    - resample: 'nearest', 'bilinear' (default), 'bicubic', 'lanczos', 'box', 'hamming'.
    - max_pixels: refuse images with more pixels (width*height) than this; default
      ``MAX_PIXELS`` (64 MP). Checked from the header, before decoding.

    Returns: float32 array (H, W, C) with values in [0, 255].

    Raises DataNotFoundError (no such file), DataError (unreadable or too large),
    ValueError (bad arguments).
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"load_image: mode must be 'RGB' or 'L', got {mode!r}")
    hw = _size_hw(size)
    filt = _resample(resample)
    img = _to_mode(_open(path, max_pixels, "load_image"), mode)
    if hw is not None and (img.height, img.width) != hw:
        img = img.resize((hw[1], hw[0]), filt)
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, C) or a batch (N, H, W, C) -> (N, C, H, W) (N = 1 for a single image), a copy."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"to_nchw: image must be (H, W, C) or (N, H, W, C), got {image.shape}")
    return np.ascontiguousarray(image.transpose(0, 3, 1, 2))


def from_nchw(x: np.ndarray) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) -> (H, W, C); (N, C, H, W) with N > 1 -> (N, H, W, C)."""
    x = np.asarray(x)
    if x.ndim == 3:
        return np.ascontiguousarray(x.transpose(1, 2, 0))
    if x.ndim != 4:
        raise ValueError(f"from_nchw: x must be (C, H, W) or (N, C, H, W), got {x.shape}")
    out = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return out[0] if out.shape[0] == 1 else out


def scale_pixels(
    x: np.ndarray, dtype: str | np.dtype = "uint8", value_range: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Return uint8 pixels ``x`` as a copy in ``dtype``.

    uint8 stays 0..255; a float dtype maps [0, 255] linearly onto ``value_range`` = (lo, hi).
    """
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return np.array(x, dtype=np.uint8)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"scale_pixels: dtype must be uint8 or a float dtype, got {dt}")
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(
            f"scale_pixels: value_range must be (lo, hi) with hi > lo, got {value_range}"
        )
    out = x.astype(dt)
    out *= dt.type((hi - lo) / 255.0)
    out += dt.type(lo)
    return out


def save_image(
    path: str | os.PathLike,
    image: np.ndarray,
    value_range: tuple[float, float] = (0.0, 255.0),
) -> Path:
    """Write an 8-bit PNG atomically (temp file in the same folder, then rename).

    Inputs:
    - path: destination (written as PNG whatever the suffix); its folder is created.
    - image: (H, W) grey, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA. uint8 is written as is;
      floats are mapped from ``value_range`` onto 0..255, clipped and rounded.
    - value_range: (lo, hi) of float input, (0, 255) by default (``load_image``'s range);
      use (0, 1) for [0, 1] images.

    Returns: the path written.
    """
    from PIL import Image

    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(
            f"save_image: image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}"
        )
    if a.dtype != np.uint8:
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"save_image: image must be numeric, got dtype {a.dtype}")
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"save_image: value_range must have hi > lo, got {value_range}")
        f = (a.astype(np.float64) - lo) * (255.0 / (hi - lo))
        a = np.clip(np.rint(np.nan_to_num(f, nan=0.0)), 0, 255).astype(np.uint8)
    path = Path(path)
    with atomic_write(path, "wb") as out:
        Image.fromarray(a).save(out, format="PNG")
    return path


def _otsu(x: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 255] (maximises the between-class variance)."""
    hist, edges = np.histogram(x, bins=256, range=(0.0, 256.0))
    p = hist.astype(np.float64) / max(1, hist.sum())
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centers)
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def preprocess_digit(
    path: str | os.PathLike | np.ndarray,
    invert: bool | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    max_pixels: int | None = None,
) -> np.ndarray:
    """Turn a photo or scan of one hand-written digit into an MNIST-like input.

    Follows how MNIST itself was made: a light digit on a black background, the digit's
    bounding box scaled (keeping its aspect ratio) to fit 20x20, placed in a 28x28 image so
    that its centre of mass is at the centre.

    Steps: grey; invert if the background is light (``invert=None`` decides from the border
    pixels: their median above the image median means a light background); Otsu threshold
    to separate strokes from background; intensities stretched so that the background
    (up to 2.5 standard deviations of its noise) becomes 0 and the bulk of the stroke (its
    75th percentile) 1, keeping anti-aliased edges grey; crop to the bounding box of the
    Otsu foreground; pad to a square; resize
    to 20x20 (Lanczos, anti-aliased); paste in 28x28 shifted by whole pixels so the centre
    of mass lands on pixel (14, 14), where MNIST has it (as far as the 4-pixel margin
    allows).

    Inputs:
    - path: image file, or an array (H, W) / (H, W, C) with values in [0, 255].
    - invert: True/False to force, None to decide automatically.
    - value_range: (lo, hi) of the output (``MnistConvNet`` wants (-1, 1)).
    - max_pixels: as in :func:`load_image`.

    Returns: float32 array (1, 1, 28, 28): background ``lo``, strokes up to ``hi``.

    Raises DataError when no digit can be found (an empty or uniform image).
    """
    from PIL import Image

    if isinstance(path, np.ndarray):
        g = np.asarray(path, dtype=np.float32)
        if g.ndim == 3:
            # ITU-R 601 luma, the same weights Pillow's convert('L') uses
            luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
            g = g[..., :3] @ luma if g.shape[2] >= 3 else g[..., 0]
        if g.ndim != 2:
            raise ValueError(
                f"preprocess_digit: array must be (H, W) or (H, W, C), got {path.shape}"
            )
        name = "array"
    else:
        g = load_image(path, mode="L", max_pixels=max_pixels)[:, :, 0]
        name = str(path)
    # big photos: a 400-pixel working size is plenty for a 20-pixel result, and fast
    if max(g.shape) > 400:
        s = 400 / max(g.shape)
        im = Image.fromarray(g.astype(np.float32))
        g = np.asarray(
            im.resize(
                (max(1, round(g.shape[1] * s)), max(1, round(g.shape[0] * s))), Image.Resampling.BOX
            )
        )
    if invert is None:
        border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
        invert = bool(np.median(border) > np.median(g)) or bool(np.median(border) > 127.5)
    if invert:
        g = 255.0 - g
    t = _otsu(g)
    fg = g > t
    if g.max() - g.min() < 1e-3 or not fg.any() or fg.all():
        raise DataError(f"preprocess_digit: no digit found in {name} (the image is uniform)")
    bg = g[~fg]
    # black level: just above the background's noise (never above Otsu's threshold);
    # white level: the bulk of the stroke, so strokes saturate as MNIST's do while their
    # anti-aliased edges keep intermediate values
    lo = min(float(np.median(bg)) + 2.5 * float(bg.std()), t)
    hi = float(np.percentile(g[fg], 75))
    if hi <= lo:
        hi = float(g[fg].max())
    v = np.clip((g - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    # bounding box from the Otsu mask, so faint specks in the background do not widen it
    rows, cols = np.nonzero(fg)
    v = v[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = v.shape
    side = max(h, w)
    sq = np.zeros((side, side), dtype=np.float32)
    sq[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = v
    box = np.asarray(
        Image.fromarray(sq).resize((20, 20), Image.Resampling.LANCZOS), dtype=np.float32
    )
    box = np.clip(box, 0.0, None)
    if box.max() <= 0:
        raise DataError(f"preprocess_digit: no digit found in {name}")
    box /= box.max()
    yy, xx = np.mgrid[0:20, 0:20]
    mass = box.sum()
    cy, cx = (yy * box).sum() / mass, (xx * box).sum() / mass
    # MNIST's digits have their centre of mass at pixel index (14, 14) (measured: 13.99,
    # 14.01 on average over the test set), not at the geometric centre 13.5
    oy = int(np.clip(round(14.0 - cy), 0, 8))
    ox = int(np.clip(round(14.0 - cx), 0, 8))
    out = np.zeros((28, 28), dtype=np.float32)
    out[oy : oy + 20, ox : ox + 20] = box
    lo, hi = (float(x) for x in value_range)
    return (lo + (hi - lo) * out).astype(np.float32)[None, None]


def image_to_pixels(
    image: str | Path | np.ndarray, size: tuple[int, int] | int | None = None, grey: bool = False
) -> np.ndarray:
    """Load/convert an image to pixels (1, C, H, W) float32 RGB 0..255.

    Inputs:
    - image: a path (any format Pillow reads) or an array (H, W), (H, W, 3) uint8/float 0..255.
    - size: (height, width) or an int for square; resized with Pillow BILINEAR (aspect not
      kept), as the SqueezeNet regression expects.
    - grey: convert to one channel.
    """
    from PIL import Image

    if isinstance(image, str | Path):
        # load_image handles EXIF orientation, alpha onto white and size limits.
        a = load_image(image, size=size, mode="L" if grey else "RGB", resample="bilinear")
        return np.ascontiguousarray(a.transpose(2, 0, 1)[None])
    else:
        a = np.asarray(image)
        if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3)):
            a = np.clip(a, 0, 255).astype(np.uint8) if a.dtype != np.uint8 else a
            img = Image.fromarray(a.squeeze(-1) if a.ndim == 3 and a.shape[2] == 1 else a)
            img = img.convert("L" if grey else "RGB")
        else:
            raise ValueError(f"image_to_pixels: array must be (H, W) or (H, W, 3), got {a.shape}")
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        img = img.resize((int(w), int(h)), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def pixels_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Pixels (1, C, H, W) or (C, H, W) -> image (H, W, C) uint8, rounded and clipped."""
    p = np.asarray(pixels)
    if p.ndim == 4:
        if p.shape[0] != 1:
            raise ValueError(f"pixels_to_uint8: expected one image, got {p.shape}")
        p = p[0]
    if p.ndim != 3:
        raise ValueError(f"pixels_to_uint8: expected (1, C, H, W) or (C, H, W), got {p.shape}")
    return np.clip(np.rint(p), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def save_png(pixels: np.ndarray, path: str | Path) -> Path:
    """Write pixels (1, C, H, W) as an 8-bit PNG, atomically; returns the path."""
    from PIL import Image

    a = pixels_to_uint8(pixels)
    path = Path(path)
    with atomic_write(path, "wb") as out:
        Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(out, format="PNG")
    return path
