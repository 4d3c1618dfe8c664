"""``convnet saliency``: saliency map of an image (Simonyan et al. 2014; SmoothGrad option).

    convnet saliency images/kitten.jpg --out runs/saliency
    convnet saliency dog.jpg --class 208 --smoothgrad 25 --model keras:mobilenet_v2

Writes ``input.png`` and ``saliency.png`` (max |d score / d pixel| over channels, scaled to
its maximum) into ``--out`` and prints the top-5 predictions.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet.commands._common import (
    add_output_args,
    class_names,
    format_top,
    label,
    load_input,
    save,
)
from convnet.commands._model import add_model_args, load_model


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
    add_model_args(p, classifier=True)
    add_output_args(p, progress=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.saliency import saliency_map

    backend = load_model(args)
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
