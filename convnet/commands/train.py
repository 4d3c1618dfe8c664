"""``convnet train``: train a classic model on MNIST or CIFAR-10 and write its pictures.

    convnet train mnist --epochs 1                        # BasicConvNet, all 50000 digits
    convnet train mnist --subset 40 --epochs 100          # the exercise's 40-digit subset
    convnet train cifar10 --model basic --epochs 5 --out runs/cifar

Writes to ``--out``: ``model.npz`` (loads with ``Sequential.load``), ``curves.png`` (loss;
train/validation accuracy), ``filters.png`` (the first conv layer's weights) and
``summary.json`` (settings, accuracies, times, histories). Prints per-epoch progress and the
final test accuracy. ``run_training`` is the same thing as a function (the experiments use it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("basic", "fc", "mnistconv", "threelayer")
DATASETS = ("mnist", "cifar10")


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
                   help="basic: BasicConvNet (default); fc: FullyConnectedNet; mnistconv: the "
                        "course notebook's 5x11x11 net (inputs in [-1, 1]); threelayer: cs231n")
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
    p.add_argument("--filters", type=int, default=None, help="conv filters (basic: 32)")
    p.add_argument("--filter-size", type=int, default=None, help="conv filter size (basic: 5)")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden units (basic: 100; fc: comma-separated list, default 100)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="evaluate on the first N test images only (default: all 10000)")
    p.add_argument("--val-samples", type=int, default=None,
                   help="per-epoch validation accuracy on a random N of the validation "
                        "images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    p.add_argument("--out", type=Path, default=Path("runs/train"),
                   help="folder for model.npz, curves.png, filters.png, summary.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.set_defaults(func=run)


def load_dataset(dataset: str, model: str = "basic", subset: int | None = None,
                 data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The data dict for ``dataset`` as ``model`` wants it (float32 NCHW).

    MNIST: pixels in [0, 1] (``mnistconv``: [-1, 1], as the course notebook), the course's
    50000/10000 train/validation split. CIFAR-10: pixels in [-1, 1], the last 1000 training
    images for validation. ``subset`` keeps the first N training images.
    """
    from convnet.data import load_cifar10, load_mnist

    if dataset == "mnist":
        rng = (-1.0, 1.0) if model == "mnistconv" else (0.0, 1.0)
        data = load_mnist(data_dir, dtype="float32", value_range=rng)
    elif dataset == "cifar10":
        data = load_cifar10(data_dir, dtype="float32", value_range=(-1.0, 1.0))
    else:
        raise ValueError(f"train: unknown dataset {dataset!r}; expected one of {DATASETS}")
    if subset is not None:
        if not 1 <= subset <= len(data["X_train"]):
            raise ValueError(
                f"train: --subset must be in [1, {len(data['X_train'])}], got {subset}"
            )
        data["X_train"] = data["X_train"][:subset]
        data["y_train"] = data["y_train"][:subset]
    return data


def build_model(model: str, input_dim: tuple[int, ...], num_classes: int = 10,
                filters: int | None = None, filter_size: int | None = None,
                hidden: str | int | None = None, reg: float = 0.0, seed: int = 0):
    """One of the classic models for inputs ``input_dim = (C, H, W)``."""
    from convnet.models import BasicConvNet, FullyConnectedNet, MnistConvNet, ThreeLayerConvNet

    if model == "basic":
        return BasicConvNet(input_dim, num_filters=filters or 32, filter_size=filter_size or 5,
                            hidden_dim=int(hidden or 100), num_classes=num_classes, reg=reg,
                            seed=seed)
    if model == "threelayer":
        return ThreeLayerConvNet(input_dim, num_filters=filters or 32,
                                 filter_size=filter_size or 7, hidden_dim=int(hidden or 100),
                                 num_classes=num_classes, reg=reg, seed=seed)
    if model == "mnistconv":
        return MnistConvNet(input_dim, num_filters=filters or 5, filter_size=filter_size or 11,
                            num_classes=num_classes, reg=reg, seed=seed)
    if model == "fc":
        dims = [int(h) for h in str(hidden or "100").split(",") if h.strip()]
        return FullyConnectedNet(dims, input_dim=input_dim, num_classes=num_classes, reg=reg,
                                 seed=seed)
    raise ValueError(f"train: unknown model {model!r}; expected one of {MODELS}")


