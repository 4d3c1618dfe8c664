"""The independent references every check compares a layer against.

Each is written differently from the layer it checks, so that one mistake is unlikely to be
made twice: convolution and pooling as ``einsum`` or reductions over sliding windows (where
the layers use loops, im2col or Numba kernels), the transposed convolution as a scatter of
filters, the normalisations as ``mean``/``var`` over the right axes (where the layers share
one derivation through batch norm), the losses and update rules as their textbook formulas
written out.

Everything here is float64 NumPy on small arrays: clarity over speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convnet.layers._geometry import out_size

# ------------------------------------------------------------------ convolution, pooling


def ref_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int,
             dilation: int = 1) -> np.ndarray:
    """Reference convolution: x (N, C, H, W), w (F, C, HH, WW), b (F,) -> (N, F, H', W')."""
    F, C, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = dilation * (HH - 1) + 1, dilation * (WW - 1) + 1
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride, ::dilation, ::dilation]
    return np.einsum("nchwij,fcij->nfhw", win, w) + b[None, :, None, None]


def ref_conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int,
                       output_padding: int = 0) -> np.ndarray:
    """Reference transposed conv: scatter every input pixel times its filter, then crop.

    x (N, F, H, W), w (F, C, HH, WW), b (C,) -> (N, C, (H-1)*s - 2p + HH + op, ...).
    """
    N, F, H, W = x.shape
    _, C, HH, WW = w.shape
    full = np.zeros((N, C, (H - 1) * stride + HH + output_padding,
                     (W - 1) * stride + WW + output_padding))
    for i in range(H):
        for j in range(W):
            full[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW] += np.einsum(
                "nf,fcij->ncij", x[:, :, i, j], w)
    Ho, Wo = full.shape[2] - 2 * pad, full.shape[3] - 2 * pad
    return full[:, :, pad:pad + Ho, pad:pad + Wo] + b[None, :, None, None]


def _pool_windows(x: np.ndarray, ph: int, pw: int, s: int, p: int, ceil_mode: bool,
                  fill: float) -> tuple[np.ndarray, int, int]:
    """(N, C, Ho, Wo, ph, pw) windows of x padded with ``fill``; ceil mode pads the far
    edges further so that the last, partial window exists."""
    N, C, H, W = x.shape
    Ho = out_size(H, ph, s, p, ceil_mode=ceil_mode)
    Wo = out_size(W, pw, s, p, ceil_mode=ceil_mode)
    extra_h = max(0, (Ho - 1) * s + ph - (H + 2 * p))
    extra_w = max(0, (Wo - 1) * s + pw - (W + 2 * p))
    xp = np.pad(x, ((0, 0), (0, 0), (p, p + extra_h), (p, p + extra_w)), constant_values=fill)
    win = sliding_window_view(xp, (ph, pw), axis=(2, 3))[:, :, ::s, ::s][:, :, :Ho, :Wo]
    return win, Ho, Wo


def ref_max_pool(x: np.ndarray, ph: int, pw: int, s: int, p: int = 0,
                 ceil_mode: bool = False) -> np.ndarray:
    """Reference max pooling (padding is -inf), x (N, C, H, W) -> (N, C, H', W')."""
    win, _, _ = _pool_windows(x, ph, pw, s, p, ceil_mode, -np.inf)
    return win.max(axis=(4, 5))


def ref_max_pool_backward(x: np.ndarray, dout: np.ndarray, ph: int, pw: int, s: int,
                          p: int = 0, ceil_mode: bool = False) -> np.ndarray:
    """Reference max-pool gradient: each window's dout to its FIRST maximum (row-major),
    summed over overlapping windows."""
    N, C, H, W = x.shape
    win, Ho, Wo = _pool_windows(x, ph, pw, s, p, ceil_mode, -np.inf)
    first = win.reshape(N, C, Ho, Wo, ph * pw).argmax(axis=-1)  # argmax: first maximum
    di, dj = np.divmod(first, pw)
    rows = np.arange(Ho)[None, None, :, None] * s + di - p
    cols = np.arange(Wo)[None, None, None, :] * s + dj - p
    nn = np.arange(N)[:, None, None, None]
    cc = np.arange(C)[None, :, None, None]
    dx = np.zeros_like(x)
    np.add.at(dx, (np.broadcast_to(nn, rows.shape), np.broadcast_to(cc, rows.shape),
                   rows, cols), dout)
    return dx


def ref_avg_pool(x: np.ndarray, ph: int, pw: int, s: int, p: int = 0) -> np.ndarray:
    """Reference average pooling with zero padding counted, as explicit loops."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = out_size(H, ph, s, p), out_size(W, pw, s, p)
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = xp[:, :, i * s:i * s + ph, j * s:j * s + pw].sum(axis=(2, 3))
    return out / (ph * pw)


