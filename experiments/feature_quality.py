"""How good are feature visualisations? Pixel space against Lucid's defaults, on SqueezeNet.

For 16 channels (evenly spaced) of each of three SqueezeNet layers, render one image per
channel with

* ``pixel``: Adam on the pixels (learning rate 0.05 half-ranges, start from uniform noise of
  0.1 half-ranges around grey, a random circular shift of up to 4 pixels every step; the
  project's former default and the SqueezeNet settings of ``feature_visualization.py``);
* ``fourier``: :func:`convnet.inputgrad.features.maximize`'s defaults, after Olah et al.,
  "Feature Visualization" (Distill 2017) and Lucid: decorrelated Fourier parameterisation,
  Adam 0.05, padding, jitter, random scale and rotation;

and measure, on each final image at its nominal size (no transforms):

* ``activated``: the fraction of channels whose mean activation exceeds 10 times its value
  on a mid-grey image (and is positive: a channel that is 0 on grey needs some activation);
* ``hf_energy``: the fraction of the image's spectral power (per colour channel, mean
  removed) above half the Nyquist frequency (radial frequency > 0.25 cycles/pixel); a
  smooth photograph has a few percent, white noise about 80 %;
* ``saturated``: the fraction of pixel values at 0 or 255 (within one level).

    python experiments/feature_quality.py --out runs/feature_quality
    python experiments/feature_quality.py --quick --out /tmp/fq       # a quick look

Writes ``summary.json`` (per method and layer: the three measures, the per-channel means and
the time), ``grid_<layer>.png`` (all channels, both methods) and ``pixel_vs_fourier.png``
(the first channels of every layer, one row per method; ``--figure`` writes a small copy).
With ``--caricature IMAGE`` also ``caricature.png``: the image, and for fire4 and fire7 its
caricature and its feature inversion (:func:`convnet.inputgrad.features.caricature`, 96
steps at the defaults).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

from convnet._io import atomic_path, atomic_save_figure, atomic_write_text
from convnet.inputgrad.features import grid, visualize_channels
from convnet.inputgrad.param import to_model_input

METHODS = {
    "pixel": dict(param="pixel", transforms="jitter", max_shift=4, learning_rate=0.05,
                  init="random"),  # fmt: skip
    "fourier": dict(param="fourier"),  # everything else at maximize's defaults
}
LAYERS = ("fire3", "fire6", "fire9")
GREY = 127.5


def high_frequency_energy(images: np.ndarray, cutoff: float = 0.25) -> np.ndarray:
    """Fraction of spectral power above ``cutoff`` cycles/pixel, per image (N,).

    images: pixels (N, C, H, W). The mean of each colour channel is removed first (the DC
    term says nothing about texture); an image with no variation counts as 0.
    """
    x = np.asarray(images, np.float64)
    x = x - x.mean(axis=(2, 3), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(2, 3))) ** 2
    fy = np.fft.fftfreq(x.shape[2])[:, None]
    fx = np.fft.fftfreq(x.shape[3])[None, :]
    high = np.sqrt(fy * fy + fx * fx) > cutoff
    total = power.sum(axis=(1, 2, 3))
    return np.where(total > 0, (power * high).sum(axis=(1, 2, 3)) / np.maximum(total, 1e-30), 0)


def channel_means(backend, layer: str, pixels: np.ndarray, channels: list[int]) -> np.ndarray:
    """Mean of channel ``channels[n]`` of ``layer`` on image n (or on image 0 for all)."""
    a = backend.forward(to_model_input(backend.input_space, pixels), [layer])[layer]
    rows = np.arange(len(channels)) if a.shape[0] > 1 else np.zeros(len(channels), int)
    return a[rows, channels].mean(axis=(1, 2)).astype(np.float64)


def measure(backend, layer: str, channels: list[int], images: np.ndarray,
            grey: np.ndarray) -> dict:  # fmt: skip
    means = channel_means(backend, layer, images, channels)
    ok = (means > 10 * grey) & (means > 0)
    hf = high_frequency_energy(images)
    sat = np.mean((images <= 1) | (images >= 254), axis=(1, 2, 3))
    return {
        "activated": float(ok.mean()),
        "hf_energy": float(hf.mean()),
        "saturated": float(sat.mean()),
        "channel_means": [round(float(m), 4) for m in means],
        "hf_per_channel": [round(float(h), 4) for h in hf],
    }


def _palette_png(fig, path: Path) -> None:
    """Save a figure as a small palette PNG (for the README)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    img = Image.open(buf).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", optimize=True)


