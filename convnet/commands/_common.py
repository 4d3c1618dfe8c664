"""Helpers the input-gradient subcommands share: output options, images in and out, labels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from convnet.data.images import image_to_pixels, save_image, save_png


def add_output_args(p: argparse.ArgumentParser, seed: bool = True, progress: bool = True) -> None:
    """``--out`` (folder), and optionally ``--seed`` and ``--no-progress``."""
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_file(path: str, what: str = "image") -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")


def image_size(backend: Any) -> tuple[int, int]:
    """The size images are resized to: the model's fixed size, else 227 (SqueezeNet)."""
    if backend.input_shape is not None:
        return tuple(backend.input_shape[1:])  # type: ignore[return-value]
    return (227, 227)


def fixed_size(backend: Any) -> tuple[int, int] | None:
    """(H, W) for a model that takes only one image size (e.g. one with a Dense layer)."""
    shape = getattr(backend, "input_shape", None)
    return None if shape is None else (int(shape[1]), int(shape[2]))


def is_grey(backend: Any) -> bool:
    return backend.input_space.channels == 1


def load_input(backend: Any, path: str) -> np.ndarray:
    """Image file -> (1, C, H, W) model-space input at the model's size."""
    check_file(path)
    pixels = image_to_pixels(path, image_size(backend), grey=is_grey(backend))
    return backend.input_space.to_model(pixels)


def load_pixels(path: str, size: Any = None, grey: bool = False) -> np.ndarray:
    """Image file -> (1, C, H, W) pixels 0..255; ``size`` as ``image_to_pixels`` takes it."""
    check_file(path)
    return image_to_pixels(path, size=size, grey=grey)


def class_names(backend: Any) -> list[str] | None:
    """ImageNet names for 1000-class models, else None (indices are printed)."""
    if backend.num_classes != 1000:
        return None
    try:
        from convnet.data.imagenet import imagenet_labels

        return [name for _, name in imagenet_labels()]
    except Exception:  # noqa: BLE001 - labels are a nicety; indices still print
        return None


def label(c: int, names: list[str] | None) -> str:
    return f"{c} {names[c]}" if names else str(c)


def format_top(probs: np.ndarray, names: list[str] | None, top: int = 5) -> str:
    """'817 sports_car 0.910, 511 convertible 0.058, ...' for one row of probabilities."""
    idx = np.argsort(-probs)[:top]
    return ", ".join(f"{label(int(i), names)} {probs[i]:.3f}" for i in idx)


def parse_ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None


def save(pixels: np.ndarray, path: Path) -> Path:
    """Write (1, C, H, W) pixels 0..255 as a PNG and say so."""
    path = save_png(pixels, path)
    print(f"wrote {path}")
    return path


def load_sized(backend: Any, path: str, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Image file -> (pixels (1, C, H, W) RGB 0..255, model input (1, C, H, W))."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    if backend.input_shape is not None:
        hw = tuple(backend.input_shape[1:])
        if size is not None and (size, size) != hw:
            raise ValueError(f"this model only takes {hw[0]}x{hw[1]} images, --size {size}")
    else:
        if size is not None and size < 8:
            raise ValueError(f"--size must be at least 8, got {size}")
        hw = (size or 227, size or 227)
    pix = image_to_pixels(path, hw, grey=backend.input_space.channels == 1)
    return pix, backend.input_space.to_model(pix)


def colourise(heat: np.ndarray, cmap: str) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) float 0..255 through a matplotlib colour map."""
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(f"unknown colour map {cmap!r} (e.g. jet, viridis, inferno)") from None
    return cm(np.clip(heat, 0.0, 1.0))[..., :3] * 255.0


def write_image(image: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) float 0..255 picture atomically and say so."""
    save_image(path, image)
    print(f"wrote {path}")
