"""``convnet dream``: DeepDream an image (simple, octaves, or tiled for large images).

    convnet dream images/sky.jpg --size 256 --steps 20 --out runs/dream
    convnet dream photo.jpg --model keras:inception_v3 --variant tiled     # mixed3 + mixed5
    convnet dream sky.jpg --model keras:mobilenet --alpha 0.25 --layers conv_pw_8_relu
    convnet dream sky.jpg --zoom 1.3 --zoom-steps 3 --steps 100     # zoom into the dream

Writes ``input.png``, ``dream.png`` and ``octave_<k>.png`` (each octave's result) into ``--out``.
With ``--zoom S`` it runs the zoom variant instead of ``--variant``: ``--zoom-steps K`` rounds
(default 3) of ``--steps`` Adam steps (default 50) at learning rate ``--step-size`` (default
0.01 half-ranges) with random shifts of up to ``--max-shift`` pixels (default 100), the image
enlarged by S between rounds (the result is S**(K-1) times the start size); writes
``zoom_<k>.png`` for each round.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet.commands._common import (
    add_output_args,
    check_file,
    fixed_size,
    is_grey,
    load_pixels,
    save,
)
from convnet.commands._model import add_model_args, load_model
from convnet.model_spec import model_family

# Reasonable layers per model family when the user names none.
DREAM_LAYERS = {
    "squeezenet": {"fire5": 1.0, "fire7": 1.0},
    "inception_v3": {"mixed3": 1.0, "mixed5": 1.0},
    "mobilenet": {"conv_pw_5_relu": 1.0, "conv_pw_8_relu": 1.0},
    "mobilenet_v2": {"block_6_expand_relu": 1.0, "block_10_expand_relu": 1.0},
    "vgg16": {"block4_conv3": 1.0, "block5_conv3": 1.0},
    "vgg19": {"block4_conv4": 1.0, "block5_conv4": 1.0},
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dream",
        help="DeepDream an image (gradient ascent on layer activations)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="image file")
    p.add_argument("--layers", default=None,
                   help="comma-separated layers, optionally NAME=WEIGHT (default per model: "
                        "mixed3,mixed5 for inception_v3, fire5,fire7 for squeezenet)")  # fmt: skip
    p.add_argument("--variant", choices=("simple", "octaves", "tiled"), default="octaves")
    p.add_argument("--steps", type=int, default=50, help="steps per octave (default 50)")
    p.add_argument("--step-size", type=float, default=0.01,
                   help="step in [-1, 1] units of the pixel range (0.01, as the "
                        "TensorFlow DeepDream tutorial); with --zoom the Adam learning "
                        "rate")  # fmt: skip
    p.add_argument("--octave-scale", type=float, default=1.3, help="octave scale (1.3..1.5)")
    p.add_argument("--octaves", type=int, default=5, help="number of octaves, centred on 1")
    p.add_argument("--tile", type=int, default=512, help="tile size for --variant tiled")
    p.add_argument("--zoom", type=float, default=None, metavar="S",
                   help="zoom variant instead of --variant: enlarge the image by S (> 1, e.g. "
                        "1.3) between rounds")  # fmt: skip
    p.add_argument("--zoom-steps", type=int, default=3, metavar="K",
                   help="with --zoom: rounds, each of --steps Adam steps (default 3)")  # fmt: skip
    p.add_argument("--max-shift", type=int, default=100,
                   help="with --zoom: random shift in pixels per step (default 100)")  # fmt: skip
    p.add_argument("--size", type=int, default=None,
                   help="longer side in pixels after resizing (default: as is)")  # fmt: skip
    add_model_args(p, classifier=False)
    add_output_args(p)
    p.set_defaults(func=run)


def parse_layers(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, w = item.partition("=")
        try:
            out[name] = float(w) if w else 1.0
        except ValueError:
            raise ValueError(f"--layers: weight of {name!r} must be a number, got {w!r}") from None
    if not out:
        raise ValueError("--layers: no layer given")
    return out


def _load_pixels(path: str, size: int | None, grey: bool):
    """The image as (1, C, H, W) pixels, its longer side resized to ``size`` if given."""
    from PIL import Image

    if size is None:
        return load_pixels(path, grey=grey)
    check_file(path)
    with Image.open(path) as im:
        w, h = im.size
    s = size / max(w, h)
    return load_pixels(path, (max(1, round(h * s)), max(1, round(w * s))), grey=grey)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.deepdream import deepdream

    if args.layers is not None:
        layers = parse_layers(args.layers)
    else:
        fam = model_family(args.model)
        if fam not in DREAM_LAYERS:
            raise ValueError(f"no default dream layers for {args.model!r}: pass --layers")
        layers = DREAM_LAYERS[fam]
    backend = load_model(args)
    fixed = fixed_size(backend)
    if fixed is not None:  # such a model takes no other size (so only --variant simple works)
        pixels = load_pixels(args.image, fixed, grey=is_grey(backend))
    else:
        pixels = _load_pixels(args.image, args.size, is_grey(backend))
    if args.zoom is not None:
        return _run_zoom(args, backend, pixels, layers, fixed)
    half = args.octaves // 2
    res = deepdream(
        backend, pixels, layers, variant=args.variant, steps=args.steps,
        step_size=args.step_size, octave_scale=args.octave_scale,
        octaves=range(-half, args.octaves - half), tile_size=args.tile, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    save(pixels, args.out / "input.png")
    if args.variant != "simple":
        for k, o in enumerate(res.octaves):
            save(o, args.out / f"octave_{k}.png")
    save(res.image, args.out / "dream.png")
    print(f"{args.variant} dream on {', '.join(layers)}: {res.seconds:.1f} s")
    return 0


def _run_zoom(args: argparse.Namespace, backend: Any, pixels: Any, layers: dict[str, float],
              fixed: tuple[int, int] | None) -> int:  # fmt: skip
    from convnet.inputgrad.deepdream import zoom_dream

    if fixed is not None:
        raise ValueError(f"--zoom enlarges the image, but {args.model} takes only {fixed} images")
    if args.zoom <= 1 or args.zoom_steps < 1 or args.max_shift < 0:
        raise ValueError(
            f"--zoom must be > 1, --zoom-steps >= 1 and --max-shift >= 0, got {args.zoom}, "
            f"{args.zoom_steps}, {args.max_shift}"
        )
    res = zoom_dream(
        backend, pixels, layers, zoom=args.zoom, zoom_steps=args.zoom_steps, steps=args.steps,
        max_shift=args.max_shift, learning_rate=args.step_size, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    save(pixels, args.out / "input.png")
    for k, o in enumerate(res.octaves):
        save(o, args.out / f"zoom_{k}.png")
    save(res.image, args.out / "dream.png")
    h, w = res.image.shape[2:]
    print(f"zoom dream x{args.zoom:g}, {args.zoom_steps} rounds on {', '.join(layers)}: "
          f"{h}x{w}, {res.seconds:.1f} s")  # fmt: skip
    return 0
