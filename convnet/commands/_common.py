"""Helpers the input-gradient subcommands share: option types, output folders, images in and
out, labels, and the watch over a running method (non-finite stop, Ctrl-C partial save).

Option types check a value when argparse reads it, so a bad number is refused in one line
before any model loads::

    p.add_argument("--lr", type=positive_float, default=25.0)
    p.add_argument("--steps", type=positive_int, default=100)
    p.add_argument("--radius", type=finite_float(min=0, min_open=True, max=1e3))
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from convnet.data.images import (
    ImageTooLargeError,
    image_size_of,
    image_to_pixels,
    save_image,
    save_png,
)
from convnet.errors import ConvnetError, DataError, NonFiniteError

# ---------------------------------------------------------------------------- option types


def _bound_text(min: float | None, max: float | None, min_open: bool, max_open: bool) -> str:
    parts = []
    if min is not None:
        parts.append(f"{'>' if min_open else '>='} {min:g}")
    if max is not None:
        parts.append(f"{'<' if max_open else '<='} {max:g}")
    return " and ".join(parts)


def finite_float(min: float | None = None, max: float | None = None, min_open: bool = False,
                 max_open: bool = False) -> Callable[[str], float]:  # fmt: skip
    """An argparse ``type``: a finite float within [min, max] (``min_open``: > min).

    NaN, Inf and out-of-range values raise ``argparse.ArgumentTypeError``, which argparse
    prints as one line naming the option.
    """
    bounds = _bound_text(min, max, min_open, max_open)
    want = "a finite number" + (f" {bounds}" if bounds else "")

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        low = min is not None and (v <= min if min_open else v < min)
        high = max is not None and (v >= max if max_open else v > max)
        if not math.isfinite(v) or low or high:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}")
        return v

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def int_range(min: int | None = None, max: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer within [min, max]."""
    bounds = _bound_text(min, max, False, False)
    want = "an integer" + (f" {bounds}" if bounds else "")

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        if (min is not None and v < min) or (max is not None and v > max):
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}")
        return v

    parse.__name__ = "integer"
    return parse


#: A finite float > 0 (learning rates, step sizes, epsilons).
positive_float = finite_float(min=0.0, min_open=True)
#: A finite float >= 0 (weights of loss terms, noise levels).
nonneg_float = finite_float(min=0.0)
#: An integer >= 1 (steps, sizes, batch sizes).
positive_int = int_range(min=1)
#: An integer >= 0 (counts where 0 means "off").
nonneg_int = int_range(min=0)

#: Largest image side the image commands accept (a 16384 px square is 268 megapixels).
MAX_SIDE = 16384
#: An image side in pixels: 1..MAX_SIDE.
image_side = int_range(min=1, max=MAX_SIDE)


def add_max_memory_arg(p: argparse.ArgumentParser) -> None:
    """``--max-memory MB``: the memory budget (see convnet._memory_budget)."""
    p.add_argument("--max-memory", type=positive_float, default=None, metavar="MB",
                   help="refuse runs estimated to need more memory than this (default: "
                        "$CONVNET_MAX_MEMORY_MB, else half the available memory)")  # fmt: skip


# --------------------------------------------------------------------------- output folder


def add_output_args(p: argparse.ArgumentParser, seed: bool = True, progress: bool = True) -> None:
    """``--out`` (folder), and optionally ``--seed`` and ``--no-progress``."""
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    if seed:
        p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_out_dir(path: Path, option: str = "--out") -> Path:
    """Refuse an output folder that cannot be created or written, before any work starts.

    Nothing is created here (so a refused run leaves no trace); the folder is made when the
    first file is written. Raises ConvnetError naming ``option`` and the fix.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConvnetError(f"{option} {path} is a file, not a folder: pass a folder path")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConvnetError(
            f"{option} {path}: {parent} is a file, so the folder cannot be created there; "
            "pass another folder"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConvnetError(f"{option} {path}: {parent} is not writable; pass another folder")
    return path


def check_out_file(path: Path, option: str = "--out", example: str = "x.png") -> Path:
    """Refuse an output file path that is a folder or lies under a file or unwritable folder."""
    path = Path(path)
    if path.is_dir():
        raise ConvnetError(f"{option} {path} is a folder: pass a file path in it, such as "
                           f"{path / example}")  # fmt: skip
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConvnetError(f"{option} {path}: {parent} is a file, so {path.name} cannot be "
                           "written under it; pass another path")  # fmt: skip
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConvnetError(f"{option} {path}: {parent} is not writable; pass another path")
    return path


def npz_reason(exc: BaseException) -> str:
    """Why ``np.load`` failed, in words that advise nothing the user cannot do."""
    if "pickle" in str(exc):
        return "it holds pickled Python objects, which convnet never loads"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def check_file(path: str, what: str = "image") -> None:
    p = Path(path)
    if p.is_dir():
        raise ConvnetError(f"{what} {path} is a folder, not a file")
    if not p.is_file():
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


def _too_large(e: ImageTooLargeError) -> DataError:
    """The library's message names ``max_pixels=``; a command has no such option."""
    size = f"{e.width}x{e.height} pixels, " if e.width else ""
    return DataError(
        f"{e.path} is {size}over the limit of {e.limit / 1e6:.0f} megapixels: shrink it "
        "with an image editor first"
    )


def load_input(backend: Any, path: str) -> np.ndarray:
    """Image file -> (1, C, H, W) model-space input at the model's size."""
    return backend.input_space.to_model(load_pixels(path, image_size(backend),
                                                    grey=is_grey(backend)))  # fmt: skip


