"""``convnet activations``: an image's feature maps at one layer, as a grid picture.

    convnet activations dog.jpg --layer fire2 --out runs/fire2.png
    convnet activations dog.jpg --layer conv1 --max-channels 16 --sort --cmap gray
    convnet activations digit.png --layer relu1 --model runs/mnist.npz --out relu1.png

Each channel is one tile, scaled to its own range (so weak channels stay visible; the
printed table gives the real values), channels in index order or, with ``--sort``, by mean
activation; small maps are enlarged by whole pixels so that each activation stays a square.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from convnet.commands._common import (
    MAX_SIDE,
    check_out_file,
    colour_map,
    colourise,
    int_range,
    load_sized,
    write_image,
)
from convnet.commands._model import add_model_args, load_model


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "activations",
        help="an image's activations at a layer as a grid of feature maps",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="image file")
    p.add_argument("--layer", required=True, help="layer name (e.g. fire2, conv1)")
    p.add_argument("--max-channels", type=int_range(1, 4096), default=64,
                   help="show at most this many channels (64)")  # fmt: skip
    p.add_argument("--sort", action="store_true",
                   help="show the most active channels first (by mean activation)")  # fmt: skip
    p.add_argument("--tile", type=int_range(1, 1024), default=64,
                   help="enlarge maps to at least this many pixels a side (64)")  # fmt: skip
    p.add_argument("--cmap", type=colour_map, default="viridis",
                   help="matplotlib colour map (viridis)")  # fmt: skip
    p.add_argument("--size", type=int_range(8, MAX_SIDE), default=None,
                   help="resize the image to SIZE x SIZE (default: the model's input size, "
                   "227 for size-free models)")  # fmt: skip
    add_model_args(p, classifier=False)
    p.add_argument("--out", type=Path, default=Path("activations.png"),
                   help="output PNG (default activations.png)")  # fmt: skip
    p.set_defaults(func=run)


def channel_tiles(act: np.ndarray, max_channels: int, sort: bool) -> tuple[np.ndarray, np.ndarray]:
    """(K, h, w) maps -> (chosen channel indices, tiles each scaled to [0, 1])."""
    order = np.argsort(-act.mean(axis=(1, 2)), kind="stable") if sort else np.arange(len(act))
    order = order[:max_channels]
    tiles = act[order].astype(np.float64)
    lo = tiles.min(axis=(1, 2), keepdims=True)
    hi = tiles.max(axis=(1, 2), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return order, (tiles - lo) / span


def grid_picture(tiles: np.ndarray, tile: int, cmap: str) -> np.ndarray:
    """(K, h, w) tiles in [0, 1] -> (G_H, G_W, 3) float 0..255, white gaps between tiles."""
    from convnet.viz.grid import image_grid

    k, h, w = tiles.shape
    f = max(1, -(-tile // max(h, w)))
    big = tiles.repeat(f, axis=1).repeat(f, axis=2)
    rgb = colourise(big, cmap).transpose(0, 3, 1, 2)  # (K, 3, H, W)
    return image_grid(rgb, padding=2, pad_value=255.0)


def run(args: argparse.Namespace) -> int:
    if args.max_channels < 1 or args.tile < 1:
        raise ValueError("--max-channels and --tile must be >= 1")
    check_out_file(args.out, "--out", "activations.png")
    out = args.out if args.out.suffix.lower() == ".png" else args.out.with_suffix(".png")
    check_out_file(out, "--out", "activations.png")
    backend = load_model(args)
    _, x = load_sized(backend, args.image, args.size)
    act = backend.forward(x, [args.layer])[args.layer]
    if act.ndim != 4:
        raise ValueError(
            f"layer {args.layer!r} gives activations of shape {act.shape}, not feature maps "
            "(N, K, h, w)"
        )
    a = act[0]
    order, tiles = channel_tiles(a, args.max_channels, args.sort)
    means = a.mean(axis=(1, 2))
    print(f"{args.layer}: {a.shape[0]} channels of {a.shape[1]}x{a.shape[2]}, "
          f"values {a.min():.3g} .. {a.max():.3g}, {100 * np.mean(a == 0):.0f}% zeros")  # fmt: skip
    shown = ", ".join(f"{int(i)} ({means[i]:.3g})" for i in order[:8])
    print(f"showing {len(order)} channels (mean activation): {shown}"
          + (", ..." if len(order) > 8 else ""))  # fmt: skip
    write_image(grid_picture(tiles, args.tile, args.cmap), out)
    return 0
