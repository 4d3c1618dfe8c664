"""``convnet features``: feature visualisation of a neuron, a channel or a whole layer.

    convnet features fire4 --channel 10 --size 128 --steps 200 --init random
    convnet features mixed1 --unit 30,9,9 --model keras:inception_v3      # course 3.1.1
    convnet features conv_pw_5_relu --channels 0,1,2,3 --model keras:mobilenet --alpha 0.25

Writes ``features_<layer>_<what>.png`` (a grid for ``--channels``) into ``--out``. The helpers
here (``--model`` parsing, default layers) are shared by ``convnet dream`` and
``convnet style``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# Reasonable layers per model family when the user names none.
DREAM_LAYERS = {
    "squeezenet": {"fire5": 1.0, "fire7": 1.0},
    "inception_v3": {"mixed3": 1.0, "mixed5": 1.0},
    "mobilenet": {"conv_pw_5_relu": 1.0, "conv_pw_8_relu": 1.0},
    "mobilenet_v2": {"block_6_expand_relu": 1.0, "block_10_expand_relu": 1.0},
    "vgg16": {"block4_conv3": 1.0, "block5_conv3": 1.0},
    "vgg19": {"block4_conv4": 1.0, "block5_conv4": 1.0},
}


def add_model_args(p: argparse.ArgumentParser, default: str = "squeezenet") -> None:
    p.add_argument(
        "--model",
        default=default,
        help=f"squeezenet (NumPy) or keras:NAME (keras.applications without the classifier: "
        f"inception_v3, mobilenet, mobilenet_v2, vgg16, vgg19, ...; default {default})",
    )
    p.add_argument("--alpha", type=float, default=1.0,
                   help="width multiplier of keras:mobilenet(_v2), e.g. 0.25")  # fmt: skip
    p.add_argument("--weights", default="imagenet",
                   help="keras: imagenet (default), a weights file, or none")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def model_family(spec: str) -> str:
    return spec.split(":", 1)[1] if spec.startswith("keras:") else spec


def load_model(args: argparse.Namespace) -> Any:
    """The backend named by ``--model`` (squeezenet | keras:NAME), without any classifier."""
    spec = args.model
    if spec == "squeezenet":
        from convnet.models.squeezenet import squeezenet_backend

        return squeezenet_backend()
    if spec.startswith("keras:"):
        from convnet.interop.pretrained import keras_model

        weights = None if str(args.weights).lower() == "none" else args.weights
        return keras_model(model_family(spec), include_top=False, weights=weights,
                           alpha=args.alpha)  # fmt: skip
    raise ValueError(f"--model must be 'squeezenet' or keras:NAME, got {spec!r}")


def parse_ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None


def save(pixels: Any, path: Path) -> Path:
    from convnet.inputgrad.backend import save_png

    path = save_png(pixels, path)
    print(f"wrote {path}")
    return path


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "features",
        help="visualise what a neuron, channel or layer responds to",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("layer", help="layer name (e.g. fire4, mixed1, conv_pw_5_relu)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--channel", type=int, default=None, help="maximise this channel's mean")
    what.add_argument("--unit", default=None, metavar="C,Y,X", help="maximise one neuron")
    what.add_argument("--channels", default=None, metavar="C1,C2,...",
                      help="several channels, rendered together into one grid")  # fmt: skip
    p.add_argument("--steps", type=int, default=2000, help="Adam steps (course: 2000)")
    p.add_argument("--size", type=int, default=200, help="image side in pixels (course: 200)")
    p.add_argument("--shift", type=int, default=4, help="max random shift per step (course: 4)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 1e-3 pixel, 0.05 fourier)")  # fmt: skip
    p.add_argument("--init", default="0.0",
                   help="start: a constant offset in [-1, 1] (course 0) or 'random'")  # fmt: skip
    p.add_argument("--param", choices=("pixel", "fourier"), default="pixel",
                   help="image parameterisation (fourier: decorrelated, Lucid)")  # fmt: skip
    p.add_argument("--diversity", type=float, default=0.0,
                   help="diversity weight (with --channels or --batch)")  # fmt: skip
    p.add_argument("--batch", type=int, default=1, help="images optimised together")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.features import feature_objective, grid, maximize, visualize_channels

    backend = load_model(args)
    init: Any = args.init if args.init == "random" else float(args.init)
    common = dict(size=args.size, steps=args.steps, learning_rate=args.lr, max_shift=args.shift,
                  param=args.param, init=init, diversity=args.diversity, seed=args.seed,
                  progress=not args.no_progress)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    if args.channels is not None:
        chans = parse_ints(args.channels, "--channels")
        res = visualize_channels(backend, args.layer, chans, **common)
        fig = grid(res.images, [f"{args.layer} ch {c}" for c in chans])
        path = args.out / f"features_{args.layer}_channels.png"
        fig.savefig(path, dpi=100)
        print(f"wrote {path}")
    else:
        if args.unit is not None:
            c, y, x = (parse_ints(args.unit, "--unit") + [None, None, None])[:3]  # type: ignore[list-item]
            obj = feature_objective(args.layer, unit=(c, y, x))  # type: ignore[arg-type]
            tag = f"unit_{args.unit.replace(',', '_')}"
        elif args.channel is not None:
            obj = feature_objective(args.layer, channel=args.channel)
            tag = f"channel_{args.channel}"
        else:
            obj = feature_objective(args.layer)
            tag = "layer"
        res = maximize(backend, obj, batch=args.batch, **common)
        for i in range(res.images.shape[0]):
            suffix = f"_{i}" if res.images.shape[0] > 1 else ""
            save(res.images[i : i + 1], args.out / f"features_{args.layer}_{tag}{suffix}.png")
    h = res.history
    if h:
        print(f"objective {h[0]:.4g} -> {h[-1]:.4g} in {len(h)} steps ({res.seconds:.1f} s)")
    return 0
