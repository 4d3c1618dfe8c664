"""Autoencoders and a variational autoencoder on MNIST, in convnet (the models of
F. Chollet, *Deep Learning with Python*, 2017, section 8.4, and Kingma & Welling 2014).

Trains on MNIST: the dense autoencoder with a 2-D and a 100-D code, the deep convolutional
autoencoder with a 2-D code, and the variational autoencoder with a 2-D latent space; writes
every figure of :mod:`convnet.viz.latent` per model and a text summary with the
reconstruction error of each model on the test set, the 5-NN accuracy in code space and the
VAE's ELBO terms.

    python experiments/autoencoders.py --out runs/autoencoders            # the full run
    python experiments/autoencoders.py --subset 5000 --epochs 1 --out /tmp/ae   # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from convnet.generative import load_mnist_unit, train_autoencoder, write_autoencoder_figures

RUNS = (
    # name, kind, latent dimension
    ("dense2", "dense", 2),
    ("dense100", "dense", 100),
    ("conv2", "conv", 2),
    ("vae2", "vae", 2),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/autoencoders"))
    p.add_argument("--epochs", type=int, default=3, help="epochs per model (reference: 3)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--subset", type=int, default=None, help="train on the first N digits")
    p.add_argument("--only", nargs="*", default=None, help="names of the runs to do")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    data = load_mnist_unit(args.subset)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, kind, latent in RUNS:
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        model, _, history = train_autoencoder(
            kind, latent_dim=latent, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, seed=args.seed, data=data, verbose=True,
        )
        seconds = time.perf_counter() - start
        model.save(args.out / f"{name}.npz")
        summary = write_autoencoder_figures(model, data, args.out, prefix=f"{name}_")
        summary["train_seconds"] = round(seconds, 1)
        summary["final_train_loss"] = float(history["loss_history"][-1])
        results[name] = summary
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()), flush=True)

    lines = [
        f"MNIST, {len(data['X_train'])} training digits, {args.epochs} epochs, Adam "
        f"{args.lr:g}, batch {args.batch_size}",
        "",
        f"{'model':<10} {'test MSE/pixel':>15} {'5-NN acc':>9} {'BCE/img':>8} {'KL/img':>7} "
        f"{'-ELBO':>7} {'train s':>8}",
    ]
    def fmt(s: dict, key: str, spec: str) -> str:
        return format(s[key], spec) if key in s else "-"

    for name, s in results.items():

        cells = [fmt(s, "mse", "15.5f"), fmt(s, "knn_acc", "9.3f"), fmt(s, "bce", "8.1f"),
                 fmt(s, "kl", "7.2f"), fmt(s, "neg_elbo", "7.1f"), fmt(s, "train_seconds", "8.0f")]
        widths = (15, 9, 8, 7, 7, 8)
        row = " ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        lines.append(f"{name:<10} {row}")
    text = "\n".join(lines)
    print(text)
    (args.out / "summary.txt").write_text(text + "\n")
    (args.out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
