"""``convnet classviz``: class model visualisation (Simonyan et al. 2014, cs231n defaults).

    convnet classviz 130 --out runs/classviz            # flamingo on SqueezeNet
    convnet classviz 76 --steps 200 --seed 1

Writes ``class_<C>.png`` and prints the model's prediction on the result.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet.commands._common import (
    MAX_SIDE,
    Watch,
    add_max_memory_arg,
    add_output_args,
    check_budget,
    check_out_dir,
    class_names,
    finite_float,
    format_top,
    image_side,
    int_range,
    label,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    run_interruptible,
    save,
)
from convnet.commands._model import add_model_args, load_model


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "classviz",
        help="generate an image the model scores highly for a class",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("class_idx", type=nonneg_int, metavar="CLASS", help="class index")
    p.add_argument("--steps", type=positive_int, default=100, help="gradient-ascent steps (100)")
    p.add_argument("--l2", type=nonneg_float, default=1e-3,
                   help="L2 weight on the standardised image")  # fmt: skip
    p.add_argument("--lr", type=positive_float, default=25.0,
                   help="step length, standardised units (25)")  # fmt: skip
    p.add_argument("--blur-every", type=positive_int, default=10, help="blur every k steps (10)")
    p.add_argument("--blur-sigma", type=finite_float(min=0, max=100), default=0.5,
                   help="blur sigma in pixels (0.5; 0 = no blur)")  # fmt: skip
    p.add_argument("--jitter", type=int_range(0, MAX_SIDE), default=16,
                   help="max random shift in pixels (16)")  # fmt: skip
    p.add_argument("--size", type=image_side, default=None, help="image size (model size or 227)")
    add_model_args(p, classifier=True)
    add_output_args(p)
    add_max_memory_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.classviz import class_visualization, default_size

    check_out_dir(args.out)
    backend = load_model(args)
    names = class_names(backend)
    hw = default_size(backend, args.size)
    check_budget(args, backend, hw, "lower --size")
    space = backend.input_space
    watch = Watch(space.to_pixels, "lower --lr (or raise --l2)")
    out = args.out / f"class_{args.class_idx}.png"
    res = run_interruptible(lambda: class_visualization(
        backend, args.class_idx, steps=args.steps, l2=args.l2, lr=args.lr,
        blur_every=args.blur_every, blur_sigma=args.blur_sigma, jitter=args.jitter,
        seed=args.seed, size=args.size, progress=not args.no_progress, callback=watch,
    ), watch, out.with_name(f"{out.stem}_partial.png"))  # fmt: skip
    if res is None:
        return 130
    x, hist = res
    watch.check(x, "the end")
    probs = backend.predict_proba(x)[0]
    print(f"class {label(args.class_idx, names)}: objective {hist[0]:.3g} -> {hist[-1]:.3g}")
    print(f"prediction on the result: {format_top(probs, names)}")
    save(space.to_pixels(x), out)
    return 0