# --------------------------------------------------------------------------- normalisation


def ref_batchnorm(x: np.ndarray, g: np.ndarray, b: np.ndarray, axes: tuple[int, ...],
                  shape: tuple[int, ...], eps: float = 1e-5) -> np.ndarray:
    """Batch norm with batch statistics over ``axes``; gamma and beta reshaped to ``shape``
    ((1, D) for (N, D) data, (1, C, 1, 1) for NCHW)."""
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g.reshape(shape) + b.reshape(shape)


def ref_layernorm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Layer norm of (N, D) data: each row standardised over its own D features (biased
    variance), then ``g * xhat + b`` with g, b of shape (D,)."""
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return g * (x - mu) / np.sqrt(var + eps) + b


def ref_groupnorm(x: np.ndarray, g: np.ndarray, b: np.ndarray, G: int,
                  eps: float = 1e-5) -> np.ndarray:
    """Group norm of (N, C, H, W) data: each sample's C channels in G consecutive groups,
    each (sample, group) standardised over its C/G * H * W values; g, b per channel, of
    shape (C,) or (1, C, 1, 1)."""
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    var = ((xg - mu) ** 2).mean(axis=(2, 3, 4), keepdims=True)
    xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(x.shape)
    return g.reshape(1, C, 1, 1) * xhat + b.reshape(1, C, 1, 1)


# ---------------------------------------------------------------------------------- losses


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) written as the tanh identity, which never overflows."""
    return 0.5 * (1 + np.tanh(z / 2))


def ref_softmax_loss(s: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of softmax(s) against integer labels y, via log-sum-exp."""
    logz = np.log(np.sum(np.exp(s - s.max(1, keepdims=True)), axis=1)) + s.max(1)
    return float(np.mean(logz - s[np.arange(len(y)), y]))


def ref_svm_loss(s: np.ndarray, y: np.ndarray) -> float:
    """Mean multiclass hinge loss (margin 1), as the double loop of its definition."""
    total = 0.0
    for i in range(len(y)):
        for j in range(s.shape[1]):
            if j != y[i]:
                total += max(0.0, s[i, j] - s[i, y[i]] + 1)
    return total / len(y)


def _reduce(per: np.ndarray, reduction: str) -> float:
    """'mean' over every element, 'sum', or 'batchmean' (sum over the batch size)."""
    return {"mean": np.mean(per), "sum": np.sum(per), "batchmean": np.sum(per) / len(per)}[
        reduction]


def ref_mse_loss(p: np.ndarray, t: np.ndarray, reduction: str) -> float:
    """Squared error (p - t)^2, reduced."""
    return _reduce((p - t) ** 2, reduction)


def ref_bce_loss(p: np.ndarray, t: np.ndarray, reduction: str) -> float:
    """Binary cross-entropy of probabilities p against targets t, reduced."""
    return _reduce(-(t * np.log(p) + (1 - t) * np.log(1 - p)), reduction)


def ref_gaussian_kl(mu: np.ndarray, lv: np.ndarray, reduction: str) -> float:
    """KL(N(mu, e^lv) || N(0, 1)) per element (Kingma & Welling 2014, appendix B), reduced."""
    return _reduce(-0.5 * (1 + lv - mu ** 2 - np.exp(lv)), reduction)


# ---------------------------------------------------------------------------- update rules
# Each takes the previous weights, the gradient and a plain dict of settings and state, and
# updates the state in that dict, as the rules' ``config`` does.


def ref_sgd(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    """w - lr * dw."""
    return w - st["learning_rate"] * dw


def ref_sgd_momentum(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    """v = mu * v - lr * dw; w + v."""
    st["v"] = st["momentum"] * st.get("v", 0.0) - st["learning_rate"] * dw
    return w + st["v"]


def ref_rmsprop(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    """c = rho * c + (1 - rho) * dw^2; w - lr * dw / (sqrt(c) + eps)."""
    rho = st["decay_rate"]
    st["c"] = rho * st.get("c", 0.0) + (1 - rho) * dw ** 2
    return w - st["learning_rate"] * dw / (np.sqrt(st["c"]) + st["epsilon"])


def ref_adam(w: np.ndarray, dw: np.ndarray, st: dict[str, Any]) -> np.ndarray:
    """Kingma & Ba (2015), Algorithm 1, epsilon added to the bias-corrected sqrt(v)."""
    b1, b2 = st["beta1"], st["beta2"]
    st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * dw
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * dw ** 2
    m_hat, v_hat = st["m"] / (1 - b1 ** st["t"]), st["v"] / (1 - b2 ** st["t"])
    return w - st["learning_rate"] * m_hat / (np.sqrt(v_hat) + st["epsilon"])
