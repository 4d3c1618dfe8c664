"""``convnet autoencoder train|sample``: train an autoencoder or VAE on MNIST, draw its space."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from convnet.commands._common import (
    add_max_memory_arg,
    check_out_file,
    finite_float,
    int_range,
    npz_reason,
)

# The picture is 800 pixels wide: beyond 800 codes a side a digit is less than a pixel.
MAX_GRID = 800
# Peak memory per pixel of the tiled picture ((28 * grid) ** 2 pixels): the float64 canvas,
# the decoded batch and matplotlib's resampled copies; measured 95 bytes at --grid 120.
SAMPLE_BYTES_PER_PIXEL = 128


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "autoencoder",
        help="train an autoencoder or VAE on MNIST; draw its latent space",
        description="Autoencoders and a variational autoencoder on MNIST (see "
        "convnet.models.autoencoder).",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="train a model and write it with its pictures")
    t.add_argument("--kind", choices=("dense", "conv", "vae"), default="vae")
    t.add_argument("--latent", type=int, default=2, help="latent dimension (default 2)")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--beta", type=float, default=1.0, help="VAE: weight of the KL term")
    t.add_argument("--course-loss", action="store_true",
                   help="VAE: the loss weighting of Chollet's Deep Learning with Python, "
                        "section 8.4 (pixel-mean BCE + 5e-4 KL)")
    t.add_argument("--subset", type=int, default=None, help="train on the first N digits")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--grid", type=int, default=15, help="manifold grid size (2-D codes)")
    t.add_argument("--out", type=Path, default=Path("runs/autoencoder"))
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)

    s = sub.add_parser("sample", help="decode a grid of latent points of a saved model")
    s.add_argument("model", type=Path, help="a model.npz written by 'autoencoder train'")
    s.add_argument("--grid", type=int_range(1, MAX_GRID), default=15,
                   help=f"grid of N x N codes (default 15, at most {MAX_GRID})")
    s.add_argument("--radius", type=finite_float(min=0, min_open=True, max=100), default=3.0,
                   help="linear grid over [-r, r] (0 < r <= 100)")
    s.add_argument("--quantiles", action="store_true",
                   help="grid of Normal quantiles instead of a linear grid")
    s.add_argument("--out", type=Path, default=None, help="PNG path (default: next to MODEL)")
    add_max_memory_arg(s)
    s.set_defaults(func=run_sample)


def run_train(args: argparse.Namespace) -> int:
    from convnet.generative import train_autoencoder, write_autoencoder_figures

    if args.epochs < 1 or args.batch_size < 1 or args.latent < 1:
        raise ValueError("--epochs, --batch-size and --latent must be positive")
    start = time.perf_counter()
    model, data, history = train_autoencoder(
        args.kind, latent_dim=args.latent, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, beta=args.beta, course_loss=args.course_loss, subset=args.subset,
        seed=args.seed, verbose=not args.quiet,
    )
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    path = model.save(args.out / "model.npz")
    summary = write_autoencoder_figures(model, data, args.out, grid=args.grid)
    print(f"trained {args.kind} (latent {args.latent}) in {seconds:.0f} s; saved {path}")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def _load_sample_model(path: Path):
    """``load_autoencoder`` with a damaged file reported in one line naming it."""
    import zipfile

    from convnet.errors import CheckpointError
    from convnet.models.autoencoder import load_autoencoder

    if path.is_dir():
        raise CheckpointError(f"model {path} is a folder, not a model.npz file")
    if not path.is_file():
        raise FileNotFoundError(f"model {path} does not exist")
    try:
        return load_autoencoder(path)
    except (EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, TypeError) as exc:
        what = "empty" if path.is_file() and path.stat().st_size == 0 else "damaged"
        raise CheckpointError(
            f"model {path} is {what} or not written by 'convnet autoencoder train' "
            f"({npz_reason(exc)}); train it again"
        ) from exc


def run_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from convnet._memory_budget import check_memory
    from convnet.errors import ConvnetError, NonFiniteError
    from convnet.viz.latent import manifold_grid

    out = args.out or args.model.with_name(
        f"manifold_{'quantiles' if args.quantiles else 'linear'}_{args.grid}.png"
    )
    check_out_file(out)
    if out.suffix.lower() != ".png":  # the picture is PNG data; another suffix would lie
        raise ConvnetError(f"--out {out}: the manifold picture is written as PNG; give the "
                           "file a .png name")  # fmt: skip
    model = _load_sample_model(args.model)
    if model.latent_dim != 2:
        raise ValueError(
            f"{args.model}: the manifold picture needs a 2-D code, this model has "
            f"latent_dim={model.latent_dim}"
        )
    side = 28 * args.grid
    check_memory(SAMPLE_BYTES_PER_PIXEL * side * side, args.max_memory, "lower --grid",
                 who="convnet autoencoder sample")  # fmt: skip

    def decode(z):  # checked before anything is drawn, so a bad model writes no picture
        images = model.decode(z)
        if not np.all(np.isfinite(images)):
            raise NonFiniteError(f"{args.model}: the decoded digits are NaN or Inf (the model "
                                 "diverged in training): train it again with a lower --lr")
        return images

    path, _ = manifold_grid(decode, out, n=args.grid, radius=args.radius,
                            quantiles=args.quantiles)  # fmt: skip
    print(f"wrote {path}")
    return 0
