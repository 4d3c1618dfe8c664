"""``convnet autoencoder train|sample``: train an autoencoder or VAE on MNIST, draw its space."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


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
    s.add_argument("--grid", type=int, default=15)
    s.add_argument("--radius", type=float, default=3.0, help="linear grid over [-r, r]")
    s.add_argument("--quantiles", action="store_true",
                   help="grid of Normal quantiles instead of a linear grid")
    s.add_argument("--out", type=Path, default=None, help="PNG path (default: next to MODEL)")
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


def run_sample(args: argparse.Namespace) -> int:
    from convnet.models.autoencoder import load_autoencoder
    from convnet.viz.latent import manifold_grid

    model = load_autoencoder(args.model)
    if model.latent_dim != 2:
        raise ValueError(
            f"{args.model}: the manifold picture needs a 2-D code, this model has "
            f"latent_dim={model.latent_dim}"
        )
    out = args.out or args.model.with_name(
        f"manifold_{'quantiles' if args.quantiles else 'linear'}_{args.grid}.png"
    )
    path, _ = manifold_grid(model.decode, out, n=args.grid, radius=args.radius,
                            quantiles=args.quantiles)
    print(f"wrote {path}")
    return 0