def run_training(
    dataset: str = "mnist",
    model: str = "basic",
    epochs: int = 1,
    batch_size: int = 50,
    lr: float = 1e-3,
    update: str = "adam",
    lr_decay: float = 1.0,
    reg: float = 0.0,
    subset: int | None = None,
    filters: int | None = None,
    filter_size: int | None = None,
    hidden: str | int | None = None,
    test_samples: int | None = None,
    val_samples: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    verbose: bool = True,
    data: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the test set and (with ``out``) write model, curves and filters.

    ``data`` may be passed to reuse an already loaded data dict (then ``subset`` still
    applies). Returns a summary dict: ``test_acc`` (with the best-validation parameters the
    Solver restores), ``test_acc_last_epoch``, ``best_val_acc``, ``train_seconds``,
    ``eval_seconds``, ``num_train``, ``history`` and the settings; ``summary['model']`` and
    ``summary['solver']`` hold the objects (not written to JSON).
    """
    from convnet.solver import Solver

    if epochs < 1 or batch_size < 1:
        raise ValueError("train: --epochs and --batch-size must be >= 1")
    if subset is not None and subset < 1:
        raise ValueError(f"train: --subset must be >= 1, got {subset}")
    if data is None:
        data = load_dataset(dataset, model, subset)
    elif subset is not None:
        data = {**data, "X_train": data["X_train"][:subset], "y_train": data["y_train"][:subset]}
    net = build_model(model, tuple(data["X_train"].shape[1:]), 10, filters, filter_size, hidden,
                      reg, seed)
    n = len(data["X_train"])
    if verbose:
        print(f"training {type(net).__name__} on {n} {dataset} images for {epochs} epoch(s), "
              f"{update} lr {lr:g}, batch {batch_size}")
    solver = Solver(net, data, update_rule=update, optim_config={"learning_rate": lr},
                    lr_decay=lr_decay, batch_size=batch_size, num_epochs=epochs,
                    num_train_samples=1000, num_val_samples=val_samples, seed=seed, verbose=verbose)
    t0 = time.perf_counter()
    solver.train()
    train_s = time.perf_counter() - t0
    X_test, y_test = data["X_test"], data["y_test"]
    if test_samples is not None:
        X_test, y_test = X_test[:test_samples], y_test[:test_samples]
    t0 = time.perf_counter()
    test_acc = net.accuracy(X_test, y_test, batch_size=500)
    eval_s = time.perf_counter() - t0
    # The Solver restored the best-validation parameters; the last epoch's may differ.
    test_acc_last = test_acc
    last = solver.last_params
    if last is not None and any(not np.array_equal(v, net.params[k]) for k, v in last.items()):
        best = {k: np.array(v, copy=True) for k, v in net.params.items()}
        for k, v in last.items():
            net.params[k] = v
        test_acc_last = net.accuracy(X_test, y_test, batch_size=500)
        for k, v in best.items():
            net.params[k] = v
    summary: dict[str, Any] = {
        "dataset": dataset, "model": model, "epochs": epochs, "batch_size": batch_size,
        "lr": lr, "update": update, "lr_decay": lr_decay, "reg": reg, "seed": seed,
        "num_train": n, "num_test": len(X_test), "test_acc": test_acc,
        "test_acc_last_epoch": test_acc_last,
        "best_val_acc": float(solver.best_val_acc) if solver.val_acc_history else None,
        "train_seconds": train_s, "eval_seconds": eval_s,
        "history": {
            "loss_history": [float(v) for v in solver.loss_history],
            "train_acc_history": solver.train_acc_history,
            "val_acc_history": solver.val_acc_history,
        },
    }
    if verbose:
        print(f"test accuracy {test_acc:.4f} on {len(X_test)} images with the best-validation "
              f"parameters ({test_acc_last:.4f} with the last epoch's); training {train_s:.1f} s, "
              f"evaluation {eval_s:.1f} s")
    if out is not None:
        summary["files"] = write_outputs(net, solver, summary, Path(out))
        if verbose:
            print("wrote " + ", ".join(summary["files"]))
    summary["model_obj"], summary["solver"] = net, solver
    return summary


def write_outputs(model, solver, summary: dict[str, Any], out: Path) -> list[str]:
    """model.npz, curves.png, filters.png (if the model has a conv layer), summary.json."""
    from convnet.models import Conv2D
    from convnet.viz import plot_curves, plot_filters

    out.mkdir(parents=True, exist_ok=True)
    files = [str(model.save(out / "model.npz"))]
    title = f"{type(model).__name__} on {summary['dataset']} ({summary['num_train']} images)"
    files.append(str(plot_curves(solver, out / "curves.png", title=title)))
    conv = next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)
    if conv is not None:
        files.append(str(plot_filters(conv.params["W"], out / "filters.png",
                                      title=f"{conv.name} filters {conv.params['W'].shape}")))
    serial = {k: v for k, v in summary.items() if k not in ("model_obj", "solver", "files")}
    path = out / "summary.json"
    path.write_text(json.dumps(serial, indent=1))
    files.append(str(path))
    return files


def run(args: argparse.Namespace) -> int:
    run_training(
        dataset=args.dataset, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, update=args.update, lr_decay=args.lr_decay, reg=args.reg,
        subset=args.subset, filters=args.filters, filter_size=args.filter_size,
        hidden=args.hidden, test_samples=args.test_samples, val_samples=args.val_samples,
        seed=args.seed, out=args.out,
        verbose=not args.quiet,
    )
    return 0
