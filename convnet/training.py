"""Train a classic model on MNIST or CIFAR-10 and write its pictures (what ``convnet train`` runs).

    summary = run_training("mnist", model="basic", epochs=1, out="runs/mnist")
    summary["test_acc"], summary["model_obj"]          # accuracy, the trained Sequential
    run_training("mnist", epochs=2, out="runs/mnist", resume=True)   # after an interruption

With ``out`` it writes ``run.json`` (the settings) and ``checkpoint.npz`` (the complete
training state, see :class:`convnet.solver.Solver`) before the first step and the
checkpoint again after every epoch; at the end ``model.npz`` (loads with ``Sequential.load``
and records the input space it was trained on), ``curves.png`` (loss; train/validation
accuracy), ``filters.png`` (the first conv layer's weights) and ``summary.json`` (settings,
architecture, accuracies, times, histories), each atomically. ``resume=True`` continues the
checkpoint bit for bit; a folder holding another run is refused unless ``overwrite=True``.
Every option and the output folder are checked before any data is loaded.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convnet._io import atomic_write_text

__all__ = ["MODELS", "DATASETS", "RUN_FILES", "load_dataset", "build_model", "architecture",
           "run_training", "write_outputs", "check_out_folder", "prepare_run_folder",
           "value_range"]

MODELS = ("basic", "fc", "mnistconv", "threelayer")
DATASETS = ("mnist", "cifar10")
#: What a run folder holds; ``--overwrite`` removes exactly these before a new run.
RUN_FILES = ("run.json", "checkpoint.npz", "model.npz", "curves.png", "filters.png",
             "summary.json")
#: Defaults of the architecture options per model (None: the option does not apply).
_ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "basic": {"filters": 32, "filter_size": 5, "hidden": [100]},
    "threelayer": {"filters": 32, "filter_size": 7, "hidden": [100]},
    "mnistconv": {"filters": 5, "filter_size": 11, "hidden": None},
    "fc": {"filters": None, "filter_size": None, "hidden": [100]},
}
_SPACES = {("L", (0.0, 1.0)): "mnist_0_1", ("L", (-1.0, 1.0)): "mnist_minus1_1",
           ("RGB", (0.0, 1.0)): "unit_rgb", ("RGB", (-1.0, 1.0)): "tf_minus1_1"}


def value_range(dataset: str, model: str = "basic") -> tuple[float, float]:
    """The pixel range ``model`` is trained on: MNIST [0, 1] (``mnistconv`` [-1, 1]),
    CIFAR-10 [-1, 1]."""
    if dataset == "mnist":
        return (-1.0, 1.0) if model == "mnistconv" else (0.0, 1.0)
    if dataset == "cifar10":
        return (-1.0, 1.0)
    raise ValueError(f"train: unknown dataset {dataset!r}; expected one of {DATASETS}")


def input_space_name(dataset: str, model: str = "basic") -> str:
    """The ``convnet.backend.INPUT_SPACES`` name of the inputs ``model`` is trained on."""
    order = "L" if dataset == "mnist" else "RGB"
    return _SPACES[(order, value_range(dataset, model))]


def load_dataset(dataset: str, model: str = "basic", subset: int | None = None,
                 data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The data dict for ``dataset`` as ``model`` wants it (float32 NCHW).

    MNIST: pixels in [0, 1] (``mnistconv``: [-1, 1]), the usual 50000/10000 split of the
    60000 training images into train/validation. CIFAR-10: pixels in [-1, 1], the last 1000
    training images for validation. ``subset`` keeps the first N training images.
    """
    from convnet.data import load_cifar10, load_mnist

    rng = value_range(dataset, model)
    if dataset == "mnist":
        data = load_mnist(data_dir, dtype="float32", value_range=rng)
    else:
        data = load_cifar10(data_dir, dtype="float32", value_range=rng)
    if subset is not None:
        if not 1 <= subset <= len(data["X_train"]):
            raise ValueError(
                f"train: --subset must be in [1, {len(data['X_train'])}], got {subset}"
            )
        data["X_train"] = data["X_train"][:subset]
        data["y_train"] = data["y_train"][:subset]
    return data


