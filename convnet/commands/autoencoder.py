"""``convnet autoencoder train|sample``: train an autoencoder or VAE on MNIST, draw its space.

    convnet autoencoder train --kind vae --latent 2 --epochs 3 --out runs/vae
    convnet autoencoder train --kind vae --latent 2 --epochs 3 --out runs/vae --resume
    convnet autoencoder sample runs/vae/model.npz --grid 15 --quantiles --out grid.jpg

``train`` checks its options and ``--out`` before loading anything, writes ``run.json`` and a
checkpoint (after every epoch) into ``--out``, and at the end the model, its pictures and
``summary.json``. ``sample`` writes the format its ``--out`` extension names (any format
Pillow writes: .png, .jpg, .webp, .tif, ...).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
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
#: Files ``autoencoder train`` writes into ``--out`` (``--overwrite`` removes exactly these).
RUN_FILES = ("run.json", "checkpoint.npz", "model.npz", "summary.json", "reconstructions.png",
             "latent_scatter.png", "manifold_linear.png", "manifold_quantiles.png",
             "code_dims.png", "interpolation.png")


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
    t.add_argument("--grid", type=int, default=15,
                   help=f"manifold grid size (2-D codes; 1..{MAX_GRID})")
    t.add_argument("--out", type=Path, default=Path("runs/autoencoder"))
    t.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its last checkpoint")
    t.add_argument("--overwrite", action="store_true",
                   help="replace another run already in --out")
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
    s.add_argument("--out", type=Path, default=None,
                   help="image path; the extension names the format (default: a PNG next to "
                        "MODEL)")
    add_max_memory_arg(s)
    s.set_defaults(func=run_sample)


def _check_grid(grid: int) -> None:
    if not 1 <= grid <= MAX_GRID:
        raise ValueError(f"--grid must be in [1, {MAX_GRID}], got {grid}")


def check_train_options(args: argparse.Namespace) -> None:
    """ValueError naming the first option out of range (before anything is loaded)."""
    for name in ("epochs", "batch_size", "latent", "subset"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    if not (math.isfinite(args.beta) and args.beta >= 0):
        raise ValueError(f"--beta must be a finite number >= 0, got {args.beta}")
    _check_grid(args.grid)


def run_train(args: argparse.Namespace) -> int:
    from convnet.generative import train_autoencoder, write_autoencoder_figures
    from convnet.training import prepare_run_folder

    check_train_options(args)
    settings = {"kind": args.kind, "latent": args.latent, "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "beta": args.beta,
                "course_loss": args.course_loss, "subset": args.subset, "seed": args.seed}
    resume = prepare_run_folder(args.out, settings, args.resume, args.overwrite, RUN_FILES)
    start = time.perf_counter()
    try:
        model, data, history = train_autoencoder(
            args.kind, latent_dim=args.latent, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, beta=args.beta, course_loss=args.course_loss, subset=args.subset,
            seed=args.seed, verbose=not args.quiet,
            checkpoint_path=args.out / "checkpoint.npz", resume=resume is not None,
        )
    except KeyboardInterrupt:
        from convnet.commands._common import interrupted_hint

        interrupted_hint(args.out)
        raise
    seconds = time.perf_counter() - start
    path = model.save(args.out / "model.npz")
    summary = write_autoencoder_figures(model, data, args.out, grid=args.grid)
    from convnet._io import atomic_write_text

    atomic_write_text(args.out / "summary.json", json.dumps(
        {**settings, "train_seconds": seconds, **summary,
         "loss_history": [float(v) for v in history["loss_history"]]}, indent=1))
    print(f"trained {args.kind} (latent {args.latent}) in {seconds:.0f} s; saved {path}")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def image_format(path: Path) -> str:
    """The Pillow format that ``path``'s extension names; ValueError for one Pillow cannot
    write."""
    from PIL import Image

    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(
            f"--out {path}: unknown image extension {path.suffix or '(none)'!r}; use .png, "
            ".jpg, .webp, .tif or another format Pillow writes"
        )
    return fmt


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
    from convnet.errors import NonFiniteError

    out = args.out or args.model.with_name(
        f"manifold_{'quantiles' if args.quantiles else 'linear'}_{args.grid}.png"
    )
    check_out_file(out)
    fmt = image_format(out)
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

    write_manifold(decode, out, fmt, args.grid, args.radius, args.quantiles)
    print(f"wrote {out}")
    return 0


def write_manifold(decode, out: Path, fmt: str, grid: int, radius: float,
                   quantiles: bool) -> None:
    """The decoded-grid figure as ``fmt`` (a Pillow format name) at ``out``, atomically."""
    from PIL import Image

    from convnet._io import atomic_write
    from convnet.viz.latent import manifold_grid

    if fmt == "PNG":
        manifold_grid(decode, out, n=grid, radius=radius, quantiles=quantiles)
        return
    with tempfile.TemporaryDirectory() as tmp:
        png, _ = manifold_grid(decode, Path(tmp) / "grid.png", n=grid, radius=radius,
                               quantiles=quantiles)
        with Image.open(png) as im:
            # formats without an alpha channel (JPEG, ...) get the figure on white
            im = im.convert("RGB")
            with atomic_write(out, "wb") as f:
                im.save(f, format=fmt)
