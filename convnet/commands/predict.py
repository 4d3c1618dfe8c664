"""``convnet predict``: the top classes a model gives each image.

    convnet predict digit.png --model runs/mnist/model.npz
    convnet predict photo_of_a_2.jpg --model runs/mnist/model.npz --invert --top 3
    convnet predict $CONVNET_DATA_DIR/images/kitten.jpg            # SqueezeNet, ImageNet

Each image is fed in the model's input space (a ``.npz`` written by ``convnet train``
records the one it was trained on). For a one-channel 28x28 model (an MNIST classifier) the
image is first made MNIST-like as MNIST itself was made (``convnet.data.images.
preprocess_digit``): a light digit on black, its bounding box scaled to 20x20 and centred
by its centre of mass in 28x28. A digit written with dark ink on white paper needs
inverting: ``--invert`` forces it, ``--no-invert`` forbids it, neither decides from the
image's border. Other models get the image resized to their input size (``--invert`` turns
it into its negative). Prints one line per image: ``IMAGE: class prob, class prob, ...``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from convnet.commands._common import check_file, class_names, format_top, load_input
from convnet.commands._model import add_model_args, load_model


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict",
        help="print the top classes a model gives each image",
        description=(
            "Print the top classes a model gives each image, feeding the image in the "
            "model's input space. One-channel 28x28 models (MNIST classifiers) get the image "
            "made MNIST-like first: a light digit on black, scaled to 20x20 and centred by "
            "its centre of mass."
        ),
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top", type=int, default=5, help="classes to print per image (default 5)")
    inv = p.add_mutually_exclusive_group()
    inv.add_argument("--invert", dest="invert", action="store_true", default=None,
                     help="dark ink on light paper: invert the image first")
    inv.add_argument("--no-invert", dest="invert", action="store_false",
                     help="light digit on a dark background: never invert")
    add_model_args(p, classifier=True)
    p.set_defaults(func=run)


def is_digit_model(backend: Any) -> bool:
    """A one-channel 28x28 model: images are made MNIST-like before they are fed to it."""
    shape = getattr(backend, "input_shape", None)
    return (backend.input_space.channels == 1 and shape is not None
            and tuple(int(s) for s in shape[1:]) == (28, 28))


def model_input(backend: Any, path: str, invert: bool | None) -> np.ndarray:
    """Image file -> (1, C, H, W) model input (see the module docstring)."""
    from PIL import Image

    check_file(path)
    try:
        if is_digit_model(backend):
            from convnet.data.images import preprocess_digit

            pixels = preprocess_digit(path, invert=invert, value_range=(0.0, 255.0))
            return backend.input_space.to_model(pixels)
        x = load_input(backend, path)
    except (OSError, Image.DecompressionBombError) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise
        raise ValueError(f"cannot read image {path} ({exc})") from None
    if invert:
        space = backend.input_space
        x = space.to_model(255.0 - space.to_pixels(x))
    return x


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    for path in args.images:
        check_file(path)
    backend = load_model(args)
    names = class_names(backend)
    for path in args.images:
        probs = backend.predict_proba(model_input(backend, path, args.invert))[0]
        print(f"{path}: {format_top(probs, names, top=min(args.top, len(probs)))}")
    return 0