def _parse_hidden(hidden: str | int | Sequence[int]) -> list[int]:
    if isinstance(hidden, int | np.integer):
        return [int(hidden)]
    if isinstance(hidden, str):
        try:
            return [int(h) for h in hidden.split(",")]
        except ValueError:
            raise ValueError(
                f"train: --hidden must be an integer or a comma list such as 100,50, got "
                f"{hidden!r}"
            ) from None
    return [int(h) for h in hidden]


def architecture(model: str, filters: int | None = None, filter_size: int | None = None,
                 hidden: str | int | Sequence[int] | None = None) -> dict[str, Any]:
    """The architecture options of ``model`` with defaults filled in, checked.

    Returns ``{"filters": F, "filter_size": K, "hidden": [H1, ...]}`` (None where an option
    does not apply to the model). Raises ValueError for a size below 1, an option the model
    does not have, or several hidden sizes for a model with one hidden layer.
    """
    if model not in _ARCH_DEFAULTS:
        raise ValueError(f"train: unknown model {model!r}; expected one of {MODELS}")
    arch = dict(_ARCH_DEFAULTS[model])
    given = {"filters": filters, "filter_size": filter_size,
             "hidden": None if hidden is None else _parse_hidden(hidden)}
    for key, value in given.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if arch[key] is None:
            raise ValueError(f"train: {flag} does not apply to --model {model}")
        values = value if isinstance(value, list) else [value]
        if not values or any(int(v) < 1 for v in values):
            raise ValueError(f"train: {flag} must be >= 1, got {value}")
        if key == "hidden" and model != "fc" and len(values) != 1:
            raise ValueError(
                f"train: --model {model} has one hidden layer; --hidden takes one size "
                f"(a comma list is for --model fc), got {hidden}"
            )
        arch[key] = value if isinstance(value, list) else int(value)
    return arch


def build_model(model: str, input_dim: tuple[int, ...], num_classes: int = 10,
                filters: int | None = None, filter_size: int | None = None,
                hidden: str | int | Sequence[int] | None = None, reg: float = 0.0,
                seed: int = 0):
    """One of the classic models for inputs ``input_dim = (C, H, W)``.

    Options left None take the model's defaults (see :func:`architecture`); options that
    do not apply, or sizes below 1, raise ValueError.
    """
    from convnet.models import BasicConvNet, FullyConnectedNet, MnistConvNet, ThreeLayerConvNet

    arch = architecture(model, filters, filter_size, hidden)
    f, k, h = arch["filters"], arch["filter_size"], arch["hidden"]
    if model == "basic":
        return BasicConvNet(input_dim, num_filters=f, filter_size=k, hidden_dim=h[0],
                            num_classes=num_classes, reg=reg, seed=seed)
    if model == "threelayer":
        return ThreeLayerConvNet(input_dim, num_filters=f, filter_size=k, hidden_dim=h[0],
                                 num_classes=num_classes, reg=reg, seed=seed)
    if model == "mnistconv":
        return MnistConvNet(input_dim, num_filters=f, filter_size=k, num_classes=num_classes,
                            reg=reg, seed=seed)
    return FullyConnectedNet(h, input_dim=input_dim, num_classes=num_classes, reg=reg,
                             seed=seed)


def _positive(name: str, value: float | None, strict: bool = True) -> None:
    if value is None:
        return
    ok = math.isfinite(value) and (value > 0 if strict else value >= 0)
    if not ok:
        raise ValueError(f"train: {name} must be a finite number {'>' if strict else '>='} 0, "
                         f"got {value}")


def check_options(epochs: int, batch_size: int, lr: float, lr_decay: float, reg: float,
                  subset: int | None, test_samples: int | None,
                  val_samples: int | None) -> None:
    """ValueError naming the first option out of its range (before anything is loaded)."""
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size),
                        ("--subset", subset), ("--test-samples", test_samples),
                        ("--val-samples", val_samples)):
        if value is not None and value < 1:
            raise ValueError(f"train: {name} must be >= 1, got {value}")
    _positive("--lr", lr)
    _positive("--lr-decay", lr_decay)
    _positive("--reg", reg, strict=False)


