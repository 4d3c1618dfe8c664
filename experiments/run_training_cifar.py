"""BasicConvNet on CIFAR-10 and a picture of its filters.

Trains on whichever ``data_batch_*`` files are present (the last 1000 images validate),
reports the test accuracy on the 10000 test images (a few epochs give just over 40%) and
writes the model, curves and ``filters.png`` (conv1's weights ``(F, 3, HH, WW)``: one colour
tile per filter, F tiles in a grid, each HH x WW pixels) to ``--out``::

    python experiments/run_training_cifar.py --out runs/cifar --epochs 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from convnet.training import run_training


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/cifar"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--filters", type=int, default=32)
    ap.add_argument("--filter-size", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--reg", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    s = run_training("cifar10", "basic", epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, reg=args.reg, filters=args.filters,
                     filter_size=args.filter_size, hidden=args.hidden, seed=args.seed,
                     out=args.out, verbose=not args.quiet)
    line = (f"CIFAR-10 BasicConvNet, {s['num_train']} training images, {args.epochs} epochs: "
            f"test accuracy {s['test_acc']:.4f} (best val {s['best_val_acc']:.4f}), "
            f"training {s['train_seconds']:.1f} s")
    print(line)
    (args.out / "summary.txt").write_text(line + "\n")
    keep = ("num_train", "epochs", "test_acc", "best_val_acc", "train_seconds")
    (args.out / "result.json").write_text(json.dumps({k: s[k] for k in keep}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
