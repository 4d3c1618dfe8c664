"""Adversarial examples: FGSM (Goodfellow et al. 2015), iterative FGSM / PGD (Kurakin et al.
2017; Madry et al. 2018) and fooling images (cs231n: ascend the target score until the model
predicts it). The minimal-perturbation attacks DeepFool and Carlini-Wagner L2 are in
:mod:`convnet.inputgrad.attacks_minimal` and return the same :class:`AttackResult`.

Every epsilon, step and clip bound is in **pixel units** (levels of 0..255) and is converted
to model units per channel through ``backend.input_space.pixel_scale()``; results report the
perturbation in pixel units too.

What counts as a success:

* untargeted (away from ``label``): the adversarial top-1 differs from the clean top-1 **and**
  from ``label``. When ``label`` is the clean top-1 (the usual case) this is simply
  ``pred != label``. When the model never predicted ``label`` on the clean image (SqueezeNet
  calls the police-van photo a minivan), ``pred != label`` holds before any attack, so it
  proves nothing: the attack then succeeds only if it moves the top-1 away from the clean
  top-1 as well, and ``summary`` says that the attacked class was not the prediction;
* targeted: the adversarial top-1 is the target (``summary`` notes when the clean top-1
  already was).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from convnet.backend import Backend
from convnet.inputgrad.objectives import ClassScore, CrossEntropy


@dataclass
class AttackResult:
    """Outcome of an attack on a batch of N images.

    - x_adv: (N, C, H, W) adversarial images, model units.
    - label: (N,) the class attacked away from (untargeted) or None.
    - target: (N,) the class aimed at (targeted) or None.
    - orig_pred, orig_conf: (N,) prediction and its probability on the clean input.
    - pred, conf: (N,) prediction and probability on x_adv.
    - success: (N,) bool: untargeted: ``pred != orig_pred and pred != label`` (the top-1
      changed, and not to the attacked class; see the module docstring); targeted:
      ``pred == target``.
    - originally_correct: (N,) bool: the clean prediction was ``label`` (untargeted only; the
      success rate that matters is over these).
    - linf, l2: (N,) size of the perturbation in pixel units.
    - steps: iterations used.
    """

    x_adv: np.ndarray
    label: np.ndarray | None
    target: np.ndarray | None
    orig_pred: np.ndarray
    orig_conf: np.ndarray
    pred: np.ndarray
    conf: np.ndarray
    success: np.ndarray
    originally_correct: np.ndarray
    linf: np.ndarray
    l2: np.ndarray
    steps: int = 1
    history: list[float] = field(default_factory=list)

    @property
    def top1_changed(self) -> np.ndarray:
        """(N,) bool: the adversarial top-1 differs from the clean top-1."""
        return np.asarray(self.pred) != np.asarray(self.orig_pred)

    def summary(self, labels: Sequence | None = None) -> str:
        """One line per image: clean -> adversarial prediction, success, perturbation size."""

        def name(c: int) -> str:
            if labels is None:
                return str(c)
            lab = labels[c]
            return f"{c} {lab[1] if isinstance(lab, tuple | list) else lab}"

        lines = []
        for i in range(len(self.pred)):
            aim = (
                f"target {name(int(self.target[i]))}"
                if self.target is not None
                else f"away from {name(int(self.label[i]))}"  # type: ignore[index]
            )
            lines.append(
                f"[{i}] {aim}: {name(int(self.orig_pred[i]))} ({self.orig_conf[i]:.3f}) -> "
                f"{name(int(self.pred[i]))} ({self.conf[i]:.3f}); "
                f"success={bool(self.success[i])}; L-inf {self.linf[i]:.2f}, "
                f"L2 {self.l2[i]:.1f} pixel levels; {self.steps} step(s)"
            )
            note = self.note(i, name)
            if note:
                lines.append(f"    {note}")
        return "\n".join(lines)

    def note(self, i: int, name: Callable[[int], str] = str) -> str:
        """Why image ``i``'s success means less than it seems, or '' (see the module docstring).

        ``name`` formats a class index (default ``str``).
        """
        orig = int(self.orig_pred[i])
        if self.target is not None:
            if orig == int(self.target[i]):
                return f"the clean top-1 already was the target {name(orig)}"
            return ""
        lab = int(self.label[i])  # type: ignore[index]
        if orig == lab:
            return ""
        verdict = (
            f"success: the top-1 moved to {name(int(self.pred[i]))}"
            if self.success[i]
            else "not a success: the top-1 did not change"
        )
        return (
            f"the model never predicted {name(lab)} on the clean image (its top-1 was "
            f"{name(orig)}); {verdict}"
        )


def _pixel_col(backend: Backend, dtype: np.dtype) -> np.ndarray:
    return backend.input_space.pixel_scale_col(dtype)


def _result(
    backend: Backend,
    x: np.ndarray,
    x_adv: np.ndarray,
    label: np.ndarray | None,
    target: np.ndarray | None,
    orig_p: np.ndarray,
    steps: int,
    history: list[float] | None = None,
) -> AttackResult:
    p = backend.predict_proba(x_adv)
    pred = p.argmax(axis=1)
    orig_pred = orig_p.argmax(axis=1)
    rows = np.arange(len(pred))
    if target is not None:
        success = pred == target
        correct = np.ones(len(pred), bool) if label is None else orig_pred == label
    else:
        # pred != label alone is true before any attack when label was not the clean top-1
        success = (pred != label) & (pred != orig_pred)
        correct = orig_pred == label
    dpix = (x_adv.astype(np.float64) - x) / _pixel_col(backend, np.float64)
    flat = dpix.reshape(len(pred), -1)
    return AttackResult(
        x_adv=x_adv,
        label=label,
        target=target,
        orig_pred=orig_pred,
        orig_conf=orig_p[rows, orig_pred],
        pred=pred,
        conf=p[rows, pred],
        success=success,
        originally_correct=correct,
        linf=np.abs(flat).max(axis=1),
        l2=np.sqrt((flat**2).sum(axis=1)),
        steps=steps,
        history=history or [],
    )


def _xent(backend: Backend, cls: np.ndarray) -> CrossEntropy:
    return CrossEntropy(cls, from_logits=not backend.output_is_probs)


def quantize(backend: Backend, x: np.ndarray) -> np.ndarray:
    """Round model-space x to whole 8-bit pixel levels (what saving as PNG does)."""
    sp = backend.input_space
    return sp.to_model(np.clip(np.rint(sp.to_pixels(x)), 0, 255).astype(x.dtype))


def fgsm(
    backend: Backend,
    x: np.ndarray,
    label: int | Sequence[int] | np.ndarray,
    eps: float,
    targeted: bool = False,
    clip: bool = True,
) -> AttackResult:
    """Fast gradient sign method.

    Untargeted: ``x + eps * sign(d CE(label) / dx)`` (move away from ``label``); targeted
    (``label`` is then the target): ``x - eps * sign(d CE(target) / dx)``.

    Inputs:
    - backend: a :class:`Backend`.
    - x: (N, C, H, W) clean images, model units.
    - label: int or (N,) ints: true/predicted class (untargeted) or target (targeted).
    - eps: L-inf size in pixel levels (2 = 2/255 of the range).
    - clip: keep the result inside the valid pixel range.

    Returns an :class:`AttackResult`.
    """
    if eps < 0:
        raise ValueError(f"fgsm: eps must be >= 0 pixel levels, got {eps}")
    x = backend.check_input(x)
    cls = backend.check_class(label, x.shape[0])
    orig_p = backend.predict_proba(x)
    _, g = backend.value_and_grad(_xent(backend, cls), x)
    step = eps * _pixel_col(backend, x.dtype)
    x_adv = x + (-step if targeted else step) * np.sign(g)
    if clip:
        x_adv = backend.input_space.clip(x_adv)
    x_adv = x_adv.astype(x.dtype)
    if targeted:
        return _result(backend, x, x_adv, None, cls, orig_p, 1)
    return _result(backend, x, x_adv, cls, None, orig_p, 1)


def iterative_fgsm(
    backend: Backend,
    x: np.ndarray,
    label: int | Sequence[int] | np.ndarray,
    eps: float,
    step: float | None = None,
    iterations: int | None = None,
    targeted: bool = False,
    random_start: bool = False,
    seed: int | np.random.Generator | None = 0,
    early_stop: bool = False,
) -> AttackResult:
    """Iterative FGSM (Kurakin et al.) / PGD with L-inf projection (Madry et al.).

    Inputs:
    - x, label, targeted: as :func:`fgsm`.
    - eps: L-inf radius in pixel levels.
    - step: per-iteration step in pixel levels (default 1 level, as Kurakin et al.).
    - iterations: default ``min(eps + 4, 1.25 * eps)`` rounded up (Kurakin et al.).
    - random_start: start from a uniform point in the eps-ball (PGD).
    - early_stop: stop as soon as every image is fooled (``success`` as in AttackResult).

    Returns an :class:`AttackResult`; ``history`` holds the summed cross-entropy per step.
    """
    if eps < 0:
        raise ValueError(f"iterative_fgsm: eps must be >= 0 pixel levels, got {eps}")
    x = backend.check_input(x)
    cls = backend.check_class(label, x.shape[0])
    step = 1.0 if step is None else float(step)
    if iterations is None:
        iterations = int(np.ceil(min(eps + 4, 1.25 * eps))) if eps > 0 else 0
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    col = _pixel_col(backend, x.dtype)
    radius, alpha = eps * col, step * col
    space = backend.input_space
    orig_p = backend.predict_proba(x)
    x_adv = x.copy()
    if random_start:
        x_adv = space.clip(x + radius * rng.uniform(-1, 1, x.shape).astype(x.dtype))
    obj = _xent(backend, cls)
    history: list[float] = []
    done = 0
    for _ in range(iterations):
        acts = backend.forward(x_adv, obj.layers)
        history.append(obj.value(acts))
        if early_stop:
            pred = np.asarray(acts[obj.layer]).argmax(axis=1)
            fooled = (pred == cls) if targeted else (pred != cls) & (pred != orig_p.argmax(1))
            if np.all(fooled):
                break
        g = backend.vjp(obj.grad(acts))
        x_adv = x_adv + (-alpha if targeted else alpha) * np.sign(g)
        x_adv = space.clip(np.clip(x_adv, x - radius, x + radius)).astype(x.dtype)
        done += 1
    if targeted:
        return _result(backend, x, x_adv, None, cls, orig_p, done, history)
    return _result(backend, x, x_adv, cls, None, orig_p, done, history)


def fooling_image(
    backend: Backend,
    x: np.ndarray,
    target: int,
    max_steps: int = 100,
    lr: float = 57.375,
    quantized: bool = False,
) -> AttackResult:
    """Make the model predict ``target`` (cs231n ``make_fooling_image``).

    Gradient ascent on the target's (pre-softmax) score with steps of L2 length ``lr`` in
    pixel units (cs231n: 1 standardised unit = 57.375 levels), until the prediction is the
    target. With ``quantized`` the image is rounded to 8-bit levels after every step, so the
    success survives saving as PNG.

    Inputs:
    - x: (1, C, H, W) clean image, model units.
    - target: class index.
    - max_steps: give up after this many steps (``success`` is then False).

    Returns an :class:`AttackResult` (``history`` holds the target score per step).
    """
    x = backend.check_input(x)
    if x.shape[0] != 1:
        raise ValueError(f"fooling_image: x must be one image (1, C, H, W), got {x.shape}")
    tgt = backend.check_class(target, 1)
    orig_p = backend.predict_proba(x)
    col = _pixel_col(backend, x.dtype)
    obj = ClassScore(tgt)
    space = backend.input_space
    x_adv = x.copy()
    history: list[float] = []
    steps = 0
    for _ in range(max_steps + 1):
        acts = backend.forward(x_adv, ["output"])
        history.append(obj.value(acts))
        if int(np.argmax(acts["output"][0])) == int(tgt[0]) or steps == max_steps:
            break
        g = backend.vjp(obj.grad(acts)) * col  # d score / d pixel
        gp = g / (np.sqrt(np.sum(g.astype(np.float64) ** 2)) + 1e-12)
        x_adv = space.clip(x_adv + (lr * gp).astype(x.dtype) * col)
        if quantized:
            x_adv = quantize(backend, x_adv)
        steps += 1
    return _result(backend, x, x_adv.astype(x.dtype), None, tgt, orig_p, steps, history)


__all__ = ["AttackResult", "fgsm", "iterative_fgsm", "fooling_image", "quantize"]
