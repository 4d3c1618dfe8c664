"""``convnet classviz``: class model visualisation (Simonyan et al. 2014, cs231n defaults).

    convnet classviz 130 --out runs/classviz            # flamingo on SqueezeNet
    convnet classviz 76 --steps 200 --seed 1

Writes ``class_<C>.png`` and prints the model's prediction on the result.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet.commands._common import add_output_args, class_names, format_top, label, save
from convnet.commands._model import add_model_args, load_model


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "classviz",
        help="generate an image the model scores highly for a class",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("class_idx", type=int, metavar="CLASS", help="class index")
    p.add_argument("--steps", type=int, default=100, help="gradient-ascent steps (100)")
    p.add_argument("--l2", type=float, default=1e-3, help="L2 weight on the standardised image")
    p.add_argument("--lr", type=float, default=25.0, help="step length, standardised units (25)")
    p.add_argument("--blur-every", type=int, default=10, help="blur every k steps (10)")
    p.add_argument("--blur-sigma", type=float, default=0.5, help="blur sigma in pixels (0.5)")
    p.add_argument("--jitter", type=int, default=16, help="max random shift in pixels (16)")
    p.add_argument("--size", type=int, default=None, help="image size (model size or 227)")
    add_model_args(p, classifier=True)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.classviz import class_visualization

    backend = load_model(args)
    names = class_names(backend)
    x, hist = class_visualization(
        backend, args.class_idx, steps=args.steps, l2=args.l2, lr=args.lr,
        blur_every=args.blur_every, blur_sigma=args.blur_sigma, jitter=args.jitter,
        seed=args.seed, size=args.size, progress=not args.no_progress,
    )  # fmt: skip
    probs = backend.predict_proba(x)[0]
    print(f"class {label(args.class_idx, names)}: objective {hist[0]:.3g} -> {hist[-1]:.3g}")
    print(f"prediction on the result: {format_top(probs, names)}")
    args.out.mkdir(parents=True, exist_ok=True)
    save(backend.input_space.to_pixels(x), args.out / f"class_{args.class_idx}.png")
    return 0