def load_pixels(path: str, size: Any = None, grey: bool = False) -> np.ndarray:
    """Image file -> (1, C, H, W) pixels 0..255; ``size`` as ``image_to_pixels`` takes it."""
    check_file(path)
    try:
        return image_to_pixels(path, size=size, grey=grey)
    except ImageTooLargeError as e:
        raise _too_large(e) from e


def image_hw(path: str) -> tuple[int, int]:
    """(height, width) of an image file from its header; errors as ``load_pixels``."""
    check_file(path)
    try:
        return image_size_of(path)
    except ImageTooLargeError as e:
        raise _too_large(e) from e


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


def check_scores(probs: np.ndarray, what: str = "the image") -> None:
    """Refuse a model whose class probabilities are NaN or Inf (weights of a diverged run)."""
    if not np.all(np.isfinite(probs)):
        raise NonFiniteError(f"the model's class scores are NaN or Inf on {what}: its weights "
                             "hold NaN or Inf (a diverged training run?)")  # fmt: skip


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
    if backend.input_shape is not None:
        hw = tuple(backend.input_shape[1:])
        if size is not None and (size, size) != hw:
            raise ValueError(f"this model only takes {hw[0]}x{hw[1]} images, --size {size}")
    else:
        if size is not None and size < 8:
            raise ValueError(f"--size must be at least 8, got {size}")
        hw = (size or 227, size or 227)
    pix = load_pixels(path, hw, grey=backend.input_space.channels == 1)
    return pix, backend.input_space.to_model(pix)


def colour_map(name: str) -> str:
    """An argparse ``type``: the name of a matplotlib colour map."""
    import matplotlib

    if name not in matplotlib.colormaps:
        raise argparse.ArgumentTypeError(f"unknown colour map {name!r} (e.g. jet, viridis, "
                                         "inferno)")  # fmt: skip
    return name


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

def check_layers(backend: Any, names: Any, option: str) -> None:
    """Refuse layer names the model does not have, listing some it has."""
    known = list(backend.layer_names)
    bad = [n for n in names if n not in known]
    if bad:
        shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
        raise ConvnetError(
            f"{option}: unknown layer {', '.join(map(repr, bad))} for this model; "
            f"its layers are {shown}"
        )


# ------------------------------------------------------------------- watching a method run


class Watch:
    """The ``callback`` of a method run by a command: keeps the latest image, stops on NaN.

    ``to_pixels`` turns what the method passes the callback into (N, C, H, W) pixels 0..255.
    After every step the image is checked: a NaN or Inf stops the run with a
    :class:`NonFiniteError` naming the step and the options to lower (``hint``). On Ctrl-C
    the command saves :attr:`latest` (see :func:`run_interruptible`).
    """

    def __init__(self, to_pixels: Callable[[np.ndarray], np.ndarray], hint: str,
                 what: str = "image") -> None:  # fmt: skip
        self.to_pixels = to_pixels
        self.hint = hint
        self.what = what
        self.latest: np.ndarray | None = None
        self.step = -1

    def __call__(self, step: int, x: np.ndarray, value: Any = None) -> bool:
        self.step = int(step)
        self.check(x, f"step {step}")
        self.latest = x
        return False

    def check(self, x: np.ndarray, where: str) -> None:
        if not np.all(np.isfinite(x)):
            raise NonFiniteError(f"the {self.what} became NaN or Inf at {where}: {self.hint}")

    def latest_pixels(self) -> np.ndarray | None:
        return None if self.latest is None else self.to_pixels(self.latest)


def run_interruptible(method: Callable[[], Any], watch: Watch, partial: Path) -> Any:
    """``method()``; on Ctrl-C save the latest image to ``partial`` and exit 130.

    Returns the method's result, or None after an interruption (the caller then returns
    130). The partial image is written atomically, so a second Ctrl-C cannot leave half a file.
    NumPy's overflow warnings are silenced: the watch turns a non-finite image into one
    clear error instead.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return method()
    except NonFiniteError as e:  # the library's words, then the command's own options
        if getattr(e, "at_start", False):
            raise
        raise NonFiniteError(f"{e}: {watch.hint}") from None
    except KeyboardInterrupt:
        pixels = watch.latest_pixels()
        if pixels is None:
            print("interrupted before the first step: nothing written", file=sys.stderr)
            return None
        save_partial(pixels, partial, watch.step)
        return None


def save_partial(pixels: np.ndarray, path: Path, step: int) -> None:
    """Write the (N, C, H, W) image(s) of an interrupted run; say so in one line."""
    written = []
    for i in range(pixels.shape[0]):
        p = path if pixels.shape[0] == 1 else path.with_name(f"{path.stem}_{i}{path.suffix}")
        written.append(str(save_png(pixels[i : i + 1], p)))
    print(f"interrupted after step {step}: wrote {', '.join(written)}", file=sys.stderr)


def check_budget(args: argparse.Namespace, backend: Any, hw: tuple[int, int], fix: str,
                 images: float = 1.0, model_hw: tuple[int, int] | None = None,
                 extra_per_pixel: float = 0.0) -> None:  # fmt: skip
    """Refuse a run whose estimated memory (convnet._memory_budget) is over the limit."""
    from convnet._memory_budget import check_memory, estimate_images

    need = estimate_images(backend, hw, images, model_hw=model_hw,
                           extra_per_pixel=extra_per_pixel)  # fmt: skip
    check_memory(need, getattr(args, "max_memory", None), fix, who=f"convnet {args.command}")


def interrupted_hint(out: Path) -> None:
    """After Ctrl-C: say where the last checkpoint is and how to continue from it."""
    if (out / "checkpoint.npz").is_file():
        print(f"convnet: the last checkpoint is in {out / 'checkpoint.npz'}; run the same "
              "command with --resume to continue", file=sys.stderr)
