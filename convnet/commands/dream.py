"""``convnet dream``: DeepDream an image (simple, octaves, or tiled for large images).

    convnet dream images/sky.jpg --size 256 --steps 20 --out runs/dream
    convnet dream photo.jpg --model keras:inception_v3 --variant tiled     # mixed3 + mixed5
    convnet dream sky.jpg --model keras:mobilenet --alpha 0.25 --layers conv_pw_8_relu

Writes ``input.png``, ``dream.png`` and ``octave_<k>.png`` (each octave's result) into ``--out``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from convnet.commands._common import (
    MAX_SIDE,
    Watch,
    add_max_memory_arg,
    add_output_args,
    check_budget,
    check_layers,
    check_out_dir,
    finite_float,
    fixed_size,
    image_hw,
    image_side,
    int_range,
    is_grey,
    load_pixels,
    positive_int,
    run_interruptible,
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

MIN_TILE = 32  # smaller tiles vanish inside the first pooling layers of every model here


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
    p.add_argument("--steps", type=positive_int, default=50, help="steps per octave (default 50)")
    p.add_argument("--step-size", type=finite_float(min=0, min_open=True, max=2), default=0.01,
                   help="step in [-1, 1] units of the pixel range (0.01, as the "
                        "TensorFlow DeepDream tutorial); with --zoom the Adam learning "
                        "rate")  # fmt: skip
    p.add_argument("--octave-scale", type=finite_float(min=1, min_open=True, max=4), default=1.3,
                   help="octave scale (1.3..1.5)")  # fmt: skip
    p.add_argument("--octaves", type=int_range(1, 20), default=5,
                   help="number of octaves, centred on 1 (1..20)")  # fmt: skip
    p.add_argument("--tile", type=int_range(MIN_TILE, MAX_SIDE), default=512,
                   help=f"tile size for --variant tiled (>= {MIN_TILE})")  # fmt: skip
    p.add_argument("--zoom", type=finite_float(min=1, min_open=True, max=4), default=None,
                   metavar="S", help="zoom variant instead of --variant: enlarge the image by "
                                     "S (1 < S <= 4, e.g. 1.3) between rounds")  # fmt: skip
    p.add_argument("--zoom-steps", type=int_range(1, 50), default=3, metavar="K",
                   help="with --zoom: rounds, each of --steps Adam steps (default 3)")  # fmt: skip
    p.add_argument("--max-shift", type=int_range(0, MAX_SIDE), default=100,
                   help="with --zoom: random shift in pixels per step (default 100)")  # fmt: skip
    p.add_argument("--size", type=image_side, default=None,
                   help="longer side in pixels after resizing (default: as is)")  # fmt: skip
    add_model_args(p, classifier=False)
    add_output_args(p)
    add_max_memory_arg(p)
    p.set_defaults(func=run)


_WEIGHT = finite_float()


def parse_layers(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, w = item.partition("=")
        try:
            out[name] = _WEIGHT(w) if w else 1.0
        except argparse.ArgumentTypeError:
            raise ValueError(f"--layers: weight of {name!r} must be a finite number, got {w!r}"
                             ) from None  # fmt: skip
    if not out:
        raise ValueError("--layers: no layer given")
    return out


def _load_pixels(path: str, size: int | None, grey: bool):
    """The image as (1, C, H, W) pixels, its longer side resized to ``size`` if given."""
    if size is None:
        return load_pixels(path, grey=grey)
    h, w = image_hw(path)
    s = size / max(w, h)
    return load_pixels(path, (max(1, round(h * s)), max(1, round(w * s))), grey=grey)


def _target_hw(args: argparse.Namespace, backend) -> tuple[int, int]:
    """(H, W) the image will have, from the file's header (nothing decoded yet)."""
    fixed = fixed_size(backend)
    if fixed is not None:
        return fixed
    h, w = image_hw(args.image)
    if args.size is None:
        return h, w
    s = args.size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _budget(args: argparse.Namespace, backend) -> None:
    h, w = _target_hw(args, backend)
    # the largest octave: octave_scale ** n for the largest n of the centred range
    n_top = args.octaves - args.octaves // 2 - 1
    top = 1.0 if args.variant == "simple" else args.octave_scale**n_top
    if args.zoom is not None:  # the image grows by --zoom every round
        top = args.zoom**args.zoom_steps
    hw = (round(h * top), round(w * top))
    tile = (args.tile, args.tile) if args.variant == "tiled" else None
    fix = ("lower --size, --zoom or --zoom-steps" if args.zoom is not None
           else "lower --size or --octaves (or use --variant tiled)")  # fmt: skip
    check_budget(args, backend, hw, fix, model_hw=tile if args.zoom is None else None)


