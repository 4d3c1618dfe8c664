"""Minimal-perturbation attacks: DeepFool and Carlini-Wagner L2.

FGSM asks "what does a step of size eps do?"; these two ask "how small can a change be that
flips the prediction?", so their L2 norm (in pixel levels) is the figure to report.

* :func:`deepfool` (Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method
  to fool deep neural networks", CVPR 2016, Algorithm 2, multi-class): linearise the
  classifier at the current point, step to the nearest linearised decision boundary among the
  ``candidates`` most likely classes, repeat until the top-1 changes; the accumulated step is
  scaled by ``1 + overshoot`` (0.02 in the paper). On an affine classifier the first step is
  exact: the smallest L2 change is ``min_k |f_k - f_label| / ||w_k - w_label||``.
* :func:`carlini_wagner_l2` (Carlini & Wagner, "Towards Evaluating the Robustness of Neural
  Networks", IEEE S&P 2017, the L2 attack): minimise ``||delta||_2^2 + c * f6`` with
  ``f6 = max(Z_label - max_{i != label} Z_i, -kappa)`` (targeted:
  ``max(max_{i != t} Z_i - Z_t, -kappa)``), over a variable ``w`` with
  ``image = (tanh(w) + 1) / 2`` so the image stays in range without clipping; Adam on ``w``,
  and a binary search over ``c`` (x10 while no success, then bisection) keeping the
  smallest successful change.

Both run in **pixel space**: gradients are converted to "per pixel level" with the input
space's per-channel scale, so the minimal norms are pixel L2 norms, not model-unit norms, and
they work unchanged on any backend. Logits ``Z`` are the output layer; when a backend outputs
probabilities, ``log p`` is used instead (it differs from the logits by a per-image constant,
so every difference ``Z_i - Z_j`` and its gradient is the same).

The distance term of Carlini-Wagner is measured in units of the full pixel range (0..1, as in
the paper, where images span 1), so ``c`` has the paper's scale; results are reported in pixel
levels (0..255) like every attack here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convnet.backend import OUTPUT, Backend
from convnet.inputgrad.adversarial import AttackResult, _pixel_col, _result
from convnet.optim.rules import adam

_RANGE = 255.0


def _log_scores(backend: Backend, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f, s): f (N, K) float64 logits (or log-probabilities), s the raw output layer."""
    s = np.asarray(backend.forward(x, [OUTPUT])[OUTPUT])
    f = s.astype(np.float64)
    if backend.output_is_probs:
        f = np.log(np.maximum(f, 1e-30))
    return f, s


def _pixel_grad(backend: Backend, s: np.ndarray, coeff: np.ndarray) -> np.ndarray:
    """Gradient of ``sum(coeff * f)`` w.r.t. the pixels (N, C, H, W) float64, at the last
    forward; ``coeff`` (N, K) are the weights on ``f`` (logits or log-probabilities)."""
    up = coeff
    if backend.output_is_probs:  # d log p / d p = 1 / p
        up = coeff / np.maximum(s.astype(np.float64), 1e-30)
    g = backend.vjp({OUTPUT: up.astype(s.dtype)})
    # x_model = pixels * scale per channel + const, so d/d pixel = d/d x_model * scale
    return np.asarray(g, np.float64) * _pixel_col(backend, np.float64)


def _one_hot(cls: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(cls), k))
    out[np.arange(len(cls)), cls] = 1.0
    return out


def _row_norm(a: np.ndarray) -> np.ndarray:
    return np.sqrt((a.reshape(len(a), -1) ** 2).sum(axis=1))


def _candidates(probs: np.ndarray, k0: np.ndarray, m: int) -> np.ndarray:
    """(N, m): the m most likely classes other than k0, per image (on the clean input)."""
    order = np.argsort(-probs, axis=1, kind="stable")
    return np.stack([row[row != k][:m] for row, k in zip(order, k0, strict=True)])