def small_figure(rows: dict, cols: int, path: Path) -> None:
    """The README picture: per layer a pixel row and a Fourier row."""
    images, titles = [], []
    for (layer, method), imgs in rows.items():
        images += list(imgs[:cols])
        titles += [f"{layer} {method}" if i == 0 else "" for i in range(cols)]
    _palette_png(grid(np.stack(images), titles, ncols=cols, cell=1.15), path)


def caricatures(backend, image: Path, out: Path, size: int, seed: int) -> dict:
    """The image, its caricature and its inversion at fire4 and fire7, in one row."""
    from convnet.data.images import image_to_pixels, load_image
    from convnet.inputgrad.features import caricature

    px = image_to_pixels(load_image(image, size=(size, size)))
    images, titles, res = [px], ["image"], {}
    for layer in ("fire4", "fire7"):
        for invert in (False, True):
            r = caricature(backend, px, layer, invert=invert, steps=96, seed=seed)
            images.append(r.images)
            kind = "inversion" if invert else "caricature"
            titles.append(f"{layer} {kind}")
            res[f"{layer}_{kind}"] = {"start": r.history[0], "end": r.history[-1],
                                      "seconds": round(r.seconds, 1)}  # fmt: skip
    _palette_png(grid(images, titles, ncols=len(images), cell=1.6), out / "caricature.png")
    return res


def run(args: argparse.Namespace) -> dict:
    from convnet.models.squeezenet import squeezenet_backend

    backend = squeezenet_backend()
    summary: dict = {"size": args.size, "steps": args.steps, "seed": args.seed,
                     "methods": {k: {kk: str(vv) for kk, vv in v.items()}
                                 for k, v in METHODS.items()}, "layers": {}}  # fmt: skip
    grey_img = np.full((1, 3, args.size, args.size), GREY, np.float32)
    rows = {}
    for layer in args.layers:
        n_ch = backend.forward(to_model_input(backend.input_space, grey_img), [layer])[layer]
        chans = [int(c) for c in np.linspace(0, n_ch.shape[1] - 1, args.channels)]
        grey = channel_means(backend, layer, grey_img, chans)
        entry: dict = {"channels": chans, "grey_means": [round(float(g), 4) for g in grey]}
        all_imgs, titles = [], []
        for name in args.methods:
            t0 = time.perf_counter()
            kw = dict(size=args.size, steps=args.steps, seed=args.seed, progress=args.progress)
            r = visualize_channels(backend, layer, chans, **kw, **METHODS[name])
            m = measure(backend, layer, chans, r.images, grey)
            m["seconds"] = round(time.perf_counter() - t0, 1)
            entry[name] = m
            rows[(layer, name)] = r.images
            all_imgs += list(r.images)
            titles += [f"{name} ch {c}" for c in chans]
            print(f"{layer} {name}: activated {m['activated']:.2f}, high-frequency energy "
                  f"{m['hf_energy']:.3f}, saturated {m['saturated']:.3f} ({m['seconds']} s)",
                  flush=True)  # fmt: skip
        summary["layers"][layer] = entry
        fig = grid(np.stack(all_imgs), titles, ncols=len(chans) // 2 or 1,
                   suptitle=f"SqueezeNet {layer}: {' vs '.join(args.methods)}")  # fmt: skip
        atomic_save_figure(fig, args.out / f"grid_{layer}.png", dpi=60)
        atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    for name in args.methods:
        per = [summary["layers"][lay][name] for lay in args.layers]
        summary[name] = {"activated": float(np.mean([p["activated"] for p in per])),
                         "hf_energy": float(np.mean([p["hf_energy"] for p in per])),
                         "saturated": float(np.mean([p["saturated"] for p in per]))}  # fmt: skip
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    small_figure(rows, min(6, args.channels), args.out / "pixel_vs_fourier.png")
    if args.figure is not None:
        small_figure(rows, min(6, args.channels), args.figure)
    if args.caricature is not None:
        summary["caricature"] = caricatures(backend, args.caricature, args.out, args.size,
                                            args.seed)  # fmt: skip
        atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/feature_quality"))
    p.add_argument("--layers", nargs="+", default=list(LAYERS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--channels", type=int, default=16, help="channels per layer (16)")
    p.add_argument("--size", type=int, default=128, help="image side (128)")
    p.add_argument("--steps", type=int, default=256, help="Adam steps (256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", type=Path, default=None, help="also write the small figure here")
    p.add_argument("--caricature", type=Path, default=None, metavar="IMAGE",
                   help="also caricatures and inversions of this image")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="4 channels, 64 px, 20 steps")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.channels, args.size, args.steps = 4, 64, 20
    args.out.mkdir(parents=True, exist_ok=True)
    s = run(args)
    for name in args.methods:
        print(f"{name}: activated {s[name]['activated']:.2f}, "
              f"high-frequency energy {s[name]['hf_energy']:.3f}")  # fmt: skip
    print(f"wrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
