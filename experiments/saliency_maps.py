"""Saliency maps (Simonyan et al. 2014) of the NumPy SqueezeNet for the images in the data
folder's ``images/``: each image resized to 227x227, the map of its predicted class (max over
channels of |d score / d pixel|), optionally SmoothGrad. Writes ``saliency_maps.png`` (image
above map, with the prediction) and ``summary.txt``.

    python experiments/saliency_maps.py --out runs/saliency
    python experiments/saliency_maps.py --smoothgrad 16 --out runs/smoothgrad
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from convnet.data.imagenet import imagenet_labels
from convnet.inputgrad import NumpyBackend, image_to_pixels, saliency_map
from convnet.models.squeezenet import SqueezeNet

EXTS = {".jpg", ".jpeg", ".png"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/saliency_maps"))
    p.add_argument("--images", type=Path, default=None, help="folder (default: data images/)")
    p.add_argument("--smoothgrad", type=int, default=0)
    args = p.parse_args(argv)

    import matplotlib.pyplot as plt

    from convnet.data.store import find_data_file

    folder = args.images or find_data_file("images/car.png", download=False).parent
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in EXTS)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for _, n in imagenet_labels()]
    backend = NumpyBackend(SqueezeNet("imagenet"))
    space = backend.input_space
    lines = [f"SqueezeNet v1.1 saliency (smoothgrad={args.smoothgrad}) of the predicted class"]
    fig, axes = plt.subplots(2, len(files), figsize=(2.6 * len(files), 5.6), squeeze=False)
    for j, f in enumerate(files):
        pix = image_to_pixels(f, 227)
        x = space.to_model(pix)
        prob = backend.predict_proba(x)[0]
        c = int(prob.argmax())
        sal = saliency_map(backend, x, c, smoothgrad=args.smoothgrad)[0]
        # How concentrated the map is: share of the total in the top 10% of pixels.
        top = np.sort(sal.ravel())[::-1]
        share = top[: top.size // 10].sum() / top.sum()
        line = f"{f.name}: {c} {names[c]} p={prob[c]:.3f}; top-10% pixels hold {share:.0%}"
        print(line)
        lines.append(line)
        axes[0, j].imshow(pix[0].transpose(1, 2, 0) / 255.0)
        axes[0, j].set_title(f"{names[c]}\n{prob[c]:.2f}", fontsize=8)
        axes[1, j].imshow(sal, cmap="hot")
        for ax in axes[:, j]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out / "saliency_maps.png", dpi=90)
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
