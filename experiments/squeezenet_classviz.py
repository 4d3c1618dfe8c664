"""Class model visualisation on the NumPy SqueezeNet (Simonyan et al. 2014, with the settings
of the cs231n network-visualisation assignment, cs231n.github.io).

For each class: start from noise around mid-grey, ascend ``score - 1e-3 ||z||^2`` (z the
standardised image) with L2-normalised steps of 25 standardised units, jitter 16 px, a blur of
sigma 0.5 every 10 steps, clipping to 0..255, for ``--steps`` steps (100 by default). Writes
``class_<C>.png`` per class, ``classviz.png`` (all of them with the model's prediction on
each), and ``summary.txt``.

    python experiments/squeezenet_classviz.py --out runs/classviz            # 76 130 734
    python experiments/squeezenet_classviz.py --classes 130 --steps 20 --size 99 --out /tmp/cv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from convnet.data.imagenet import imagenet_labels
from convnet.inputgrad import NumpyBackend, class_visualization, save_png
from convnet.models.squeezenet import SqueezeNet

CLASSES = (76, 130, 734)  # tarantula, flamingo, police van


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/squeezenet_classviz"))
    p.add_argument("--classes", type=int, nargs="+", default=list(CLASSES))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--size", type=int, default=227)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for _, n in imagenet_labels()]
    backend = NumpyBackend(SqueezeNet("imagenet"))
    space = backend.input_space
    lines = [f"SqueezeNet v1.1 class visualisation, {args.steps} steps at {args.size}px, "
             f"seed {args.seed} (l2 1e-3, lr 25, jitter 16, blur 0.5 every 10)"]  # fmt: skip
    results = []
    for c in args.classes:
        t0 = time.perf_counter()
        x, hist = class_visualization(backend, c, steps=args.steps, size=args.size,
                                      seed=args.seed, progress=not args.no_progress)  # fmt: skip
        dt = time.perf_counter() - t0
        prob = backend.predict_proba(x)[0]
        top = int(prob.argmax())
        pix = space.to_pixels(x)
        save_png(pix, args.out / f"class_{c}.png")
        line = (f"class {c} {names[c]}: score {hist[0]:.2f} -> {hist[-1]:.2f} (objective); "
                f"p({names[c]}) = {prob[c]:.3f}, top-1 {top} {names[top]} {prob[top]:.3f}; "
                f"{dt:.0f} s")  # fmt: skip
        print(line)
        lines.append(line)
        results.append((c, pix, prob[c]))
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 4.4), squeeze=False)
    for ax, (c, pix, pc) in zip(axes[0], results, strict=True):
        ax.imshow(np.clip(pix[0].transpose(1, 2, 0) / 255.0, 0, 1))
        ax.set_title(f"{c} {names[c]}\np = {pc:.3f}")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out / "classviz.png", dpi=100)
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
