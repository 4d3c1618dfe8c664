"""FGSM against the NumPy SqueezeNet: prediction and confidence versus epsilon.

FGSM (Goodfellow et al. 2015) against an ImageNet classifier, as in the TensorFlow FGSM
tutorial (tensorflow.org/tutorials/generative/adversarial_fgsm), on its labrador
(``YellowLabradorLooking_new.jpg``, SqueezeNet: 208 Labrador retriever) and on an ImageNet
police van (``n03977966_police_van.JPEG``). SqueezeNet calls the police van a *minivan*
(656, p 0.57), not 734 police van, so the attack there moves away from 656, the model's own
prediction, and the table also lists p(734).

FGSM takes one gradient of the cross-entropy at the clean image; ``x + eps * sign(g)`` for
each eps in pixel levels (0..255) is then a single forward pass. Every adversarial image is
also rounded to 8 bits (as saved in a PNG) and classified again. Writes ``summary.txt``
(the tables), ``fgsm_<image>.png`` (clean, adversarial and magnified difference at
``--show-eps``) and the adversarial PNGs.

    python experiments/fgsm_sweep.py --out runs/fgsm
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from convnet.data.imagenet import imagenet_labels
from convnet.inputgrad import (
    CrossEntropy,
    NumpyBackend,
    image_to_pixels,
    quantize,
    save_png,
)
from convnet.models.squeezenet import SqueezeNet

IMAGES = {
    "labrador": ("YellowLabradorLooking_new.jpg", None),
    "police_van": ("n03977966_police_van.JPEG", 734),
}
EPS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0, 16.0)


def image_dir() -> Path:
    from convnet.data.store import find_data_file

    return find_data_file("images/car.png", download=False).parent


def sweep(backend, x, label, eps_list, names, extra=None):
    """Rows (eps, pred, name, conf, p(label), p(extra), pred after 8-bit) for FGSM."""
    space = backend.input_space
    _, g = backend.value_and_grad(CrossEntropy(label), x)
    sign = np.sign(g) * space.pixel_scale_col(x.dtype)
    rows, advs = [], {}
    for eps in eps_list:
        adv = space.clip(x + eps * sign).astype(x.dtype)
        adv8 = quantize(backend, adv)
        p = backend.predict_proba(np.concatenate([adv, adv8]))
        top, top8 = int(p[0].argmax()), int(p[1].argmax())
        rows.append((eps, top, names[top], p[0, top], p[0, label],
                     None if extra is None else p[0, extra], top8, p[1, top8]))  # fmt: skip
        advs[eps] = adv8
    return rows, advs


def table(rows, label, names, extra) -> list[str]:
    head = f"{'eps':>5} | {'prediction':<28} | {'conf':>5} | p({label} {names[label]})"
    if extra is not None:
        head += f" | p({extra} {names[extra]})"
    head += " | after 8-bit PNG"
    out = [head, "-" * len(head)]
    for eps, top, name, conf, pl, pe, top8, c8 in rows:
        s = f"{eps:5.1f} | {f'{top} {name}':<28} | {conf:5.3f} | {pl:.3f}"
        if extra is not None:
            s += f" | {pe:.3f}"
        s += f" | {top8} {names[top8]} {c8:.3f}"
        out.append(s)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/fgsm_sweep"))
    p.add_argument("--eps", type=float, nargs="+", default=list(EPS), help="pixel levels")
    p.add_argument("--show-eps", type=float, default=2.0)
    args = p.parse_args(argv)

    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for _, n in imagenet_labels()]
    backend = NumpyBackend(SqueezeNet("imagenet"))
    space = backend.input_space
    folder = image_dir()
    eps_list = sorted(set(args.eps) | {args.show_eps})
    lines = ["FGSM on SqueezeNet v1.1 (NumPy), eps in pixel levels of 0..255, images resized "
             "to 227x227 (Pillow bilinear)", ""]  # fmt: skip
    for key, (fname, extra) in IMAGES.items():
        x = space.to_model(image_to_pixels(folder / fname, 227))
        p0 = backend.predict_proba(x)[0]
        label = int(p0.argmax())
        note = f"{fname}: clean prediction {label} {names[label]} {p0[label]:.3f}"
        if extra is not None and extra != label:
            note += (
                f" (the file's label is {extra} {names[extra]}, p = {p0[extra]:.3f}: "
                f"SqueezeNet calls it {names[label]}; the attack moves away from {label})"
            )
        rows, advs = sweep(backend, x, label, eps_list, names, extra)
        lines += [note, *table(rows, label, names, extra), ""]
        print("\n".join(lines[-len(rows) - 4 :]))
        clean = space.to_pixels(x)
        adv = space.to_pixels(advs[args.show_eps])
        save_png(adv, args.out / f"{key}_eps{args.show_eps:g}.png")
        diff = adv - clean
        mag = 127.0 / max(float(np.abs(diff).max()), 1e-12)
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
        r = {row[0]: row for row in rows}
        for ax, img, title in zip(
            axes,
            (clean, adv, 127.5 + mag * diff),
            (f"clean: {label} {names[label]} {p0[label]:.2f}",
             f"eps {args.show_eps:g}: {r[args.show_eps][1]} {r[args.show_eps][2]} "
             f"{r[args.show_eps][3]:.2f}",
             f"difference x{mag:.0f}"),
            strict=True,
        ):  # fmt: skip
            ax.imshow(np.clip(img[0].transpose(1, 2, 0) / 255.0, 0, 1))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(args.out / f"fgsm_{key}.png", dpi=100)
        plt.close(fig)
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
