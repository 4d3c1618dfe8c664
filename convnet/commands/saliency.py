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
    Watch,
    add_output_args,
    check_out_dir,
    check_scores,
    class_names,
    finite_float,
    format_top,
    int_range,
    label,
    load_input,
    nonneg_int,
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
    p.add_argument("--class", dest="class_idx", type=nonneg_int, default=None,
                   help="class to explain (default: the predicted class)")  # fmt: skip
    p.add_argument("--smoothgrad", type=int_range(0, 10000), default=0,
                   help="average over this many noisy copies (SmoothGrad; 0 = plain)")  # fmt: skip
    p.add_argument("--noise", type=finite_float(min=0, max=10), default=0.15,
                   help="SmoothGrad noise, fraction of the pixel range (0.15)")  # fmt: skip
    add_model_args(p, classifier=True)
    add_output_args(p, progress=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.saliency import saliency_map

    check_out_dir(args.out)
    backend = load_model(args)
    x = load_input(backend, args.image)
    names = class_names(backend)
    probs = backend.predict_proba(x)[0]
    check_scores(probs, args.image)
    print(f"prediction: {format_top(probs, names)}")
    c = int(probs.argmax()) if args.class_idx is None else args.class_idx
    sal = saliency_map(backend, x, c, smoothgrad=args.smoothgrad, noise=args.noise,
                       seed=args.seed)[0]  # fmt: skip
    Watch(lambda a: a, "lower --noise", what="saliency map").check(sal, "the end")
    print(f"saliency for class {label(c, names)}: max {sal.max():.3g} score units per level")
    save(backend.input_space.to_pixels(x), args.out / "input.png")
    heat = 255.0 * sal / max(float(sal.max()), 1e-12)
    save(heat[None, None], args.out / "saliency.png")
    return 0
