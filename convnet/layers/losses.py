"""Losses: ``(loss, dpred)`` pairs (and ``(kl, dmu, dlogvar)`` for the VAE's KL term).

``loss`` is a Python float; gradients keep the dtype of the prediction. Reductions:
``'mean'`` (over all elements), ``'sum'``, ``'batchmean'`` (sum over features, mean over
the batch axis 0).
"""

from __future__ import annotations

import numpy as np

from convnet.errors import LayerInputError
from convnet.layers._validate import check_float, check_ndim

_REDUCTIONS = ("mean", "sum", "batchmean")


def _denominator(fn: str, shape: tuple[int, ...], reduction: str) -> int:
    if reduction == "mean":
        return max(1, int(np.prod(shape)))
    if reduction == "sum":
        return 1
    if reduction == "batchmean":
        return max(1, shape[0]) if len(shape) else 1
    raise LayerInputError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_scores_labels(fn: str, scores: np.ndarray, y: np.ndarray) -> tuple:
    scores = check_float(fn, "scores", scores)
    check_ndim(fn, "scores", scores, 2, "(N, C)")
    y = np.asarray(y)
    N, C = scores.shape
    if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer):
        raise LayerInputError(f"{fn}: y must be integer labels of shape (N,) == ({N},), got "
                         f"{y.shape} of dtype {y.dtype}")
    if N and (y.min() < 0 or y.max() >= C):
        raise LayerInputError(f"{fn}: labels must be in [0, C) == [0, {C}), got range "
                         f"[{y.min()}, {y.max()}]")
    return scores, y


def _check_pair(fn: str, a_name: str, a, t_name: str, t) -> tuple[np.ndarray, np.ndarray]:
    a = check_float(fn, a_name, a)
    t = np.asarray(t)
    if t.shape != a.shape:
        raise LayerInputError(f"{fn}: {t_name} must have the shape of {a_name} {a.shape}, "
                         f"got {t.shape}")
    return a, t.astype(a.dtype, copy=False)


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (the class axis of (N, C) scores).

    Shifting by the maximum makes exp(<= 0), so logits of 1e4 give no overflow.
    """
    scores = check_float("softmax", "scores", scores)
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy, mean over the batch.

    Inputs:
    - scores: (N, C) unnormalised class scores (logits).
    - y: (N,) integer labels in [0, C).

    Returns a tuple of:
    - loss: float, ``-mean_i log softmax(scores_i)[y_i]``.
    - dscores: (N, C) gradient of loss with respect to scores, dtype of scores.
    """
    scores, y = _check_scores_labels("softmax_loss", scores, y)
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_z
    rows = np.arange(N)
    loss = -float(log_probs[rows, y].astype(np.float64).sum()) / N
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= N
    return loss, dscores


