"""Training curves (loss per iteration; train/validation accuracy per epoch) as a PNG, and the
loss terms of an input optimisation (style transfer) over its steps."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convnet.viz.grid import save_figure

__all__ = ["plot_curves", "plot_losses", "history_of"]

_KEYS = ("loss_history", "train_acc_history", "val_acc_history")


def history_of(history: Mapping[str, Any] | Any) -> dict[str, np.ndarray]:
    """The curves of a history dict or of an object with those attributes (a Solver).

    Returns: {key: 1-D float array} for each of ``loss_history``, ``train_acc_history``,
    ``val_acc_history`` that is present and non-empty.
    """
    out: dict[str, np.ndarray] = {}
    for key in _KEYS:
        v = history.get(key) if isinstance(history, Mapping) else getattr(history, key, None)
        if v is None:
            continue
        a = np.asarray(v, dtype=np.float64).ravel()
        if a.size:
            out[key] = a
    return out


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    return (c[n:] - c[:-n]) / n


def plot_curves(
    history: Mapping[str, Any] | Any,
    path: str | os.PathLike,
    title: str | None = None,
    smooth: int | None = None,
) -> Path:
    """Plot the loss and the accuracies of a training run and save them as a PNG.

    Inputs:
    - history: a dict with ``loss_history`` (one loss per iteration), ``train_acc_history``
      and ``val_acc_history`` (one value per epoch), or an object with those attributes
      (a :class:`convnet.solver.Solver`). Missing curves are left out. The i-th accuracy
      is drawn at epoch i (1-based: measured at the end of that epoch).
    - path: PNG to write (atomically).
    - title: figure title.
    - smooth: window of the moving average drawn over the raw loss (default: about 1/50 of
      the iterations, off for short runs).

    Returns: the path written. Left panel: loss vs iteration (log scale when the loss
    spans more than two decades); right panel: accuracy vs epoch, train and validation.
    Raises ValueError when the history has none of the three curves.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    h = history_of(history)
    if not h:
        raise ValueError(f"plot_curves: history has none of {', '.join(_KEYS)} (or all are empty)")
    loss = h.get("loss_history")
    accs = {k: h[k] for k in ("train_acc_history", "val_acc_history") if k in h}
    panels = (loss is not None) + bool(accs)
    fig = Figure(figsize=(5.5 * panels, 4.0))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    i = 0
    if loss is not None:
        ax = axes[i]
        i += 1
        it = np.arange(1, loss.size + 1)
        ax.plot(it, loss, ".", ms=2, alpha=0.4, color="tab:blue", label="minibatch loss")
        n = smooth if smooth is not None else max(1, loss.size // 50)
        if n > 1 and loss.size > n:
            ax.plot(it[n - 1 :], _moving_average(loss, n), color="tab:blue", label=f"mean of {n}")
        finite = loss[np.isfinite(loss) & (loss > 0)]
        if finite.size and finite.max() / finite.min() > 100:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.set_title("training loss")
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    if accs:
        ax = axes[i]
        names = {"train_acc_history": "train", "val_acc_history": "validation"}
        for k, v in accs.items():
            ax.plot(np.arange(1, v.size + 1), v, "o-", ms=3, label=names[k])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_losses(
    history: Mapping[str, Any], path: str | os.PathLike, title: str = ""
) -> Path:
    """The total, style, content and TV losses of a style transfer over the steps (log scale).

    Inputs:
    - history: {"total" | "style" | "content" | "tv": one weighted loss per step}, as in
      ``convnet.inputgrad.style.style_transfer(...).history``; missing or all-zero terms are
      left out.
    - path: PNG to write (atomically).
    - title: figure title.

    Returns: the path written.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for k in ("total", "style", "content", "tv"):
        v = history.get(k, [])
        if len(v) and max(v) > 0:
            ax.plot(range(len(v)), v, label=k)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, path)