def check_out_folder(out: Path, what: str = "--out") -> None:
    """Create ``out`` if needed and make sure files can be written in it.

    Raises ValueError in one line when ``out`` is a file, lies under a file, or is not
    writable, so that a run fails before its first step rather than after its last.
    """
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == out else f"lies under the file {parent}"
            raise ValueError(f"{what} {out} {where}; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {out} is not writable ({exc.strerror or exc})") from None


def _has_work(out: Path) -> bool:
    """True when ``out`` holds a trained model or a checkpoint past its first step (a run
    that stopped before any step, e.g. one that diverged at once, has nothing to lose)."""
    if (out / "model.npz").exists():
        return True
    ckpt = out / "checkpoint.npz"
    if not ckpt.exists():
        return False
    try:
        with np.load(ckpt, allow_pickle=False) as z:
            return int(json.loads(str(z["__state__"]))["iteration"]) > 0
    except Exception:  # noqa: BLE001 - unreadable: treat as work, never delete it unasked
        return True


def _read_run(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return None


def prepare_run_folder(out: Path, settings: Mapping[str, Any], resume: bool = False,
                       overwrite: bool = False, run_files: Sequence[str] = RUN_FILES,
                       keep_on_resume: Sequence[str] = ("epochs",)) -> Path | None:
    """Check ``out`` for a new or resumed run; returns the checkpoint to resume from or None.

    ``settings`` (JSON-able) identify the run and are written to ``out/run.json``. A folder
    holding a trained model or a checkpoint is refused unless ``overwrite`` (its run files are
    then removed) or ``resume`` (the checkpoint's run must have the same settings, apart from
    ``keep_on_resume``); a finished run with exactly these settings may be run again.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    check_out_folder(out)
    ckpt = out / "checkpoint.npz"
    present = [f for f in run_files if (out / f).exists()]
    old = _read_run(out)
    old_settings = old.get("settings") if old else None
    if resume:
        if not ckpt.is_file():
            raise ValueError(f"--resume: {out} holds no checkpoint.npz to continue; "
                             "start without --resume")
        differ = sorted(k for k in {*settings, *(old_settings or {})} if k not in keep_on_resume
                        and (old_settings or {}).get(k) != settings.get(k))
        if old_settings is None or differ:
            detail = ", ".join(f"{k} {(old_settings or {}).get(k)!r} -> {settings.get(k)!r}"
                               for k in differ) if old_settings else "no run.json"
            raise ValueError(f"--resume: the run in {out} has other settings ({detail}); "
                             "resume with the same options or choose another --out")
    elif not overwrite and _has_work(out):
        if old_settings == dict(settings) and "summary.json" in present:
            pass  # the same finished run again: it reproduces what is there
        elif old_settings == dict(settings):
            raise ValueError(f"--out {out} holds an unfinished run with these settings: add "
                             "--resume to continue it or --overwrite to start again")
        else:
            raise ValueError(f"--out {out} holds another run ({', '.join(present)}): choose "
                             "another --out, or add --overwrite to replace it")
    else:  # --overwrite, or nothing worth keeping: no stale file of the old run stays
        for f in present:
            (out / f).unlink()
    atomic_write_text(out / "run.json", json.dumps({"settings": dict(settings)}, indent=1))
    return ckpt if resume else None


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
    hidden: str | int | Sequence[int] | None = None,
    test_samples: int | None = None,
    val_samples: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    verbose: bool = True,
    data: dict[str, np.ndarray] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    divergence_factor: float | None = 10.0,
) -> dict[str, Any]:
    """Train, evaluate on the test set and (with ``out``) write model, curves and filters.

    ``data`` may be passed to reuse an already loaded data dict (then ``subset`` still
    applies). With ``out`` a checkpoint is written before the first step and after every
    epoch; ``resume=True`` continues it (bit-identical to an uninterrupted run, ``epochs``
    may grow), ``overwrite=True`` replaces another run in ``out``. ``divergence_factor``
    goes to the Solver's loss guard (None disables it). Every option and ``out`` are checked
    before the data is loaded (ValueError naming the option).

    Returns a summary dict: ``test_acc`` (with the best-validation parameters the Solver
    restores), ``test_acc_last_epoch``, ``best_val_acc``, ``train_seconds``,
    ``eval_seconds``, ``num_train``, ``architecture``, ``input_space``, ``history`` and the
    settings; ``summary['model_obj']`` and ``summary['solver']`` hold the objects (not
    written to JSON).
    """
    from convnet.backend import INPUT_SPACES
    from convnet.solver import Solver

    check_options(epochs, batch_size, lr, lr_decay, reg, subset, test_samples, val_samples)
    value_range(dataset, model)  # unknown dataset
    arch = architecture(model, filters, filter_size, hidden)
    settings = {"dataset": dataset, "model": model, "epochs": epochs, "batch_size": batch_size,
                "lr": lr, "update": update, "lr_decay": lr_decay, "reg": reg, "subset": subset,
                "architecture": arch, "val_samples": val_samples, "seed": seed}
    ckpt = None
    if out is not None:
        out = Path(out)
        ckpt = prepare_run_folder(out, settings, resume, overwrite)
    elif resume:
        raise ValueError("train: resume needs the run folder (out)")
    if data is None:
        data = load_dataset(dataset, model, subset)
    elif subset is not None:
        data = {**data, "X_train": data["X_train"][:subset], "y_train": data["y_train"][:subset]}
    net = build_model(model, tuple(data["X_train"].shape[1:]), 10, arch["filters"],
                      arch["filter_size"], arch["hidden"], reg, seed)
    space = input_space_name(dataset, model)
    net.input_space = INPUT_SPACES[space]()
    n = len(data["X_train"])
    if ckpt is not None:
        solver = Solver.resume(ckpt, net, data, verbose=verbose, num_epochs=epochs)
        if verbose:
            print(f"resuming {type(net).__name__} on {n} {dataset} images from epoch "
                  f"{solver.epoch} (iteration {solver.iteration}) of {ckpt}")
    else:
        if verbose:
            print(f"training {type(net).__name__} on {n} {dataset} images for {epochs} "
                  f"epoch(s), {update} lr {lr:g}, batch {batch_size}")
        solver = Solver(net, data, update_rule=update, optim_config={"learning_rate": lr},
                        lr_decay=lr_decay, batch_size=batch_size, num_epochs=epochs,
                        num_train_samples=1000, num_val_samples=val_samples, seed=seed,
                        verbose=verbose, divergence_factor=divergence_factor,
                        checkpoint_path=None if out is None else out / "checkpoint.npz")
    t0 = time.perf_counter()
    solver.train()
    train_s = time.perf_counter() - t0
    X_test, y_test = data["X_test"], data["y_test"]
    if test_samples is not None:
        X_test, y_test = X_test[:test_samples], y_test[:test_samples]
    t0 = time.perf_counter()
    test_acc = net.accuracy(X_test, y_test, batch_size=500)
    eval_s = time.perf_counter() - t0
    test_acc_last = _last_epoch_accuracy(net, solver, X_test, y_test, test_acc)
    summary: dict[str, Any] = {
        **settings, "input_space": space,
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
        summary["files"] = write_outputs(net, solver, summary, out)
        if verbose:
            print("wrote " + ", ".join(summary["files"]))
    summary["model_obj"], summary["solver"] = net, solver
    return summary


def _last_epoch_accuracy(net, solver, X_test, y_test, test_acc: float) -> float:
    """Test accuracy with the last epoch's parameters (the Solver restored the best ones)."""
    last = solver.last_params
    if last is None or all(np.array_equal(v, net.params[k]) for k, v in last.items()):
        return test_acc
    best = {k: np.array(v, copy=True) for k, v in net.params.items()}
    for k, v in last.items():
        net.params[k] = v
    acc = net.accuracy(X_test, y_test, batch_size=500)
    for k, v in best.items():
        net.params[k] = v
    return acc


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
