"""How small can a change that fools SqueezeNet be? FGSM vs DeepFool vs Carlini-Wagner L2.

FGSM (Goodfellow et al. 2015) takes one step of a given L-inf size; DeepFool (Moosavi-Dezfooli
et al. 2016) and Carlini-Wagner L2 (Carlini & Wagner 2017) search for the smallest L2 change
that moves the top-1. On the labrador photo (clean top-1: 208 Labrador retriever) this runs
FGSM at the smallest eps of a grid that succeeds, DeepFool (overshoot 0.02) and CW, and
reports each perturbation's L2 and L-inf norm in pixel levels (0..255), the new top-1, and
whether it survives saving as an 8-bit PNG.

    python experiments/minimal_attacks.py --out runs/minimal_attacks
    python experiments/minimal_attacks.py --cw-steps 1000 --search-steps 5   # closer to the paper

Writes ``minimal_attacks.png`` (the input and each perturbation, magnified) and
``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from convnet.data.images import image_to_pixels
from convnet.inputgrad.adversarial import fgsm, quantize
from convnet.inputgrad.attacks_minimal import carlini_wagner_l2, deepfool
from convnet.inputgrad.features import grid
from convnet.models.squeezenet import SqueezeNet

EPS_GRID = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)  # pixel levels


def _smallest_fgsm(backend, x, label):
    for eps in EPS_GRID:
        r = fgsm(backend, x, label, eps)
        if r.success[0]:
            return r, eps
    return r, eps


def main(argv: list[str] | None = None) -> int:
    from convnet.backend import NumpyBackend

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/minimal_attacks"))
    p.add_argument("--image", default=None, help="default: the labrador in $CONVNET_DATA_DIR")
    p.add_argument("--cw-steps", type=int, default=100, help="CW Adam steps per c (100)")
    p.add_argument("--search-steps", type=int, default=6, help="CW binary search steps (6)")
    args = p.parse_args(argv)
    data = Path(os.environ.get("CONVNET_DATA_DIR", "data"))
    image = args.image or data / "images/YellowLabradorLooking_new.jpg"
    backend = NumpyBackend(SqueezeNet("imagenet"))
    space = backend.input_space
    x = space.to_model(image_to_pixels(image, (227, 227)))
    label = int(backend.predict_proba(x)[0].argmax())
    runs, summary = {}, {"image": str(image), "clean_top1": label}
    t = time.time()
    runs["FGSM"], eps = _smallest_fgsm(backend, x, label)
    summary["fgsm_eps"] = eps
    times = {"FGSM": time.time() - t}
    t = time.time()
    runs["DeepFool"] = deepfool(backend, x)
    times["DeepFool"] = time.time() - t
    t = time.time()
    runs["CW L2"] = carlini_wagner_l2(backend, x, steps=args.cw_steps,
                                      search_steps=args.search_steps)  # fmt: skip
    times["CW L2"] = time.time() - t
    clean = space.to_pixels(x)
    images, titles = [clean], [f"input: top-1 {label}"]
    for name, r in runs.items():
        png_top1 = int(backend.predict_proba(quantize(backend, r.x_adv))[0].argmax())
        summary[name] = {"top1": int(r.pred[0]), "success": bool(r.success[0]),
                         "l2": float(r.l2[0]), "linf": float(r.linf[0]), "steps": r.steps,
                         "seconds": round(times[name], 1), "png_top1": png_top1}  # fmt: skip
        print(f"{name}: {r.summary()}  ({times[name]:.0f} s; 8-bit PNG top-1 {png_top1})")
        d = space.to_pixels(r.x_adv) - clean
        mag = 127.0 / max(float(np.abs(d).max()), 1e-12)
        images.append(np.clip(127.5 + mag * d, 0, 255))
        titles.append(f"{name}: top-1 {int(r.pred[0])}\nL2 {r.l2[0]:.1f}, Linf {r.linf[0]:.2f} "
                      f"(x{mag:.0f})")  # fmt: skip
    summary["cw_steps"], summary["search_steps"] = args.cw_steps, args.search_steps
    args.out.mkdir(parents=True, exist_ok=True)
    fig = grid(images, titles, ncols=4, cell=2.6)
    fig.suptitle("Smallest change that fools SqueezeNet (pixel levels; perturbations "
                 "magnified)", y=1.06)  # fmt: skip
    fig.savefig(args.out / "minimal_attacks.png", dpi=100, bbox_inches="tight")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {args.out / 'minimal_attacks.png'} and summary.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
