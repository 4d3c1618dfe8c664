"""``convnet fool``: adversarial examples (FGSM, iterative FGSM/PGD, fooling image).

    convnet fool images/YellowLabradorLooking_new.jpg --eps 2        # FGSM, 2 pixel levels
    convnet fool dog.jpg --eps 4 --iterations 10                     # iterative FGSM
    convnet fool dog.jpg --target 130                                # fooling image

Epsilons are in pixel levels (0..255). Writes ``input.png``, ``adversarial.png`` and
``difference.png`` (the perturbation magnified around mid-grey), checks the prediction again
on the saved 8-bit PNG, and prints both predictions.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from convnet.commands._common import add_output_args, class_names, format_top, load_input, save
from convnet.commands._model import add_model_args, load_model
from convnet.data.images import image_to_pixels


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fool",
        help="adversarial example: FGSM (--eps) or a fooling image (--target)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="image file")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--target", type=int, default=None, help="class to make the model predict")
    g.add_argument("--eps", type=float, default=None, help="FGSM L-inf size in pixel levels")
    p.add_argument("--label", type=int, default=None,
                   help="class to move away from with --eps (default: the prediction)")  # fmt: skip
    p.add_argument("--iterations", type=int, default=0,
                   help="with --eps: iterative FGSM steps (0 = one-step FGSM)")  # fmt: skip
    p.add_argument("--step", type=float, default=1.0,
                   help="iterative FGSM step in pixel levels (1)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=100, help="fooling image: step limit")
    add_model_args(p, classifier=True)
    add_output_args(p, seed=False, progress=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.adversarial import fgsm, fooling_image, iterative_fgsm

    backend = load_model(args)
    space = backend.input_space
    x = load_input(backend, args.image)
    names = class_names(backend)
    probs = backend.predict_proba(x)[0]
    print(f"clean prediction: {format_top(probs, names)}")
    if args.target is not None:
        res = fooling_image(backend, x, args.target, max_steps=args.max_steps, quantized=True)
    else:
        lab = int(probs.argmax()) if args.label is None else args.label
        if args.iterations > 0:
            res = iterative_fgsm(backend, x, lab, args.eps, step=args.step,
                                 iterations=args.iterations)  # fmt: skip
        else:
            res = fgsm(backend, x, lab, args.eps)
    print(res.summary(names))
    args.out.mkdir(parents=True, exist_ok=True)
    clean = space.to_pixels(x)
    adv = space.to_pixels(res.x_adv)
    save(clean, args.out / "input.png")
    path = save(adv, args.out / "adversarial.png")
    diff = adv - clean
    mag = 127.0 / max(float(np.abs(diff).max()), 1e-12)
    save(127.5 + mag * diff, args.out / "difference.png")
    print(f"difference.png magnifies the perturbation x{mag:.1f} around mid-grey")
    back = space.to_model(image_to_pixels(path, grey=space.channels == 1))
    p8 = backend.predict_proba(back)[0]
    print(f"prediction on the saved 8-bit PNG: {format_top(p8, names)}")
    return 0
