"""The kit's ``Solver``: minibatch training with the kit's keywords and bookkeeping.

    solver = Solver(model, data, update_rule='sgd', optim_config={'learning_rate': 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100, print_every=100)
    solver.train()

``model`` has ``params`` (a dict name -> array) and ``loss(X, y=None)`` (scores without y,
``(loss, grads)`` with it); ``data`` holds X_train, y_train, X_val, y_val.

What it does, as the kit does:

- each iteration draws ``batch_size`` training indices WITH replacement from NumPy's global
  random state (``_random.choice``); an epoch is ``max(N // batch_size, 1)`` iterations;
- after every epoch the learning rate of every parameter is multiplied by ``lr_decay``;
- the accuracies are measured after the first iteration, after every epoch and after the
  last iteration, each on a random subsample (``num_train_samples``/``num_val_samples``,
  drawn with replacement; None: the whole set), so ``train_acc_history`` and
  ``val_acc_history`` have ``num_epochs + 1`` entries; ``loss_history`` has one per
  iteration;
- the parameters of the best validation accuracy are kept in ``best_params`` and put into
  the model at the end of ``train()``.

Differences from the kit: checkpoints (``checkpoint_name``) are written, after every epoch,
as ``<checkpoint_name>_epoch_<e>.npz`` (no pickle, written atomically): the model's
parameters as ``params/<name>`` arrays and a JSON ``__state__`` with the hyperparameters,
epoch and histories; :func:`load_checkpoint` reads one back. ``update_rule`` may also be a
callable. convnet's native :class:`convnet.solver.Solver` (epochs without replacement,
resumable checkpoints, a divergence guard) is the one to use outside the kit's notebooks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convnet.cs231n import _random, optim
from convnet.models.sequential import atomic_savez

__all__ = ["Solver", "load_checkpoint"]

_FORMAT = "convnet-cs231n-solver-checkpoint-1"
_RULES = {name: getattr(optim, name) for name in optim.__all__}


class Solver:
    """Train a classification model (see the module docstring).

    Inputs:
    - model: object with ``params`` and ``loss(X, y=None)``.
    - data: dict with 'X_train', 'y_train', 'X_val', 'y_val'.

    Optional keyword arguments (the kit's, with its defaults):
    - update_rule: 'sgd' (default), 'sgd_momentum', 'rmsprop', 'adam' (or a callable).
    - optim_config: hyperparameters for the rule; each parameter gets its own copy.
    - lr_decay (1.0), batch_size (100), num_epochs (10).
    - num_train_samples (1000), num_val_samples (None): subsample sizes for the accuracies.
    - checkpoint_name (None): prefix of the per-epoch checkpoint files.
    - print_every (10): print the loss every that many iterations (with verbose).
    - verbose (True).

    Unknown keywords raise ValueError.
    """

    def __init__(self, model: Any, data: Mapping[str, np.ndarray], **kwargs: Any) -> None:
        self.model = model
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"Solver: data is missing {missing}")
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        rule = kwargs.pop("update_rule", "sgd")
        self.optim_config: dict[str, Any] = dict(kwargs.pop("optim_config", {}))
        self.lr_decay = kwargs.pop("lr_decay", 1.0)
        self.batch_size = int(kwargs.pop("batch_size", 100))
        self.num_epochs = int(kwargs.pop("num_epochs", 10))
        self.num_train_samples = kwargs.pop("num_train_samples", 1000)
        self.num_val_samples = kwargs.pop("num_val_samples", None)
        self.checkpoint_name = kwargs.pop("checkpoint_name", None)
        self.print_every = int(kwargs.pop("print_every", 10))
        self.verbose = kwargs.pop("verbose", True)
        if kwargs:
            raise ValueError(f"Solver: unrecognized arguments {', '.join(map(str, kwargs))}")
        if callable(rule):
            self.update_rule: Callable = rule
        elif rule in _RULES:
            self.update_rule = _RULES[rule]
        else:
            raise ValueError(
                f'Solver: invalid update_rule "{rule}"; choose one of {sorted(_RULES)}'
            )
        self.update_rule_name = rule if isinstance(rule, str) else getattr(rule, "__name__", "")
        self._reset()

    def _reset(self) -> None:
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {
            k: np.array(v, copy=True) for k, v in self.model.params.items()
        }
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self) -> None:
        batch_mask = _random.choice(self.X_train.shape[0], self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch_mask], self.y_train[batch_mask])
        self.loss_history.append(float(loss))
        for p, w in self.model.params.items():
            next_w, self.optim_configs[p] = self.update_rule(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w

    def check_accuracy(
        self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None,
        batch_size: int = 100,
    ) -> float:
        """Accuracy of the model on X (N, ...) / y (N,), on ``num_samples`` samples drawn
        with replacement from ``np.random`` when given and smaller than N; the scores are
        computed in batches of ``batch_size``."""
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = _random.choice(N, num_samples)
            X, y, N = X[mask], y[mask], num_samples
        preds = [
            np.argmax(self.model.loss(X[i:i + batch_size]), axis=1)
            for i in range(0, N, batch_size)
        ]
        return float(np.mean(np.hstack(preds) == y)) if preds else 0.0

    def _save_checkpoint(self) -> Path | None:
        if self.checkpoint_name is None:
            return None
        state = {
            "format": _FORMAT,
            "update_rule": self.update_rule_name,
            "lr_decay": self.lr_decay,
            "optim_config": {k: v for k, v in self.optim_config.items()
                             if not isinstance(v, np.ndarray)},
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": self.loss_history,
            "train_acc_history": self.train_acc_history,
            "val_acc_history": self.val_acc_history,
        }
        arrays = {f"params/{k}": np.asarray(v) for k, v in self.model.params.items()}
        arrays["__state__"] = np.array(json.dumps(state))
        path = Path(f"{self.checkpoint_name}_epoch_{self.epoch}.npz")
        if self.verbose:
            print(f'Saving checkpoint to "{path}"')
        return atomic_savez(path, arrays)

    def _record_accuracy(self) -> None:
        train_acc = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self._save_checkpoint()
        if self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                  f"val_acc: {val_acc:f}")
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}

    def train(self) -> None:
        """Run ``num_epochs`` epochs of optimisation, then load ``best_params`` into the
        model."""
        iterations_per_epoch = max(self.X_train.shape[0] // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        for t in range(num_iterations):
            self._step()
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: "
                      f"{self.loss_history[-1]:f}")
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    config["learning_rate"] = config["learning_rate"] * self.lr_decay
            if t == 0 or t == num_iterations - 1 or epoch_end:
                self._record_accuracy()
        for k, v in self.best_params.items():
            self.model.params[k] = v


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :class:`Solver`.

    Returns the JSON state (hyperparameters, epoch, histories) as a dict, with the model's
    parameters under ``'params'`` (a dict name -> array).
    """
    with np.load(path, allow_pickle=False) as z:
        if "__state__" not in z.files:
            raise ValueError(f"load_checkpoint: {path} is not a cs231n Solver checkpoint")
        state = json.loads(str(z["__state__"]))
        state["params"] = {k[len("params/"):]: z[k] for k in z.files if k.startswith("params/")}
    if state.get("format") != _FORMAT:
        raise ValueError(f"load_checkpoint: {path} has unknown format {state.get('format')!r}")
    return state
