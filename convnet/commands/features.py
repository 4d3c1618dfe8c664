"""``convnet features``: feature visualisation of a neuron, a channel or a whole layer.

    convnet features fire4 --channel 10 --size 128 --steps 200 --init random
    convnet features mixed1 --unit 30,9,9 --model keras:inception_v3      # one neuron
    convnet features conv_pw_5_relu --channels 0,1,2,3 --model keras:mobilenet --alpha 0.25

Writes ``features_<layer>_<what>.png`` (a grid for ``--channels``) into ``--out``.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet._io import atomic_save_figure
from convnet.commands._common import add_output_args, parse_ints, save
from convnet.commands._model import add_model_args, load_model


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
    p.add_argument("--steps", type=int, default=2000, help="Adam steps (2000)")
    p.add_argument("--size", type=int, default=200, help="image side in pixels (200)")
    p.add_argument("--shift", type=int, default=None,
                   help="jitter in pixels (default 8 robust, 4 jitter)")  # fmt: skip
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 1e-3 pixel, 0.05 fourier)")  # fmt: skip
    p.add_argument("--init", default="0.0",
                   help="start: a constant offset in [-1, 1] (default 0) or 'random'")  # fmt: skip
    p.add_argument("--param", choices=("fourier", "pixel"), default="fourier",
                   help="image parameterisation (fourier: decorrelated, Lucid)")  # fmt: skip
    p.add_argument("--transforms", choices=("robust", "jitter"), default=None,
                   help="robust: pad, jitter, scale, rotate (Lucid; default with fourier); "
                        "jitter: random shift only (default with pixel)")  # fmt: skip
    p.add_argument("--diversity", type=float, default=0.0,
                   help="diversity weight (with --channels or --batch)")  # fmt: skip
    p.add_argument("--batch", type=int, default=1, help="images optimised together")
    add_model_args(p, classifier=False)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.features import feature_objective, grid, maximize, visualize_channels

    backend = load_model(args)
    init: Any = args.init if args.init == "random" else float(args.init)
    common = dict(size=args.size, steps=args.steps, learning_rate=args.lr, max_shift=args.shift,
                  param=args.param, init=init, diversity=args.diversity, seed=args.seed,
                  progress=not args.no_progress, transforms=args.transforms)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    if args.channels is not None:
        chans = parse_ints(args.channels, "--channels")
        res = visualize_channels(backend, args.layer, chans, **common)
        fig = grid(res.images, [f"{args.layer} ch {c}" for c in chans])
        path = args.out / f"features_{args.layer}_channels.png"
        atomic_save_figure(fig, path, dpi=100)
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