def svm_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass SVM (hinge) loss with margin 1, mean over the batch.

    Inputs:
    - scores: (N, C); y: (N,) integer labels in [0, C).

    Returns ``(loss, dscores)``: loss = mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + 1);
    dscores (N, C), dtype of scores. The subgradient at a margin of exactly 0 is 0.
    """
    scores, y = _check_scores_labels("svm_loss", scores, y)
    N = scores.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, scores - scores[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = float(margins.astype(np.float64).sum()) / N
    active = (margins > 0).astype(scores.dtype)
    active[rows, y] = -active.sum(axis=1)
    return loss, active / scores.dtype.type(N)


def mse_loss(
    pred: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> tuple[float, np.ndarray]:
    """Squared error ``(pred - target)**2`` reduced by ``reduction``.

    Inputs:
    - pred: (N, ...) float; target: same shape.
    - reduction: 'mean' (over all elements), 'sum' or 'batchmean' (sum / N).

    Returns ``(loss, dpred)`` with dpred of pred's shape and dtype.
    """
    pred, target = _check_pair("mse_loss", "pred", pred, "target", target)
    denom = _denominator("mse_loss", pred.shape, reduction)
    diff = pred - target
    loss = float((diff.astype(np.float64) ** 2).sum()) / denom
    return loss, diff * pred.dtype.type(2.0 / denom)


def _bce_eps(dtype: np.dtype) -> float:
    # Keras' epsilon (1e-7) for float32: 1 - 1e-7 is still representable there.
    return 1e-7 if np.finfo(dtype).eps > 1e-10 else 1e-12


def bce_loss(
    probs: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> tuple[float, np.ndarray]:
    """Binary cross-entropy from probabilities (e.g. a sigmoid output).

    ``-(t log p + (1 - t) log(1 - p))`` with p clipped to [eps, 1 - eps] (eps 1e-7 for
    float32 as in Keras, 1e-12 for float64), so p = 0 or 1 gives a large finite loss
    instead of inf/NaN. The gradient is evaluated at the clipped p, so a saturated output
    still gets a (large, finite) push in the right direction; inside the clip range it is
    the exact derivative. Prefer :func:`bce_with_logits_loss` where the logits exist.

    Inputs:
    - probs: (N, ...) in [0, 1]; target: same shape, values in [0, 1].
    - reduction: 'mean', 'sum' or 'batchmean'.

    Returns ``(loss, dprobs)`` with dprobs of probs' shape and dtype.
    """
    probs, target = _check_pair("bce_loss", "probs", probs, "target", target)
    denom = _denominator("bce_loss", probs.shape, reduction)
    eps = _bce_eps(probs.dtype)
    p = np.clip(probs, eps, 1 - eps)
    # log1p(-p) keeps precision for small p where log(1 - p) would round.
    per = -(target * np.log(p) + (1 - target) * np.log1p(-p))
    loss = float(per.astype(np.float64).sum()) / denom
    dprobs = (p - target) / (p * (1 - p)) / probs.dtype.type(denom)
    return loss, dprobs


def bce_with_logits_loss(
    logits: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of ``sigmoid(logits)``, computed stably from the logits.

    Uses ``max(z, 0) - z t + log1p(exp(-|z|))``, exact for every z: logits of +-1000 give
    finite loss and gradient. The gradient is ``(sigmoid(z) - t) / denominator``, computed
    without cancellation.

    Inputs:
    - logits: (N, ...); target: same shape, values in [0, 1].
    - reduction: 'mean', 'sum' or 'batchmean'.

    Returns ``(loss, dlogits)`` with dlogits of logits' shape and dtype.
    """
    z, t = _check_pair("bce_with_logits_loss", "logits", logits, "target", target)
    denom = _denominator("bce_with_logits_loss", z.shape, reduction)
    per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    loss = float(per.astype(np.float64).sum()) / denom
    e = np.exp(-np.abs(z))
    # sigmoid(z) - t over the common denominator 1 + e: no cancellation of sigmoid(z) ~ 1
    # against t = 1 (sigmoid(50) - 1 would round to 0 instead of -e^-50).
    d = np.where(z >= 0, (1 - t) - t * e, e * (1 - t) - t) / (1 + e)
    return loss, d / z.dtype.type(denom)


def gaussian_kl(
    mu: np.ndarray, logvar: np.ndarray, reduction: str = "batchmean"
) -> tuple[float, np.ndarray, np.ndarray]:
    """KL(N(mu, exp(logvar)) || N(0, I)) of a VAE's encoder, its gradients included.

    ``kl = -0.5 * sum(1 + logvar - mu**2 - exp(logvar))`` reduced by ``reduction``
    (default 'batchmean': sum over latent dimensions, mean over the batch).

    Inputs:
    - mu: (N, Z) means; logvar: (N, Z) log-variances.

    Returns a tuple of kl (float), dmu (N, Z) and dlogvar (N, Z), dtype of mu.
    """
    mu = check_float("gaussian_kl", "mu", mu)
    logvar = check_float("gaussian_kl", "logvar", logvar)
    if logvar.shape != mu.shape:
        raise LayerInputError(f"gaussian_kl: logvar must have the shape of mu {mu.shape}, "
                         f"got {logvar.shape}")
    denom = _denominator("gaussian_kl", mu.shape, reduction)
    ev = np.exp(logvar)
    per = -0.5 * (1 + logvar - mu * mu - ev)
    kl = float(per.astype(np.float64).sum()) / denom
    scale = mu.dtype.type(1.0 / denom)
    return kl, mu * scale, (0.5 * (ev - 1)) * scale