def _layers(args: argparse.Namespace) -> dict[str, float]:
    if args.layers is not None:
        return parse_layers(args.layers)
    fam = model_family(args.model)
    if fam not in DREAM_LAYERS:
        raise ValueError(f"no default dream layers for {args.model!r}: pass --layers")
    return DREAM_LAYERS[fam]


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.deepdream import deepdream

    check_out_dir(args.out)
    layers = _layers(args)
    backend = load_model(args)
    check_layers(backend, layers, "--layers")
    _budget(args, backend)
    fixed = fixed_size(backend)
    if fixed is not None:  # such a model takes no other size (so only --variant simple works)
        pixels = load_pixels(args.image, fixed, grey=is_grey(backend))
    else:
        pixels = _load_pixels(args.image, args.size, is_grey(backend))
    space = backend.input_space
    watch = Watch(lambda x: np.clip(space.to_pixels(x), 0, 255), "lower --step-size")
    if args.zoom is not None:
        return _run_zoom(args, backend, pixels, layers, fixed, watch)
    half = args.octaves // 2
    res = run_interruptible(lambda: deepdream(
        backend, pixels, layers, variant=args.variant, steps=args.steps,
        step_size=args.step_size, octave_scale=args.octave_scale,
        octaves=range(-half, args.octaves - half), tile_size=args.tile, seed=args.seed,
        progress=not args.no_progress, callback=watch,
    ), watch, args.out / "dream_partial.png")  # fmt: skip
    if res is None:
        return 130
    watch.check(res.image, "the end")
    save(pixels, args.out / "input.png")
    if args.variant != "simple":
        for k, o in enumerate(res.octaves):
            save(o, args.out / f"octave_{k}.png")
    save(res.image, args.out / "dream.png")
    print(f"{args.variant} dream on {', '.join(layers)}: {res.seconds:.1f} s")
    return 0


def _run_zoom(args: argparse.Namespace, backend: Any, pixels: Any, layers: dict[str, float],
              fixed: tuple[int, int] | None, watch: Watch) -> int:  # fmt: skip
    from convnet.inputgrad.deepdream import zoom_dream

    if fixed is not None:
        raise ValueError(f"--zoom enlarges the image, but {args.model} takes only {fixed} images")
    res = run_interruptible(lambda: zoom_dream(
        backend, pixels, layers, zoom=args.zoom, zoom_steps=args.zoom_steps, steps=args.steps,
        max_shift=args.max_shift, learning_rate=args.step_size, seed=args.seed,
        progress=not args.no_progress,
    ), watch, args.out / "dream_partial.png")  # fmt: skip
    if res is None:
        return 130
    watch.check(res.image, "the end")
    save(pixels, args.out / "input.png")
    for k, o in enumerate(res.octaves):
        save(o, args.out / f"zoom_{k}.png")
    save(res.image, args.out / "dream.png")
    h, w = res.image.shape[2:]
    print(f"zoom dream x{args.zoom:g}, {args.zoom_steps} rounds on {', '.join(layers)}: "
          f"{h}x{w}, {res.seconds:.1f} s")  # fmt: skip
    return 0
