"""DeepDream with zoom steps: many small zooms vs few large ones.

Zooming into the dream frame by frame is how the original DeepDream notebook
(github.com/google/deepdream) made its videos. The baseline dreams ``sky.jpg``-like clouds on
InceptionV3 ``mixed3``: Adam (Keras defaults) with a random shift of up to 100 pixels, 1000
steps per round, then the image is enlarged by ``zoom`` = 1.3, ``zoom_steps`` = 3 rounds. The
question is what many steps with a small factor and few steps with a large factor do. Here
every combination enlarges the image by about the same total factor (~2.2x, next to the
baseline's 1.3 x 3 = 1.69x), so only the split differs, and all results are shown in one
figure.

Runs on InceptionV3 when its weights are present, else on Keras MobileNet alpha 0.25
(``conv_pw_8_relu`` standing in for ``mixed3``).

    python experiments/deepdream_zoom.py --out runs/deepdream_zoom
    python experiments/deepdream_zoom.py --steps 30 --out /tmp/zoom          # quicker

Writes ``zoom_comparison.png`` (input and one result per combination), ``zoom_<f>x<n>.png``
and ``summary.json`` (objective per round, sizes, times).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from convnet.data.images import image_to_pixels, save_png
from convnet.inputgrad.deepdream import zoom_dream
from convnet.inputgrad.features import grid
from convnet.inputgrad.transforms import resize_bilinear

# (zoom factor, zoom steps). Round 0 does not zoom, so the total enlargement is
# zoom**(steps - 1): ~2.2x for all but the first, the baseline's (1.3, 3) = 1.69x.
COMBINATIONS = ((1.3, 3), (1.12, 8), (1.3, 4), (1.48, 3), (2.2, 2))


def load_backend():
    from convnet.interop.pretrained import find_weights, keras_model

    if find_weights("inception_v3", False) is not None:
        return keras_model("inception_v3"), ["mixed3"], "InceptionV3 mixed3"
    return keras_model("mobilenet", alpha=0.25), ["conv_pw_8_relu"], "MobileNet 0.25 conv_pw_8"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/deepdream_zoom"))
    p.add_argument("--image", default=None, help="default $CONVNET_DATA_DIR/images/sky.jpg")
    p.add_argument("--size", type=int, default=256, help="longer side of the start (256)")
    p.add_argument("--total-steps", type=int, default=600,
                   help="Adam steps shared by all rounds of one combination (600)")  # fmt: skip
    p.add_argument("--lr", type=float, default=0.01,
                   help="Adam learning rate in [-1, 1] units (baseline: 1e-3 with 1000 steps "
                        "per round; larger here so fewer steps show the effect)")  # fmt: skip
    p.add_argument("--shift", type=int, default=100, help="random shift (100)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import os

    image = args.image or Path(os.environ.get("CONVNET_DATA_DIR", "data")) / "images/sky.jpg"
    pixels = image_to_pixels(image)
    h, w = pixels.shape[2:]
    s = args.size / max(h, w)
    pixels = resize_bilinear(pixels, (round(h * s), round(w * s)))
    backend, layers, label = load_backend()
    args.out.mkdir(parents=True, exist_ok=True)
    save_png(pixels, args.out / "input.png")
    results, images, titles = {}, [pixels], ["input"]
    for zoom, n in COMBINATIONS:
        steps = max(1, args.total_steps // n)
        res = zoom_dream(backend, pixels, layers, zoom=zoom, zoom_steps=n, steps=steps,
                         max_shift=args.shift, learning_rate=args.lr, seed=args.seed,
                         progress=True)  # fmt: skip
        tag = f"zoom_{zoom:g}x{n}"
        save_png(res.image, args.out / f"{tag}.png")
        per_round = [res.history[(k + 1) * steps - 1] for k in range(n)]
        results[tag] = {"zoom": zoom, "zoom_steps": n, "steps_per_round": steps,
                        "final_size": list(res.image.shape[2:]),
                        "objective_start": res.history[0], "objective_end_of_rounds": per_round,
                        "seconds": round(res.seconds, 1)}  # fmt: skip
        print(f"{tag}: {n} rounds of {steps} steps, size {res.image.shape[2:]}, objective "
              f"{res.history[0]:.3g} -> {per_round[-1]:.3g}, {res.seconds:.0f} s")  # fmt: skip
        images.append(resize_bilinear(res.image, pixels.shape[2:]))
        titles.append(f"zoom {zoom:g} x {n} ({steps} steps each)")
    fig = grid(np.concatenate(images), titles, ncols=len(images), cell=3.2,
               suptitle=f"DeepDream zoom steps on {label} (results shown at the input size)")
    fig.savefig(args.out / "zoom_comparison.png", dpi=100)
    (args.out / "summary.json").write_text(json.dumps({"model": label, **results}, indent=2))
    print(f"wrote {args.out / 'zoom_comparison.png'} and summary.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
