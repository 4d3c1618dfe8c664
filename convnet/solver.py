"""The training loop: ``Solver`` (cs231n style) with checkpoints, resume and divergence guards.

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    batch_size=100, num_epochs=5, checkpoint_path="runs/ckpt.npz")
    solver.train()            # the model ends with the best validation parameters
    solver = Solver.resume("runs/ckpt.npz", model, data)   # after an interruption
    solver.train()            # continues exactly where the checkpoint was written

The model is anything with ``params`` (a mutable mapping name -> array, e.g.
``Sequential.params``) and ``loss(X, y=None)`` returning scores without ``y`` and
``(loss, grads)`` with it (grads keyed like params). ``state_dict()``/``load_state_dict()``
are used when present so that buffers (batch-norm running statistics, dropout counters) are
checkpointed too.

Determinism: epoch ``e`` visits the training set in the order
``default_rng([seed, e]).permutation(N)`` in minibatches of ``batch_size`` (the last one may
be smaller), so the order does not depend on anything but the seed and the epoch; the
subsamples for the accuracy estimates come from a Generator whose state is checkpointed.
A resumed run therefore reproduces an uninterrupted one bit for bit.

Divergence guards: a NaN or Inf loss, gradient or parameter stops training at once; so does
a loss that blows up while staying finite (a learning rate far too large typically throws the
loss from ~2 to 1e3..1e20 within a few steps, after which the network may sit, dead, at
chance level). The second guard compares an exponential moving average of the loss
(smoothing 0.9, i.e. about the last 10 iterations) with its starting level, once
``divergence_warmup`` iterations have passed:

    EMA(loss) > divergence_factor * max(first loss, ln(C))

where ``C`` is the number of classes of integer labels (ln C is the loss of a uniform
guess); unsupervised models and other targets use the first loss alone. Healthy runs stay far
below this (measured after the warm-up, one epoch each: BasicConvNet on MNIST at most 0.5 times
its starting level with Adam 1e-3, 2.1 with Adam 1e-2, 0.8 with SGD 0.1; BasicConvNet and
ThreeLayerConvNet on CIFAR-10 1.0; the dense and convolutional autoencoders 1.03 and 0.72;
the VAE 0.67), while SGD at rate 10 or Adam at 1e6 on MNIST exceed it by 100 to 1e21 times
within 10 iterations. Both guards raise
``TrainingDivergedError`` and leave the last checkpoint as it was.

Parameters are updated in place where ``convnet.optim.fused`` applies (the built-in rules on
float32/float64 arrays the model owns): copy an array of ``model.params`` to keep
it. The numbers are those of ``convnet.optim.rules``, bit for bit.

Checkpoints (one ``.npz``, no pickle, written atomically with temp file + ``os.replace``)
hold the model's parameters and buffers (``model/<key>``), the best parameters
(``best/<key>``), the optimiser state arrays (``optim/<param key>/<name>``), the histories
(``hist/<name>``) and a JSON ``__state__`` (epoch, iteration, optimiser scalars, RNG state,
hyperparameters). One is written when training starts, after every epoch and, with
``checkpoint_every=K``, every K iterations.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convnet._threads import single_threaded_blas
from convnet.errors import CheckpointError, TrainingDivergedError
from convnet.models.sequential import atomic_savez
from convnet.optim import fused, get_update_rule

__all__ = ["Solver"]

_FORMAT = "convnet-solver-checkpoint-1"


def _state_of(model: Any) -> dict[str, np.ndarray]:
    if hasattr(model, "state_dict"):
        return model.state_dict()
    return {k: np.array(v, copy=True) for k, v in model.params.items()}


def _load_state(model: Any, state: Mapping[str, np.ndarray], source: str) -> None:
    if hasattr(model, "load_state_dict"):
        model.load_state_dict(state, source=source)
        return
    missing = [k for k in model.params if k not in state]
    if missing:
        raise CheckpointError(f"{source}: parameters missing: {missing}")
    for k in list(model.params):
        model.params[k] = np.array(state[k], copy=True)


class Solver:
    """Minibatch training of a classifier (or, with ``unsupervised=True``, an autoencoder).

    Inputs:
    - model: see the module docstring.
    - data: dict with ``X_train (N, ...)``, ``y_train (N,)``, ``X_val``, ``y_val`` (the
      validation pair is optional; ``y_*`` are not needed when ``unsupervised``). X arrays
      must be floating (the loaders' ``float32``).
    - update_rule: name in ``convnet.optim.UPDATE_RULES`` (``'sgd'``, ``'sgd_momentum'``,
      ``'nesterov'``, ``'rmsprop'``, ``'adam'``).
    - optim_config: hyperparameters given to the rule (e.g. ``{'learning_rate': 1e-3}``);
      every parameter gets its own copy, which then holds that parameter's optimiser state.
    - lr_decay: a float multiplies the learning rate after every epoch (cs231n), or a
      schedule ``f(epoch) -> factor`` from ``convnet.optim.schedules`` sets
      ``learning_rate = base * f(epoch)`` at the start of every epoch.
    - batch_size, num_epochs: minibatch size and the number of passes over the data.
    - num_train_samples: size of the (per epoch newly drawn) training subsample on which the
      per-epoch training accuracy is measured (None: all). num_val_samples: size of the
      validation subsample (None: all), drawn once from the seed so that every epoch is
      validated on the same images.
    - checkpoint_path: where to write checkpoints (None: none). checkpoint_every: also every
      that many iterations.
    - seed: seeds the minibatch order and the accuracy subsamples.
    - verbose: tqdm progress bar and one line per epoch.
    - callbacks: callables ``cb(solver)`` run after every iteration, or objects with
      ``on_batch_end(solver)`` and/or ``on_epoch_end(solver)``. An exception raised by a
      callback stops training (the last checkpoint stays valid).
    - unsupervised: the target is the input (``model.loss(X, X)``); the per-epoch metric is
      the validation loss (``model.eval_loss(X, X)`` if the model has it, else
      ``model.loss(X, X)[0]``) instead of accuracies, and the best parameters are those of
      the lowest validation loss.
    - restore_best: at the end of ``train()`` load the best validation parameters into the
      model (default True, as cs231n); the final ones are kept in ``solver.last_params``.
    - divergence_factor: stop when the smoothed loss exceeds this many times its starting
      level (see the module docstring); None disables this guard (the NaN/Inf guard stays).
    - divergence_warmup: iterations before that guard is first applied.

    After ``train()``: ``loss_history`` (per iteration), ``train_acc_history``,
    ``val_acc_history``, ``val_loss_history``, ``lr_history``, ``epoch_time_history`` (per
    epoch), ``best_val_acc`` / ``best_val_loss``, ``best_params``, ``epoch``, ``iteration``.
    """

    def __init__(
        self,
        model: Any,
        data: Mapping[str, np.ndarray],
        update_rule: str = "adam",
        optim_config: Mapping[str, Any] | None = None,
        lr_decay: float | Callable[[int], float] = 1.0,
        batch_size: int = 100,
        num_epochs: int = 10,
        num_train_samples: int | None = 1000,
        num_val_samples: int | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        seed: int = 0,
        verbose: bool = True,
        callbacks: Iterable[Any] = (),
        unsupervised: bool = False,
        restore_best: bool = True,
        divergence_factor: float | None = 10.0,
        divergence_warmup: int = 10,
    ) -> None:
        self.model = model
        self.unsupervised = bool(unsupervised)
        self.X_train = data.get("X_train")
        self.y_train = data.get("y_train")
        self.X_val = data.get("X_val")
        self.y_val = data.get("y_val")
        self._check_data()
        self.update_rule_name = update_rule if isinstance(update_rule, str) else None
        self.update_rule = get_update_rule(update_rule)
        self.optim_config = dict(optim_config or {})
        if callable(lr_decay):
            self.lr_schedule: Callable[[int], float] | None = lr_decay
            self.lr_decay = 1.0
        else:
            self.lr_schedule = None
            self.lr_decay = float(lr_decay)
        self.batch_size = int(batch_size)
        self.num_epochs = int(num_epochs)
        if self.batch_size < 1 or self.num_epochs < 0:
            raise ValueError("Solver: batch_size must be >= 1 and num_epochs >= 0")
        self.num_train_samples = num_train_samples
        self.num_val_samples = num_val_samples
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = int(checkpoint_every) if checkpoint_every else None
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.callbacks = list(callbacks)
        self.restore_best = bool(restore_best)
        if divergence_factor is not None and not (
            np.isfinite(divergence_factor) and divergence_factor > 1
        ):
            raise ValueError(
                f"Solver: divergence_factor must be a number > 1 or None, got {divergence_factor}"
            )
        self.divergence_factor = None if divergence_factor is None else float(divergence_factor)
        self.divergence_warmup = max(1, int(divergence_warmup))
        self._loss_floor = self._chance_loss()
        self._reset()

    def _chance_loss(self) -> float:
        """ln(C) for integer class labels (the loss of a uniform guess), else 0."""
        y = self.y_train
        if self.unsupervised or y is None or not np.issubdtype(np.asarray(y).dtype, np.integer):
            return 0.0
        return float(np.log(max(2, int(np.max(y)) + 1)))

    def _check_data(self) -> None:
        if self.X_train is None or (self.y_train is None and not self.unsupervised):
            raise ValueError(
                "Solver: data must contain 'X_train' and 'y_train' (only 'X_train' when "
                "unsupervised=True)"
            )
        for name in ("X_train", "X_val"):
            X = getattr(self, name)
            if X is not None and not np.issubdtype(np.asarray(X).dtype, np.floating):
                raise ValueError(
                    f"Solver: data[{name!r}] must be floating (dtype {np.asarray(X).dtype}); "
                    "load it as float32"
                )
        for xn, yn in (("X_train", "y_train"), ("X_val", "y_val")):
            X, y = getattr(self, xn), getattr(self, yn)
            if X is not None and y is not None and len(X) != len(y):
                raise ValueError(f"Solver: {xn} has {len(X)} samples but {yn} has {len(y)}")
        if len(self.X_train) == 0:
            raise ValueError("Solver: X_train is empty")

    def _reset(self) -> None:
        self.epoch = 0  # completed epochs
        self.iteration = 0  # completed iterations, over all epochs
        self.iter_in_epoch = 0  # completed iterations of the current epoch
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.val_loss_history: list[float] = []
        self.lr_history: list[float] = []
        self.epoch_time_history: list[float] = []
        self.best_val_acc = -np.inf
        self.best_val_loss = np.inf
        self.best_params: dict[str, np.ndarray] = {
            k: np.array(v, copy=True) for k, v in self.model.params.items()
        }
        self.last_params: dict[str, np.ndarray] | None = None
        self.optim_configs = {k: dict(self.optim_config) for k in self.model.params}
        self._rng = np.random.default_rng([self.seed, 2**31 - 1])
        # One fixed validation subsample: epochs are compared on the same images, so the
        # best-parameter choice is not swayed by which images happened to be drawn.
        n_val = 0 if self.X_val is None else len(self.X_val)
        if self.num_val_samples is not None and n_val > self.num_val_samples:
            vr = np.random.default_rng([self.seed, 2**31 - 2])
            self._val_idx = np.sort(vr.choice(n_val, self.num_val_samples, replace=False))
        else:
            self._val_idx = np.arange(n_val)
        self._base_lr = self.optim_config.get("learning_rate")
        if self._base_lr is None:
            # the rule's own default, read off a dummy step
            _, cfg = self.update_rule(np.zeros(1), np.zeros(1), dict(self.optim_config))
            self._base_lr = cfg.get("learning_rate")
        self._epoch_started = time.perf_counter()
        self._ema, self._ema_count = 0.0, 0

    # -- one step ---------------------------------------------------------------------------
    @property
    def num_train(self) -> int:
        return len(self.X_train)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.num_train // self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` (from 0) visits the training samples."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_train)

    def _diverged(self, what: str) -> TrainingDivergedError:
        ck = (
            f"the last good checkpoint is {self.checkpoint_path} (epoch {self._ck_epoch}, "
            f"iteration {self._ck_iteration})"
            if self.checkpoint_path is not None and getattr(self, "_ck_epoch", None) is not None
            else "no checkpoint was written (pass checkpoint_path to keep one)"
        )
        lr = self.optim_configs[next(iter(self.optim_configs))].get("learning_rate", "?")
        hint = (f"Lower the learning rate (e.g. to {lr / 10:g})" if isinstance(lr, float | int)
                else "Lower the learning rate")
        return TrainingDivergedError(
            f"training diverged in epoch {self.epoch + 1}, iteration {self.iteration + 1} "
            f"(batch {self.iter_in_epoch + 1} of {self.batches_per_epoch}): {what}; "
            f"learning_rate={lr}; {ck}. {hint} or check the data."
        )

    def _loss_ema(self) -> float:
        """Exponential moving average (0.9) of ``loss_history``, without bias correction
        (kept incrementally; rebuilt when the history was replaced, as on resume)."""
        h = self.loss_history
        if self._ema_count > len(h):
            self._ema, self._ema_count = 0.0, 0
        for v in h[self._ema_count:]:
            self._ema = 0.9 * self._ema + 0.1 * v
        self._ema_count = len(h)
        return self._ema

    def _check_blowup(self, loss: float) -> None:
        """Raise when the smoothed loss, this step's included, is far above where it started."""
        n = len(self.loss_history) + 1
        if self.divergence_factor is None or n == 1 or n < self.divergence_warmup:
            return
        start = max(self.loss_history[0], self._loss_floor)
        ema = (0.9 * self._loss_ema() + 0.1 * loss) / (1.0 - 0.9**n)  # bias-corrected (Adam)
        if start > 0 and ema > self.divergence_factor * start:
            raise self._diverged(
                f"the loss (moving average {ema:.4g}) rose above {self.divergence_factor:g} "
                f"times its starting level {start:.4g}"
            )

    def _step(self, idx: np.ndarray) -> None:
        """One minibatch: loss, gradients, update and the finiteness checks.

        BLAS runs on the calling thread only during the step. The parallel kernels (conv)
        bring their own worker threads; a multithreaded BLAS next to them busy-waits between
        the small matrix products of the dense layers, and on a shared machine those
        spinning threads took three times the CPU time of the whole step (measured on the
        CIFAR-10 BasicConvNet).
        """
        with single_threaded_blas():
            self._train_on(idx)

    def _train_on(self, idx: np.ndarray) -> None:
        X_batch = self.X_train[idx]
        y_batch = X_batch if self.unsupervised else self.y_train[idx]
        # Overflow shows up as inf/nan, which the guard below reports with context.
        with np.errstate(over="ignore", invalid="ignore"):
            loss, grads = self.model.loss(X_batch, y_batch)
        loss = float(loss)
        if not np.isfinite(loss):
            raise self._diverged(f"the loss is {loss}")
        self._check_blowup(loss)
        self._update(grads)
        self.loss_history.append(loss)

    def _update(self, grads: Mapping[str, np.ndarray]) -> None:
        """Apply the update rule to every parameter; stop on a non-finite gradient or result.

        Where ``convnet.optim.fused`` applies, the step is written into the parameter and
        its optimiser state in place (one pass over memory, the rule's numbers); otherwise
        the rule returns a new array that replaces the parameter."""
        params = self.model.params
        for k in list(params):
            outcome = (fused.fused_step(self.update_rule, params[k], grads[k],
                                        self.optim_configs[k])
                       if fused.ENABLED else fused.NOT_APPLICABLE)
            if outcome == fused.NOT_APPLICABLE:
                outcome = self._rule_step(params, k, grads[k])
            if outcome == fused.GRADIENT_NOT_FINITE:
                raise self._diverged(f"the gradient of {k} is not finite")
            if outcome == fused.RESULT_NOT_FINITE:
                raise self._diverged(f"parameter {k} became non-finite after the update")

    def _rule_step(self, params: Any, k: str, g: np.ndarray) -> str | None:
        """The rule's own step for parameter ``k``, with the outcomes of ``fused_step``."""
        if not np.all(np.isfinite(g)):
            return fused.GRADIENT_NOT_FINITE
        with np.errstate(over="ignore", invalid="ignore"):
            next_w, self.optim_configs[k] = self.update_rule(params[k], g,
                                                             self.optim_configs[k])
        if not np.all(np.isfinite(next_w)):
            return fused.RESULT_NOT_FINITE
        params[k] = next_w
        return None

    # -- evaluation -------------------------------------------------------------------------
    def _subsample(self, X, y, num_samples):
        n = len(X)
        if num_samples is not None and n > num_samples:
            mask = np.sort(self._rng.choice(n, num_samples, replace=False))
            X = X[mask]
            y = y[mask] if y is not None else None
        return X, y

    def check_accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None,
                       batch_size: int = 100) -> float:
        """Accuracy of the model on ``X (N, ...)``/``y (N,)`` (a seeded subsample of
        ``num_samples`` when given), computed in test mode in batches."""
        X, y = self._subsample(X, y, num_samples)
        preds = []
        for i in range(0, len(X), batch_size):
            scores = self.model.loss(X[i:i + batch_size])
            preds.append(np.argmax(scores, axis=1))
        return float(np.mean(np.concatenate(preds) == y))

    def check_loss(self, X: np.ndarray, num_samples: int | None = None,
                   batch_size: int = 100) -> float:
        """Mean reconstruction loss of ``X`` (unsupervised mode)."""
        X, _ = self._subsample(X, None, num_samples)
        losses, sizes = [], []
        f = getattr(self.model, "eval_loss", None)
        for i in range(0, len(X), batch_size):
            xb = X[i:i + batch_size]
            losses.append(float(f(xb, xb)) if f else float(self.model.loss(xb, xb)[0]))
            sizes.append(len(xb))
        return float(np.average(losses, weights=sizes))

    def _end_of_epoch(self) -> None:
        self.epoch_time_history.append(time.perf_counter() - self._epoch_started)
        self.lr_history.append(float(self._current_lr()))
        improved = False
        if self.unsupervised:
            if self.X_val is not None:
                vl = self.check_loss(self.X_val[self._val_idx])
                self.val_loss_history.append(vl)
                improved = vl < self.best_val_loss
                if improved:
                    self.best_val_loss = vl
            else:
                improved = True
        else:
            tr = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
            self.train_acc_history.append(tr)
            if self.X_val is not None and self.y_val is not None:
                va = self.check_accuracy(self.X_val[self._val_idx], self.y_val[self._val_idx])
                self.val_acc_history.append(va)
                improved = va > self.best_val_acc
                if improved:
                    self.best_val_acc = va
            else:
                improved = True
        if improved:
            self.best_params = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
        # cs231n: the learning rate decays after every epoch
        if self.lr_schedule is None and self.lr_decay != 1.0:
            for cfg in self.optim_configs.values():
                cfg["learning_rate"] = cfg.get("learning_rate", self._base_lr) * self.lr_decay
        self.epoch += 1
        self.iter_in_epoch = 0

    def _current_lr(self) -> float:
        cfg = self.optim_configs[next(iter(self.optim_configs))]
        return float(cfg.get("learning_rate", self._base_lr))

    def _epoch_line(self) -> str:
        parts = [f"epoch {self.epoch}/{self.num_epochs}"]
        if self.loss_history:
            k = min(self.batches_per_epoch, len(self.loss_history))
            parts.append(f"loss {np.mean(self.loss_history[-k:]):.4f}")
        if self.train_acc_history:
            parts.append(f"train acc {self.train_acc_history[-1]:.4f}")
        if self.val_acc_history:
            parts.append(f"val acc {self.val_acc_history[-1]:.4f}")
        if self.val_loss_history:
            parts.append(f"val loss {self.val_loss_history[-1]:.4f}")
        parts.append(f"lr {self._current_lr():.3g}")
        parts.append(f"{self.epoch_time_history[-1]:.1f} s")
        return ", ".join(parts)

    # -- training loop ----------------------------------------------------------------------
    def _run_callbacks(self, event: str) -> None:
        for cb in self.callbacks:
            method = getattr(cb, f"on_{event}", None)
            if method is not None:
                method(self)
            elif event == "batch_end" and callable(cb):
                cb(self)

    def _run_batches(self, order: np.ndarray, bar: Any) -> None:
        """The rest of the current epoch's minibatches (all of them unless resumed mid-epoch)."""
        for b in range(self.iter_in_epoch, self.batches_per_epoch):
            self._step(order[b * self.batch_size:(b + 1) * self.batch_size])
            self.iter_in_epoch = b + 1
            self.iteration += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{self.loss_history[-1]:.4f}", refresh=False)
            self._run_callbacks("batch_end")
            if (self.checkpoint_every and self.iteration % self.checkpoint_every == 0
                    and self.iter_in_epoch < self.batches_per_epoch):
                self.save_checkpoint()

    def train(self) -> Solver:
        """Train until ``num_epochs`` epochs are complete (continuing a resumed run); returns
        self. Raises ``TrainingDivergedError`` on a non-finite loss, gradient or parameter, or
        a loss that blows up (``divergence_factor``)."""
        if self.checkpoint_path is not None and self.iteration == 0 and self.epoch == 0:
            self.save_checkpoint()
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.num_epochs * self.batches_per_epoch,
                       initial=self.epoch * self.batches_per_epoch + self.iter_in_epoch,
                       unit="batch", dynamic_ncols=True)
        try:
            while self.epoch < self.num_epochs:
                order = self.epoch_order(self.epoch)
                if self.lr_schedule is not None:
                    lr = float(self._base_lr) * float(self.lr_schedule(self.epoch))
                    for cfg in self.optim_configs.values():
                        cfg["learning_rate"] = lr
                if self.iter_in_epoch == 0:
                    self._epoch_started = time.perf_counter()
                if bar is not None:
                    bar.set_description(f"epoch {self.epoch + 1}/{self.num_epochs}")
                self._run_batches(order, bar)
                self._end_of_epoch()
                if self.checkpoint_path is not None:
                    self.save_checkpoint()
                if bar is not None:
                    bar.write(self._epoch_line())
                self._run_callbacks("epoch_end")
        finally:
            if bar is not None:
                bar.close()
        self.last_params = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
        if self.restore_best and self.best_params:
            for k, v in self.best_params.items():
                self.model.params[k] = v.copy()
        return self

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        """Write the complete training state to ``path`` (default ``checkpoint_path``)
        atomically; returns the path."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("Solver.save_checkpoint: no path given and no checkpoint_path set")
        arrays: dict[str, np.ndarray] = {}
        for k, v in _state_of(self.model).items():
            arrays[f"model/{k}"] = np.asarray(v)
        for k, v in self.best_params.items():
            arrays[f"best/{k}"] = v
        optim_scalars: dict[str, dict[str, Any]] = {}
        for k, cfg in self.optim_configs.items():
            scal = {}
            for name, val in cfg.items():
                if isinstance(val, np.ndarray):
                    arrays[f"optim/{k}/{name}"] = val
                elif isinstance(val, np.generic):
                    scal[name] = val.item()
                else:
                    scal[name] = val
            optim_scalars[k] = scal
        for name in ("loss", "train_acc", "val_acc", "val_loss", "lr", "epoch_time"):
            arrays[f"hist/{name}"] = np.asarray(getattr(self, f"{name}_history"), np.float64)
        state = {
            "format": _FORMAT,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "iter_in_epoch": self.iter_in_epoch,
            "best_val_acc": None if np.isinf(self.best_val_acc) else self.best_val_acc,
            "best_val_loss": None if np.isinf(self.best_val_loss) else self.best_val_loss,
            "rng_state": self._rng.bit_generator.state,
            "base_lr": self._base_lr,
            "optim_configs": optim_scalars,
            "hyper": {
                "update_rule": self.update_rule_name,
                "optim_config": {k: v for k, v in self.optim_config.items()
                                 if not isinstance(v, np.ndarray)},
                "lr_decay": "schedule" if self.lr_schedule is not None else self.lr_decay,
                "batch_size": self.batch_size,
                "num_epochs": self.num_epochs,
                "num_train_samples": self.num_train_samples,
                "num_val_samples": self.num_val_samples,
                "checkpoint_every": self.checkpoint_every,
                "seed": self.seed,
                "unsupervised": self.unsupervised,
                "restore_best": self.restore_best,
                "divergence_factor": self.divergence_factor,
                "divergence_warmup": self.divergence_warmup,
            },
        }
        if hasattr(self.model, "get_config"):
            state["model_config"] = self.model.get_config()
        arrays["__state__"] = np.array(json.dumps(state))
        atomic_savez(path, arrays)
        self._ck_epoch, self._ck_iteration = self.epoch, self.iteration
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike, model: Any, data: Mapping[str, np.ndarray],
               **overrides: Any) -> Solver:
        """A Solver continuing the training saved in checkpoint ``path``.

        Inputs:
        - path: a checkpoint written by ``save_checkpoint`` (every epoch during ``train``).
        - model: a model of the same architecture (its parameters are overwritten).
        - data: the same data dict as the original run (the minibatch order is recomputed
          from the seed).
        - overrides: constructor arguments to change (``verbose``, ``callbacks``,
          ``num_epochs`` to train longer, ``checkpoint_path``); ``lr_decay`` must be given
          again when it was a schedule (functions are not stored).

        Returns the Solver; call ``train()`` to go on.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
        if "__state__" not in arrays:
            raise CheckpointError(f"{path}: not a Solver checkpoint (no __state__)")
        state = json.loads(str(arrays["__state__"]))
        if state.get("format") != _FORMAT:
            raise CheckpointError(f"{path}: unknown checkpoint format {state.get('format')!r}")
        hyper = dict(state["hyper"])
        if hyper.get("update_rule") is None and "update_rule" not in overrides:
            raise CheckpointError(f"{path}: the update rule was a function; pass update_rule=")
        if hyper["lr_decay"] == "schedule" and "lr_decay" not in overrides:
            raise CheckpointError(
                f"{path}: the run used a learning-rate schedule; pass it again as lr_decay="
            )
        hyper.update(overrides)
        hyper.setdefault("checkpoint_path", path)
        solver = cls(model, data, **hyper)
        _load_state(model, {k[6:]: v for k, v in arrays.items() if k.startswith("model/")},
                    str(path))
        solver.best_params = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
        configs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in
                                              state["optim_configs"].items()}
        for key, v in arrays.items():
            if key.startswith("optim/"):
                pname, _, field = key[6:].rpartition("/")
                configs.setdefault(pname, {})[field] = v
        if set(configs) != set(model.params):
            raise CheckpointError(
                f"{path}: optimiser state is for parameters {sorted(configs)}, the model has "
                f"{sorted(model.params)}"
            )
        solver.optim_configs = configs
        for name in ("loss", "train_acc", "val_acc", "val_loss", "lr", "epoch_time"):
            setattr(solver, f"{name}_history", [float(v) for v in arrays[f"hist/{name}"]])
        solver.epoch = int(state["epoch"])
        solver.iteration = int(state["iteration"])
        solver.iter_in_epoch = int(state["iter_in_epoch"])
        solver.best_val_acc = (-np.inf if state["best_val_acc"] is None
                               else float(state["best_val_acc"]))
        solver.best_val_loss = (np.inf if state["best_val_loss"] is None
                                else float(state["best_val_loss"]))
        solver._rng.bit_generator.state = state["rng_state"]
        solver._base_lr = state["base_lr"]
        solver._ck_epoch, solver._ck_iteration = solver.epoch, solver.iteration
        return solver