def _deepfool_step(
    backend: Backend, f: np.ndarray, s: np.ndarray, k0: np.ndarray, cand: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """One DeepFool step in pixel units (N, C, H, W) at the last forward; zero where inactive.

    For each candidate k: ``w_k = grad(f_k - f_k0)``, distance ``|f_k - f_k0| / ||w_k||`` to
    the linearised boundary; the step goes to the nearest one, ``(|f_l| + 1e-4) w_l /
    ||w_l||^2`` (the 1e-4 lands just past the boundary, as the authors' implementation).
    """
    n, k = f.shape
    rows = np.arange(n)
    g0 = _pixel_grad(backend, s, _one_hot(k0, k))
    best = np.full(n, np.inf)
    step = np.zeros(g0.shape)
    for j in range(cand.shape[1]):
        c = cand[:, j]
        w = _pixel_grad(backend, s, _one_hot(c, k)) - g0
        fd = np.abs(f[rows, c] - f[rows, k0])
        wn = _row_norm(w)
        dist = fd / np.maximum(wn, 1e-30)
        better = active & (dist < best)
        best[better] = dist[better]
        coef = (fd + 1e-4) / np.maximum(wn**2, 1e-60)
        step[better] = coef[better, None, None, None] * w[better]
    return step


def deepfool(
    backend: Backend,
    x: np.ndarray,
    label: int | Sequence[int] | np.ndarray | None = None,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    candidates: int = 10,
    clip: bool = True,
) -> AttackResult:
    """DeepFool, multi-class (Moosavi-Dezfooli et al. 2016): the smallest L2 change found by
    stepping to the nearest linearised decision boundary until the top-1 changes.

    Inputs:
    - backend: a :class:`Backend`.
    - x: (N, C, H, W) clean images, model units.
    - label: int or (N,) ints: the class to move away from (default: the clean top-1; the
      attack only runs while the top-1 is ``label``).
    - overshoot: the accumulated step is scaled by ``1 + overshoot`` (0.02 as the paper).
    - max_iter: iteration limit (50 as the paper's implementation).
    - candidates: how many of the most likely other classes are considered (10 as the paper).
    - clip: keep the image inside the pixel range (the paper does not clip; with clipping the
      result is still a valid image, possibly after an extra iteration).

    Returns an :class:`AttackResult`; ``l2`` and ``linf`` are the perturbation in pixel levels
    (``l2 / (1 + overshoot)`` is the minimal distance DeepFool estimates), ``steps`` the
    iterations taken.
    """
    if overshoot < 0 or max_iter < 0 or candidates < 1:
        raise ValueError(
            f"deepfool: need overshoot >= 0, max_iter >= 0 and candidates >= 1, got "
            f"{overshoot}, {max_iter}, {candidates}"
        )
    x = backend.check_input(x)
    n = x.shape[0]
    orig_p = backend.predict_proba(x)
    k0 = orig_p.argmax(axis=1) if label is None else backend.check_class(label, n)
    cand = _candidates(orig_p, k0, min(candidates, orig_p.shape[1] - 1))
    col = _pixel_col(backend, np.float64)
    r_tot = np.zeros(x.shape)  # pixel units
    x_adv = x.copy()
    done = 0
    for _ in range(max_iter):
        f, s = _log_scores(backend, x_adv)
        active = f.argmax(axis=1) == k0
        if not active.any():
            break
        r_tot += _deepfool_step(backend, f, s, k0, cand, active)
        x_adv = (x + (1.0 + overshoot) * r_tot * col).astype(x.dtype)
        if clip:
            x_adv = backend.input_space.clip(x_adv)
        done += 1
    return _result(backend, x, x_adv, k0, None, orig_p, done)


def _cw_margin(f: np.ndarray, cls: np.ndarray, targeted: bool) -> tuple[np.ndarray, np.ndarray]:
    """(margin (N,), d margin / d f (N, K)) of Carlini-Wagner's f6 before the max with -kappa.

    Untargeted: ``f_cls - max_{i != cls} f_i`` (negative once the top-1 left ``cls``);
    targeted: ``max_{i != cls} f_i - f_cls`` (negative once ``cls`` is the top-1).
    """
    n, k = f.shape
    rows = np.arange(n)
    others = f.copy()
    others[rows, cls] = -np.inf
    j = others.argmax(axis=1)
    margin = f[rows, cls] - f[rows, j]
    d = _one_hot(cls, k) - _one_hot(j, k)
    return (-margin, -d) if targeted else (margin, d)


class _CWSearch:
    """The binary search over ``c`` and the best result so far, per image."""

    def __init__(self, n: int, initial_const: float, u0: np.ndarray) -> None:
        self.lo = np.zeros(n)
        self.hi = np.full(n, np.inf)
        self.c = np.full(n, float(initial_const))
        self.best_l2 = np.full(n, np.inf)
        self.best_u = u0.copy()

    def record(self, u: np.ndarray, l2: np.ndarray, ok: np.ndarray) -> None:
        better = ok & (l2 < self.best_l2)
        self.best_l2[better] = l2[better]
        self.best_u[better] = u[better]

    def update(self, found: np.ndarray) -> None:
        # success: c was large enough, try smaller; failure: larger (x10 until an upper bound)
        self.hi = np.where(found, np.minimum(self.hi, self.c), self.hi)
        self.lo = np.where(found, self.lo, np.maximum(self.lo, self.c))
        self.c = np.where(np.isfinite(self.hi), 0.5 * (self.lo + self.hi), self.c * 10.0)


def _cw_run(
    backend: Backend, x: np.ndarray, cls: np.ndarray, u0: np.ndarray, w0: np.ndarray,
    search: _CWSearch, opts: dict, history: list[float],
) -> tuple[np.ndarray, int]:  # fmt: skip
    """Adam on w for one value of c per image; returns (found (N,) bool, steps taken)."""
    space, kappa, targeted = backend.input_space, opts["kappa"], opts["targeted"]
    w, cfg = w0.copy(), {"learning_rate": opts["learning_rate"]}
    found = np.zeros(len(x), bool)
    prev, every = np.inf, max(1, opts["steps"] // 10)
    for it in range(opts["steps"]):
        t = np.tanh(w)
        u = 0.5 * (t + 1.0)
        f, s = _log_scores(backend, space.to_model((_RANGE * u).astype(x.dtype)))
        margin, dmargin = _cw_margin(f, cls, targeted)
        pred = f.argmax(axis=1)
        ok = (margin <= -kappa) & ((pred == cls) if targeted else (pred != cls))
        d2 = ((u - u0) ** 2).reshape(len(x), -1).sum(axis=1)
        search.record(u, _RANGE * np.sqrt(d2), ok)
        found |= ok
        loss = d2 + search.c * np.maximum(margin, -kappa)
        history.append(float(loss.sum()))
        coeff = (search.c * (margin > -kappa))[:, None] * dmargin
        g_u = 2.0 * (u - u0) + _RANGE * _pixel_grad(backend, s, coeff)
        w, cfg = adam(w, g_u * 0.5 * (1.0 - t**2), cfg)
        # The paper compares against the loss at step 0 too, but the distance term grows
        # before the margin term falls, which ends short runs at their first check.
        if opts["abort_early"] and it > 0 and it % every == 0:
            if loss.sum() > 0.9999 * prev:  # no progress for a tenth of the budget
                return found, it + 1
            prev = loss.sum()
    return found, opts["steps"]


def carlini_wagner_l2(
    backend: Backend,
    x: np.ndarray,
    label: int | Sequence[int] | np.ndarray | None = None,
    *,
    targeted: bool = False,
    kappa: float = 0.0,
    initial_const: float = 1e-2,
    search_steps: int = 6,
    steps: int = 100,
    learning_rate: float = 1e-2,
    abort_early: bool = True,
) -> AttackResult:
    """Carlini-Wagner L2 attack (Carlini & Wagner 2017; see the module docstring).

    Inputs:
    - backend: a :class:`Backend`.
    - x: (N, C, H, W) clean images, model units.
    - label: untargeted: class to move away from (default the clean top-1); targeted: the
      target (required).
    - kappa: confidence: the winning margin in logits the result must have (0 as the paper).
    - initial_const: first ``c`` of the binary search (paper's code: 1e-3, here 1e-2 since
      fewer search steps are affordable in NumPy).
    - search_steps: binary search steps over c (paper: 9).
    - steps: Adam steps per value of c (paper: up to 10000; 100 is a laptop budget).
    - learning_rate: Adam's, on the tanh-space variable (1e-2 as the paper).
    - abort_early: stop a run when the loss has not fallen for a tenth of ``steps`` (checked
      from step ``steps // 10`` on).

    Returns an :class:`AttackResult` with the smallest successful change found (the clean
    image, ``success`` False, where none was); ``l2``/``linf`` in pixel levels, ``steps`` the
    Adam steps taken in total, ``history`` the summed loss per step.
    """
    if kappa < 0 or search_steps < 1 or steps < 1 or initial_const <= 0 or learning_rate <= 0:
        raise ValueError(
            "carlini_wagner_l2: need kappa >= 0, search_steps >= 1, steps >= 1 and a positive "
            f"initial_const and learning_rate, got {kappa}, {search_steps}, {steps}, "
            f"{initial_const}, {learning_rate}"
        )
    if targeted and label is None:
        raise ValueError("carlini_wagner_l2: a targeted attack needs the target as label")
    x = backend.check_input(x)
    n = x.shape[0]
    orig_p = backend.predict_proba(x)
    cls = orig_p.argmax(axis=1) if label is None else backend.check_class(label, n)
    space = backend.input_space
    u0 = np.clip(space.to_pixels(x).astype(np.float64) / _RANGE, 0.0, 1.0)
    # tanh never reaches +-1: pull saturated pixels in by 1e-6 of the range
    w0 = np.arctanh(np.clip(2.0 * u0 - 1.0, -1 + 1e-6, 1 - 1e-6))
    search = _CWSearch(n, initial_const, u0)
    opts = {"kappa": float(kappa), "targeted": targeted, "steps": int(steps),
            "learning_rate": float(learning_rate), "abort_early": abort_early}  # fmt: skip
    history: list[float] = []
    total = 0
    for _ in range(search_steps):
        found, taken = _cw_run(backend, x, cls, u0, w0, search, opts, history)
        total += taken
        search.update(found)
    x_adv = np.where(
        np.isfinite(search.best_l2)[:, None, None, None],
        space.to_model((_RANGE * search.best_u).astype(x.dtype)),
        x,
    ).astype(x.dtype)
    if targeted:
        return _result(backend, x, x_adv, None, cls, orig_p, total, history)
    return _result(backend, x, x_adv, cls, None, orig_p, total, history)


__all__ = ["carlini_wagner_l2", "deepfool"]
