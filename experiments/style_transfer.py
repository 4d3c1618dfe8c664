"""Neural style transfer of tubingen.jpg in the styles of starry_night.jpg and
composition_vii.jpg (Gatys et al. 2016), with loss-term curves.

Gatys et al. from the content image, Adam with the settings of the TensorFlow style-transfer
tutorial (tensorflow.org/tutorials/generative/style_transfer: learning rate 0.02, beta1 0.99,
epsilon 0.1) on pixels / 255:

* NumPy backend: SqueezeNet, style relu1, fire3, fire4, fire5 (the cs231n choice) with
  weights balancing their losses, content fire6;
* TF backend: VGG19 (block1_conv1..block5_conv1 style, block5_conv2 content, the
  tutorial's setting) when its weights are present, else Keras MobileNet alpha 0.25 as the stand-in.

    python experiments/style_transfer.py --out runs/style_transfer
    python experiments/style_transfer.py --steps 50 --size 128 --out /tmp/style   # quicker

Writes ``<backend>_<style>.png``, ``<backend>_<style>_losses.png`` (style/content/TV/total
over the steps), ``style_transfer.png`` (inputs and all results) and ``summary.json``
(losses at the start and the end, the style-loss reduction factor, times).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from convnet.data.images import image_to_pixels, save_png
from convnet.inputgrad import style as S
from convnet.inputgrad.features import grid
from convnet.viz.curves import plot_losses

STYLES = ("starry_night", "composition_vii")


def backends(which: list[str]):
    if "numpy" in which:
        from convnet.models.squeezenet import squeezenet_backend

        yield "squeezenet", squeezenet_backend(), dict(
            style_layers=S.SQUEEZENET_STYLE_LAYERS, style_weights=S.SQUEEZENET_STYLE_WEIGHTS,
            content_layer=S.SQUEEZENET_CONTENT_LAYER,
            content_weight=S.SQUEEZENET_CONTENT_WEIGHT)
    if "tf" in which:
        from convnet.interop.pretrained import find_weights, keras_model

        if find_weights("vgg19", False) is not None:
            yield "vgg19", keras_model("vgg19"), dict(
                style_layers=S.VGG19_STYLE_LAYERS, style_weights=1e6,  # untuned here
                content_layer=S.VGG19_CONTENT_LAYER, content_weight=1e2)
        else:
            yield "mobilenet025", keras_model("mobilenet", alpha=0.25), dict(
                style_layers=S.MOBILENET_STYLE_LAYERS,
                style_weights=S.MOBILENET_STYLE_WEIGHTS,
                content_layer=S.MOBILENET_CONTENT_LAYER,
                content_weight=S.MOBILENET_CONTENT_WEIGHT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/style_transfer"))
    p.add_argument("--backends", nargs="*", default=["numpy", "tf"], choices=["numpy", "tf"])
    p.add_argument("--size", type=int, default=192, help="square image size (192)")
    p.add_argument("--steps", type=int, default=200, help="Adam steps (200)")
    p.add_argument("--tv-weight", type=float, default=0.0)
    args = p.parse_args(argv)
    data = Path(os.environ.get("CONVNET_DATA_DIR", "data")) / "images"
    content = image_to_pixels(data / "tubingen.jpg", size=args.size)
    styles = {s: image_to_pixels(data / f"{s}.jpg", size=args.size) for s in STYLES}
    args.out.mkdir(parents=True, exist_ok=True)
    images, titles, summary = [content, *styles.values()], ["content", *STYLES], {}
    for name, backend, cfg in backends(args.backends):
        for sname, style in styles.items():
            res = S.style_transfer(backend, content, style, steps=args.steps,
                                   tv_weight=args.tv_weight, progress=True, **cfg)  # fmt: skip
            tag = f"{name}_{sname}"
            save_png(res.image, args.out / f"{tag}.png")
            plot_losses(res.history, args.out / f"{tag}_losses.png",
                        f"{name}: tubingen in the style of {sname}")  # fmt: skip
            h = res.history
            factor = h["style"][0] / h["style"][-1]
            summary[tag] = {
                "steps": args.steps, "size": args.size, "seconds": round(res.seconds, 1),
                "style_start": h["style"][0], "style_end": h["style"][-1],
                "style_reduction": factor, "content_end": h["content"][-1],
                "per_layer_start": {k[6:]: v[0] for k, v in h.items() if k.startswith("style/")},
                "per_layer_end": {k[6:]: v[-1] for k, v in h.items() if k.startswith("style/")},
            }  # fmt: skip
            print(f"{tag}: style loss {h['style'][0]:.4g} -> {h['style'][-1]:.4g} "
                  f"({factor:.1f}x), {res.seconds:.0f} s")  # fmt: skip
            images.append(res.image)
            titles.append(f"{name}: {sname} (style /{factor:.0f})")
            (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    fig = grid(np.concatenate(images), titles, ncols=3, cell=3.2,
               suptitle="Style transfer of tubingen.jpg")  # fmt: skip
    fig.savefig(args.out / "style_transfer.png", dpi=100)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'style_transfer.png'} and summary.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
