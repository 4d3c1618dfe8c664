"""The three DeepDream variants of the TensorFlow DeepDream tutorial side by side, with run times
(tensorflow.org/tutorials/generative/deepdream).

simple (normalised gradient ascent, step 0.01, at the image's size), octaves (scales 1.3**n,
n = -2..2, detail carried across) and tiled (octaves with gradients computed per 512-pixel
tile after a random roll), on ``sky.jpg``:

* TF backend: InceptionV3 ``mixed3`` + ``mixed5`` when its weights are present, else Keras
  MobileNet alpha 0.25 (``conv_pw_5_relu`` + ``conv_pw_8_relu``);
* NumPy backend: SqueezeNet (``fire5`` + ``fire7``) on a smaller image (NumPy is slower).

With ``--large`` it also dreams a 2000x1500 image with tiles and reports the peak memory
(tracemalloc for NumPy arrays, the process's peak RSS for TF).

    python experiments/deepdream_variants.py --out runs/deepdream_variants
    python experiments/deepdream_variants.py --large --out runs/deepdream_variants

Writes ``variants_<backend>.png`` (input + three results, times in the titles),
``<backend>_<variant>.png`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from convnet.data.images import image_to_pixels, save_png
from convnet.inputgrad.deepdream import VARIANTS, deepdream, dream_objective
from convnet.inputgrad.features import grid
from convnet.inputgrad.param import to_model_input


def _objective(backend, layers, pixels) -> float:
    obj = dream_objective(layers)
    return obj.value(backend.forward(to_model_input(backend.input_space, pixels), obj.layers))


def backends(which: list[str]):
    if "tf" in which:
        from convnet.interop.pretrained import find_weights, keras_model

        if find_weights("inception_v3", False) is not None:
            yield "inceptionv3", keras_model("inception_v3"), ["mixed3", "mixed5"], 512
        else:
            yield ("mobilenet025", keras_model("mobilenet", alpha=0.25),
                   ["conv_pw_5_relu", "conv_pw_8_relu"], 512)  # fmt: skip
    if "numpy" in which:
        from convnet.models.squeezenet import squeezenet_backend

        yield "squeezenet", squeezenet_backend(), ["fire5", "fire7"], 256


def large_run(name: str, backend, layers, steps: int) -> dict:
    img = np.random.default_rng(0).uniform(0, 255, (1, 3, 1500, 2000)).astype(np.float32)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    res = deepdream(backend, img, layers, variant="tiled", steps=steps, octaves=[0],
                    tile_size=512, progress=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"size": "2000x1500", "steps": steps, "tile": 512, "seconds": round(seconds, 1),
           "tracemalloc_peak_mib": round(peak / 2**20, 1), "peak_rss_mib": round(rss1, 1),
           "peak_rss_growth_mib": round(rss1 - rss0, 1),
           "finite": bool(np.isfinite(res.image).all())}  # fmt: skip
    print(f"{name} 2000x1500 tiled: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/deepdream_variants"))
    p.add_argument("--backends", nargs="*", default=["tf", "numpy"], choices=["tf", "numpy"])
    p.add_argument("--steps", type=int, default=50, help="steps (per octave) (50)")
    p.add_argument("--numpy-steps", type=int, default=10, help="steps for SqueezeNet (10)")
    p.add_argument("--step-size", type=float, default=0.01)
    p.add_argument("--large", action="store_true", help="also a 2000x1500 tiled run")
    p.add_argument("--large-steps", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sky = Path(os.environ.get("CONVNET_DATA_DIR", "data")) / "images/sky.jpg"
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    for name, backend, layers, side in backends(args.backends):
        pixels = image_to_pixels(sky, size=(round(side * 1059 / 1887), side))
        steps = args.numpy_steps if name == "squeezenet" else args.steps
        # Tiles of a quarter of the image so that the tiled path really tiles at this size.
        tile = side // 2
        before = _objective(backend, layers, pixels)
        images, titles, rows = [pixels], [f"input ({name})"], {}
        for variant in VARIANTS:
            res = deepdream(backend, pixels, layers, variant=variant, steps=steps,
                            step_size=args.step_size, tile_size=tile, seed=args.seed,
                            progress=True)  # fmt: skip
            after = _objective(backend, layers, res.image)
            save_png(res.image, args.out / f"{name}_{variant}.png")
            rows[variant] = {"seconds": round(res.seconds, 1), "objective_before": before,
                             "objective_after": after, "gain": after / before,
                             "steps_per_octave": steps}  # fmt: skip
            images.append(res.image)
            titles.append(f"{variant}: {res.seconds:.1f} s, x{after / before:.2f}")
            print(f"{name} {variant}: {res.seconds:.1f} s, objective {before:.4g} -> {after:.4g}")
        fig = grid(np.concatenate(images), titles, ncols=4, cell=3.5,
                   suptitle=f"DeepDream variants on {name} ({', '.join(layers)})")  # fmt: skip
        fig.savefig(args.out / f"variants_{name}.png", dpi=100)
        summary[name] = {"layers": layers, "image": list(pixels.shape[2:]), "tile": tile, **rows}
        if args.large:
            summary[name]["large"] = large_run(name, backend, layers, args.large_steps)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
