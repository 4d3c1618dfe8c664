"""``convnet train``: train a classic model on MNIST or CIFAR-10 and write its pictures.

    convnet train mnist --epochs 1                        # BasicConvNet, all 50000 digits
    convnet train mnist --subset 40 --epochs 100          # overfit 40 digits (a sanity check)
    convnet train cifar10 --model basic --epochs 5 --out runs/cifar
    convnet train cifar10 --model basic --epochs 5 --out runs/cifar --resume   # after Ctrl-C

Writes to ``--out``: ``run.json`` (settings) and ``checkpoint.npz`` (the training state,
rewritten after every epoch) from the start; at the end ``model.npz`` (loads with
``Sequential.load``), ``curves.png`` (loss; train/validation accuracy), ``filters.png`` (the
first conv layer's weights) and ``summary.json`` (settings, architecture, accuracies, times,
histories). Prints per-epoch progress and the final test accuracy. The same as a function:
``convnet.training.run_training``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from convnet.commands._common import interrupted_hint
from convnet.training import (  # noqa: F401 - build_model etc. stay importable from here
    DATASETS,
    MODELS,
    build_model,
    load_dataset,
    run_training,
    write_outputs,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train BasicConvNet (or fc, mnistconv) on MNIST or CIFAR-10",
        description=(
            "Train a classic model with the Solver, print per-epoch progress and the test "
            "accuracy, and save the model, its training curves and its first-layer filters."
        ),
    )
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--model", choices=MODELS, default="basic",
                   help="basic: BasicConvNet (default); fc: FullyConnectedNet; mnistconv: "
                        "MnistConvNet, 5 filters of 11x11 (inputs in [-1, 1]); threelayer: "
                        "ThreeLayerConvNet (cs231n)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    p.add_argument("--batch-size", type=int, default=50, help="minibatch size (default 50)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--update", default="adam",
                   choices=("sgd", "sgd_momentum", "nesterov", "rmsprop", "adam"),
                   help="update rule (default adam)")
    p.add_argument("--lr-decay", type=float, default=1.0, help="per-epoch factor (default 1)")
    p.add_argument("--reg", type=float, default=0.0, help="L2 strength")
    p.add_argument("--subset", type=int, default=None,
                   help="train on the first N training images only (e.g. 40)")
    p.add_argument("--filters", type=int, default=None,
                   help="conv filters (basic, threelayer: 32; mnistconv: 5)")
    p.add_argument("--filter-size", type=int, default=None,
                   help="conv filter size (basic: 5; threelayer: 7; mnistconv: 11)")
    p.add_argument("--hidden", default=None, metavar="H[,H...]",
                   help="hidden units (basic, threelayer: 100; fc: a comma-separated list "
                        "of layer sizes such as 100,50, default 100)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="evaluate on the first N test images only (default: all 10000)")
    p.add_argument("--val-samples", type=int, default=None,
                   help="per-epoch validation accuracy on a random N of the validation "
                        "images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    p.add_argument("--out", type=Path, default=Path("runs/train"),
                   help="run folder: run.json and checkpoint.npz (every epoch), then "
                        "model.npz, curves.png, filters.png, summary.json (default runs/train)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its last checkpoint "
                        "(same options; --epochs may grow)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace another run already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        run_training(
            dataset=args.dataset, model=args.model, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, update=args.update, lr_decay=args.lr_decay,
            reg=args.reg, subset=args.subset, filters=args.filters,
            filter_size=args.filter_size, hidden=args.hidden, test_samples=args.test_samples,
            val_samples=args.val_samples, seed=args.seed, out=args.out,
            verbose=not args.quiet, resume=args.resume, overwrite=args.overwrite,
        )
    except KeyboardInterrupt:
        interrupted_hint(args.out)
        raise
    return 0
