"""``convnet saliency``: saliency map of an image (Simonyan et al. 2014; SmoothGrad option).

    convnet saliency images/kitten.jpg --out runs/saliency
    convnet saliency dog.jpg --class 208 --smoothgrad 25 --model keras:mobilenet_v2

Writes ``input.png`` and ``saliency.png`` (max |d score / d pixel| over channels, scaled to
its maximum) into ``--out`` and prints the top-5 predictions. The helpers here are shared by
``convnet classviz`` and ``convnet fool``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="squeezenet",
        help="squeezenet (default, NumPy), a model .npz saved with Sequential.save, or "
        "keras:NAME (a keras.applications model with its classifier, e.g. keras:mobilenet_v2)",
    )
    p.add_argument(
        "--input-space",
        default=None,
        help="override the model's input preprocessing (caffe_bgr_0_255, caffe_vgg, "
        "tf_minus1_1, torch_imagenet, unit_rgb, mnist_minus1_1, mnist_0_1)",
    )
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")


def load(args: argparse.Namespace) -> Any:
    from convnet.inputgrad.backend import load_backend

    return load_backend(args.model, args.input_space)


def image_size(backend: Any) -> tuple[int, int]:
    """The size images are resized to: the model's fixed size, else 227 (SqueezeNet)."""
    if backend.input_shape is not None:
        return tuple(backend.input_shape[1:])  # type: ignore[return-value]
    return (227, 227)


def load_input(backend: Any, path: str) -> np.ndarray:
    """Image file -> (1, C, H, W) model-space input at the model's size."""
    from convnet.inputgrad.backend import image_to_pixels

    if not Path(path).is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    grey = backend.input_space.channels == 1
    return backend.input_space.to_model(image_to_pixels(path, image_size(backend), grey=grey))


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


def save(pixels: np.ndarray, path: Path) -> Path:
    from convnet.inputgrad.backend import save_png

    path = save_png(pixels, path)
    print(f"wrote {path}")
    return path


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "saliency",
        help="saliency map of an image (gradient of a class score w.r.t. the pixels)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="image file")
    p.add_argument("--class", dest="class_idx", type=int, default=None,
                   help="class to explain (default: the predicted class)")  # fmt: skip
    p.add_argument("--smoothgrad", type=int, default=0,
                   help="average over this many noisy copies (SmoothGrad; 0 = plain)")  # fmt: skip
    p.add_argument("--noise", type=float, default=0.15,
                   help="SmoothGrad noise, fraction of the pixel range (0.15)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.saliency import saliency_map

    backend = load(args)
    x = load_input(backend, args.image)
    names = class_names(backend)
    probs = backend.predict_proba(x)[0]
    print(f"prediction: {format_top(probs, names)}")
    c = int(probs.argmax()) if args.class_idx is None else args.class_idx
    sal = saliency_map(backend, x, c, smoothgrad=args.smoothgrad, noise=args.noise,
                       seed=args.seed)[0]  # fmt: skip
    print(f"saliency for class {label(c, names)}: max {sal.max():.3g} score units per level")
    args.out.mkdir(parents=True, exist_ok=True)
    save(backend.input_space.to_pixels(x), args.out / "input.png")
    heat = 255.0 * sal / max(float(sal.max()), 1e-12)
    save(heat[None, None], args.out / "saliency.png")
    return 0
