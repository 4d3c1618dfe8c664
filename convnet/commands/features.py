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
from convnet.commands._common import (
    MAX_SIDE,
    Watch,
    add_max_memory_arg,
    add_output_args,
    check_budget,
    check_layers,
    check_out_dir,
    finite_float,
    image_side,
    int_range,
    nonneg_float,
    nonneg_int,
    parse_ints,
    positive_float,
    positive_int,
    run_interruptible,
    save,
)
from convnet.commands._model import add_model_args, load_model

_OFFSET = finite_float(min=-1, max=1)


def _init(text: str) -> float | str:
    """``--init``: 'random' or a constant offset in [-1, 1]."""
    if text == "random":
        return text
    try:
        return _OFFSET(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be 'random' or a number in [-1, 1], got {text!r}"
        ) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "features",
        help="visualise what a neuron, channel or layer responds to",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("layer", help="layer name (e.g. fire4, mixed1, conv_pw_5_relu)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--channel", type=nonneg_int, default=None,
                      help="maximise this channel's mean")  # fmt: skip
    what.add_argument("--unit", default=None, metavar="C,Y,X", help="maximise one neuron")
    what.add_argument("--channels", default=None, metavar="C1,C2,...",
                      help="several channels, rendered together into one grid")  # fmt: skip
    p.add_argument("--steps", type=positive_int, default=2000, help="Adam steps (2000)")
    p.add_argument("--size", type=image_side, default=200, help="image side in pixels (200)")
    p.add_argument("--shift", type=int_range(0, MAX_SIDE), default=None,
                   help="jitter in pixels (default 8 robust, 4 jitter)")  # fmt: skip
    p.add_argument("--lr", type=positive_float, default=None,
                   help="Adam learning rate (default 1e-3 pixel, 0.05 fourier)")  # fmt: skip
    p.add_argument("--init", type=_init, default=0.0,
                   help="start: a constant offset in [-1, 1] (default 0) or 'random'")  # fmt: skip
    p.add_argument("--param", choices=("fourier", "pixel"), default="fourier",
                   help="image parameterisation (fourier: decorrelated, Lucid)")  # fmt: skip
    p.add_argument("--transforms", choices=("robust", "jitter"), default=None,
                   help="robust: pad, jitter, scale, rotate (Lucid; default with fourier); "
                        "jitter: random shift only (default with pixel)")  # fmt: skip
    p.add_argument("--diversity", type=nonneg_float, default=0.0,
                   help="diversity weight (with --channels or --batch)")  # fmt: skip
    p.add_argument("--batch", type=int_range(1, 1024), default=1,
                   help="images optimised together (1..1024)")  # fmt: skip
    add_model_args(p, classifier=False)
    add_output_args(p)
    add_max_memory_arg(p)
    p.set_defaults(func=run)


def _objective(args: argparse.Namespace) -> tuple[Any, str]:
    """(objective, file tag) for --unit, --channel or the whole layer."""
    from convnet.inputgrad.features import feature_objective

    if args.unit is not None:
        unit = parse_ints(args.unit, "--unit")
        if not 1 <= len(unit) <= 3 or min(unit) < 0:
            raise ValueError(f"--unit must be C or C,Y,X, non-negative integers; got {args.unit!r}")
        c, y, x = (unit + [None, None])[:3]  # type: ignore[list-item]
        return feature_objective(args.layer, unit=(c, y, x)), f"unit_{'_'.join(map(str, unit))}"
    if args.channel is not None:
        return feature_objective(args.layer, channel=args.channel), f"channel_{args.channel}"
    return feature_objective(args.layer), "layer"


def _check_channels(backend: Any, layer: str, chans: list[int], size: int) -> None:
    """Refuse channel indices the layer does not have (probe at a small size)."""
    if not chans:
        return
    import numpy as np

    side = min(size, 96) if backend.input_shape is None else None
    shape = (1, *backend.input_shape) if side is None else (1, backend.input_space.channels,
                                                             side, side)  # fmt: skip
    n = np.asarray(backend.forward(np.zeros(shape, np.float32), [layer])[layer]).shape[1]
    bad = [c for c in chans if not 0 <= c < n]
    if bad:
        raise ValueError(f"layer {layer} has channels 0..{n - 1}; got {bad}: pass a channel "
                         f"(--channel/--channels/--unit) below {n}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.features import grid, maximize, visualize_channels

    check_out_dir(args.out)
    chans = parse_ints(args.channels, "--channels") if args.channels is not None else None
    if chans is not None and (not chans or min(chans) < 0):
        raise ValueError(f"--channels must be non-negative integers, got {args.channels!r}")
    obj, tag = (None, "channels") if chans is not None else _objective(args)
    backend = load_model(args)
    check_layers(backend, [args.layer], "layer")
    wanted = chans or ([args.channel] if args.channel is not None else [])
    if args.unit is not None:
        wanted = parse_ints(args.unit, "--unit")[:1]
    _check_channels(backend, args.layer, wanted, args.size)
    hw = tuple(backend.input_shape[1:]) if backend.input_shape is not None else (args.size,) * 2
    images = len(chans) if chans is not None else args.batch
    from convnet._memory_budget import EXTRA_BYTES

    check_budget(args, backend, hw, "lower --size, --batch or the number of --channels",
                 images=images, extra_per_pixel=EXTRA_BYTES[args.param])  # fmt: skip
    common = dict(size=args.size, steps=args.steps, learning_rate=args.lr, max_shift=args.shift,
                  param=args.param, init=args.init, diversity=args.diversity, seed=args.seed,
                  progress=not args.no_progress, transforms=args.transforms)  # fmt: skip
    watch = Watch(lambda a: a, "lower --lr")
    stem = f"features_{args.layer}_{tag}"
    if chans is not None:
        res = run_interruptible(lambda: visualize_channels(
            backend, args.layer, chans, callback=watch, **common), watch,
            args.out / f"{stem}_partial.png")  # fmt: skip
    else:
        res = run_interruptible(lambda: maximize(backend, obj, batch=args.batch, callback=watch,
                                                 **common), watch,
                                args.out / f"{stem}_partial.png")  # fmt: skip
    if res is None:
        return 130
    watch.check(res.images, "the end")
    if chans is not None:
        fig = grid(res.images, [f"{args.layer} ch {c}" for c in chans])
        path = args.out / f"{stem}.png"
        atomic_save_figure(fig, path, dpi=100)
        print(f"wrote {path}")
    else:
        for i in range(res.images.shape[0]):
            suffix = f"_{i}" if res.images.shape[0] > 1 else ""
            save(res.images[i : i + 1], args.out / f"{stem}{suffix}.png")
    h = res.history
    if h:
        print(f"objective {h[0]:.4g} -> {h[-1]:.4g} in {len(h)} steps ({res.seconds:.1f} s)")
    return 0
