"""Train a classic model on MNIST or CIFAR-10 and write its pictures (what ``convnet train`` runs).

    summary = run_training("mnist", model="basic", epochs=1, out="runs/mnist")
    summary["test_acc"], summary["model_obj"]          # accuracy, the trained Sequential

With ``out`` it writes ``model.npz`` (loads with ``Sequential.load``), ``curves.png`` (loss;
train/validation accuracy), ``filters.png`` (the first conv layer's weights) and
``summary.json`` (settings, accuracies, times, histories), each atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from convnet._io import atomic_write_text

__all__ = ["MODELS", "DATASETS", "load_dataset", "build_model", "run_training", "write_outputs"]

MODELS = ("basic", "fc", "mnistconv", "threelayer")
DATASETS = ("mnist", "cifar10")


def load_dataset(dataset: str, model: str = "basic", subset: int | None = None,
                 data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The data dict for ``dataset`` as ``model`` wants it (float32 NCHW).

    MNIST: pixels in [0, 1] (``mnistconv``: [-1, 1]), the usual 50000/10000 split of the
    60000 training images into train/validation. CIFAR-10: pixels in [-1, 1], the last 1000 training
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
    atomic_write_text(path, json.dumps(serial, indent=1))
    files.append(str(path))
    return files
