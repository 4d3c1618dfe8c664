"""``convnet fool``: adversarial examples (FGSM, iterative FGSM/PGD, fooling image, DeepFool,
Carlini-Wagner L2).

    convnet fool images/YellowLabradorLooking_new.jpg --eps 2        # FGSM, 2 pixel levels
    convnet fool dog.jpg --eps 4 --iterations 10                     # iterative FGSM
    convnet fool dog.jpg --target 130                                # fooling image
    convnet fool dog.jpg --attack deepfool                           # minimal L2 change
    convnet fool dog.jpg --attack cw [--target 130] [--kappa 1]      # Carlini-Wagner L2

Epsilons are in pixel levels (0..255). Without ``--attack``, ``--eps`` runs FGSM (iterative
with ``--iterations``) and ``--target`` a fooling image. An untargeted attack succeeds only
if the top-1 changes from the clean top-1: attacking away from a class the model did not
predict says so. DeepFool and CW report the smallest change they found (L2 and L-inf in pixel
levels). Writes ``input.png``, ``adversarial.png`` and ``difference.png`` (the perturbation
magnified around mid-grey), checks the prediction again on the saved 8-bit PNG, and prints
both predictions.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

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
    nonneg_float,
    nonneg_int,
    save,
)
from convnet.commands._model import add_model_args, load_model
from convnet.data.images import image_to_pixels

ATTACKS = ("fgsm", "ifgsm", "deepfool", "cw")
#: A perturbation in pixel levels: more than 0, at most the whole 0..255 range.
LEVELS = finite_float(min=0, min_open=True, max=255)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fool",
        help="adversarial example: FGSM (--eps), a fooling image (--target), DeepFool or "
        "Carlini-Wagner (--attack)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="image file")
    p.add_argument("--attack", choices=ATTACKS, default=None,
                   help="fgsm, ifgsm (iterative FGSM), deepfool or cw (Carlini-Wagner L2); "
                        "default: fgsm with --eps (ifgsm with --iterations), a fooling image "
                        "with --target")  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target", type=nonneg_int, default=None,
                   help="class to make the model predict")  # fmt: skip
    g.add_argument("--eps", type=LEVELS, default=None,
                   help="FGSM L-inf size in pixel levels (0 < eps <= 255)")  # fmt: skip
    p.add_argument("--label", type=nonneg_int, default=None,
                   help="class to move away from, untargeted attacks (default: the "
                        "clean top-1)")  # fmt: skip
    p.add_argument("--iterations", type=int_range(0, 100000), default=0,
                   help="with --eps: iterative FGSM steps (0 = one-step FGSM)")  # fmt: skip
    p.add_argument("--step", type=LEVELS, default=1.0,
                   help="iterative FGSM step in pixel levels (1)")  # fmt: skip
    p.add_argument("--max-steps", type=int_range(1, 100000), default=100,
                   help="fooling image and DeepFool: step limit (100)")  # fmt: skip
    p.add_argument("--overshoot", type=finite_float(min=0, max=10), default=0.02,
                   help="DeepFool overshoot (0.02)")  # fmt: skip
    p.add_argument("--kappa", type=nonneg_float, default=0.0,
                   help="CW confidence: logit margin of the result (0)")  # fmt: skip
    p.add_argument("--search-steps", type=int_range(1, 100), default=6,
                   help="CW binary search steps over c (6)")  # fmt: skip
    p.add_argument("--cw-steps", type=int_range(1, 100000), default=100,
                   help="CW Adam steps per search step (100)")  # fmt: skip
    add_model_args(p, classifier=True)
    add_output_args(p, seed=False, progress=False)
    p.set_defaults(func=run)


def _choose_attack(args: argparse.Namespace) -> str:
    """The attack the options name ('fooling' for the fooling image); bad mixes -> ValueError."""
    attack = args.attack
    if attack is None:
        if args.eps is None and args.target is None:
            raise ValueError("one of --eps, --target or --attack deepfool|cw is required")
        if args.target is not None:
            return "fooling"
        return "ifgsm" if args.iterations > 0 else "fgsm"
    if attack in ("fgsm", "ifgsm") and args.eps is None:
        raise ValueError(f"--attack {attack} needs --eps (pixel levels)")
    if attack in ("deepfool", "cw") and args.eps is not None:
        raise ValueError(f"--eps does not apply to --attack {attack} (it finds the size itself)")
    if attack == "deepfool" and args.target is not None:
        raise ValueError("--attack deepfool is untargeted: use --label, or --attack cw --target")
    return attack


def _attack(args: argparse.Namespace, backend: Any, x: np.ndarray, lab: int) -> Any:
    from convnet.inputgrad.adversarial import fgsm, fooling_image, iterative_fgsm
    from convnet.inputgrad.attacks_minimal import carlini_wagner_l2, deepfool

    attack = _choose_attack(args)
    if attack == "fooling":
        return fooling_image(backend, x, args.target, max_steps=args.max_steps, quantized=True)
    if attack == "fgsm":
        return fgsm(backend, x, lab, args.eps)
    if attack == "ifgsm":
        return iterative_fgsm(backend, x, lab, args.eps, step=args.step,
                              iterations=args.iterations or None)  # fmt: skip
    if attack == "deepfool":
        return deepfool(backend, x, lab, overshoot=args.overshoot, max_iter=args.max_steps)
    targeted = args.target is not None
    return carlini_wagner_l2(backend, x, args.target if targeted else lab, targeted=targeted,
                             kappa=args.kappa, search_steps=args.search_steps,
                             steps=args.cw_steps)  # fmt: skip


def _verdict(res: Any, names: list[str] | None) -> str:
    """One line: did the attack do what it was for (top-1 changed / is the target)?"""
    before, after = label(int(res.orig_pred[0]), names), label(int(res.pred[0]), names)
    if res.target is not None:
        aim = label(int(res.target[0]), names)
        return (f"result: success, the top-1 is the target {aim}" if res.success[0]
                else f"result: no success, the top-1 is {after}, not the target {aim}")  # fmt: skip
    if res.success[0]:
        return f"result: success, the top-1 changed from {before} to {after}"
    if not res.originally_correct[0]:
        return (f"result: no success, the top-1 is still {before}; the model never predicted "
                f"{label(int(res.label[0]), names)} on the clean image, so moving away from "
                "it changed nothing")  # fmt: skip
    return f"result: no success, the top-1 is still {before}"


def run(args: argparse.Namespace) -> int:
    _choose_attack(args)  # option errors before any work
    check_out_dir(args.out)
    backend = load_model(args)
    space = backend.input_space
    x = load_input(backend, args.image)
    names = class_names(backend)
    probs = backend.predict_proba(x)[0]
    check_scores(probs, args.image)
    print(f"clean prediction: {format_top(probs, names)}")
    lab = int(probs.argmax()) if args.label is None else args.label
    if args.target is None and lab != int(probs.argmax()):
        print(f"note: the clean top-1 is {label(int(probs.argmax()), names)}, not "
              f"{label(lab, names)}: the attack succeeds only if the top-1 changes")  # fmt: skip
    res = _attack(args, backend, x, lab)
    Watch(space.to_pixels, "lower --eps or --step").check(res.x_adv, "the end")
    print(res.summary(names))
    print(_verdict(res, names))
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
    if res.success[0] and int(p8.argmax()) != int(res.pred[0]):
        print("note: rounding to 8-bit levels undid the attack (a minimal change can be "
              "smaller than one level)")  # fmt: skip
    return 0
