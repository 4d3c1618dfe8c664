"""Attribution methods: which pixels (or feature-map cells) a class score depends on.

Written once against the :class:`convnet.backend.Backend` contract, so each runs on a convnet
``Sequential`` (:class:`~convnet.backend.NumpyBackend`) and on a Keras model
(``convnet.interop.tf_backend.TFBackend``):

* Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhay et al. 2018) at any
  feature-map layer, upsampled bilinearly to the image and scaled to [0, 1];
* guided backpropagation (Springenberg et al. 2015) and guided Grad-CAM;
* integrated gradients (Sundararajan et al. 2017) from a black or a blurred baseline, with the
  completeness error ``|sum(attr) - (f(x) - f(x0))| / |f(x) - f(x0)|``;
* SmoothGrad (Smilkov et al. 2017) around any of them: the mean over noisy copies;
* occlusion sensitivity (Zeiler & Fergus 2014) is in :mod:`convnet.inputgrad.occlusion`.

The score explained is the output layer's entry for the class (the logit, or the probability
for a Keras model whose last layer is a softmax), as for :func:`saliency_map`. Every method
takes ``x`` (N, C, H, W) in model input space and returns one map per image; maps over
pixels come back in RGB channel order whatever the model's order, so maps of BGR and RGB
models compare.

The contract has no "gradient at a layer" operation; :func:`layer_gradient` provides it for
the two backends (a NumPy ``Sequential``'s layer-by-layer backward; a gradient tape in TF)
and uses a backend's own ``layer_gradient`` method where one exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from convnet.backend import INPUT, OUTPUT, Backend, NumpyBackend
from convnet.inputgrad.relu_redirect import guided_relu_backward, relu_backward_rule
from convnet.inputgrad.saliency import input_gradient_pixels
from convnet.inputgrad.transforms import gaussian_blur, resize_bilinear

ClassIdx = int | Sequence[int] | np.ndarray
#: ``method(backend, x, class_idx, **kwargs) -> (N, ...)``: what :func:`smoothgrad` wraps.
Method = Callable[..., np.ndarray]

IG_RULES = ("trapezoid", "left", "right", "midpoint")
BASELINES = ("black", "blur")


# --------------------------------------------------------------------------- gradients at layers
def _is_tf_backend(backend: Backend) -> bool:
    # Checked by class name so that this module never imports the TF backend.
    return any(c.__name__ == "TFBackend" for c in type(backend).__mro__)


def class_upstream(scores: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """One-hot (N, K) in the output's dtype: d(score of class cls[i] of image i) / d output."""
    up = np.zeros(scores.shape, dtype=scores.dtype)
    up[np.arange(scores.shape[0]), cls] = 1
    return up


def _sequential_layer_gradient(
    backend: NumpyBackend, x: np.ndarray, layer: str, upstream: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    model = backend.model
    names = list(model.layer_names)
    out = backend.output_layer
    i, j = names.index(layer), names.index(out)
    acts = backend.forward(x, [layer, out])
    g = np.asarray(upstream, dtype=acts[out].dtype)
    if g.shape != acts[out].shape:
        raise ValueError(
            f"{backend.name}: upstream must have the output's shape {acts[out].shape}, "
            f"got {g.shape}"
        )
    # The layers cache their last forward, so the chain rule runs from the output down to
    # (not through) the requested layer.
    for name in reversed(names[i + 1 : j + 1]):
        g = model.get_layer(name).backward(g)
    return acts[layer], g


def layer_gradient(
    backend: Backend, x: np.ndarray, layer: str, upstream: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Activation at ``layer`` and the gradient of ``<output, upstream>`` with respect to it.

    Inputs:
    - backend: a NumpyBackend over a ``Sequential``, a TFBackend, or any backend with a
      ``layer_gradient(x, layer, upstream)`` method.
    - x: (N, C, H, W) in model input space.
    - layer: a layer name before the output layer (``"input"`` gives the input gradient).
    - upstream: (N, K), the weights of the output entries (a one-hot picks a class score).

    Returns ``(A, dA)``, both shaped like the layer's activation (NCHW for feature maps).
    """
    x = backend.check_input(x)
    real = backend.resolve(layer)
    if real == INPUT:
        backend.forward(x, [OUTPUT])
        return x, backend.vjp({OUTPUT: upstream})
    names = backend.layer_names
    if names.index(real) >= names.index(backend.output_layer):
        raise ValueError(
            f"{backend.name}: layer {layer!r} must come before the output layer "
            f"{backend.output_layer!r}"
        )
    own = getattr(backend, "layer_gradient", None)
    if callable(own):
        return own(x, real, upstream)
    if isinstance(backend, NumpyBackend) and hasattr(backend.model, "layers"):
        return _sequential_layer_gradient(backend, x, real, upstream)
    if _is_tf_backend(backend):
        from convnet.interop.tf_guided import tf_layer_gradient

        return tf_layer_gradient(backend, x, real, upstream)
    raise ValueError(
        f"{backend.name}: no gradient at a layer for this backend (NumpyBackend over a "
        "Sequential, TFBackend, or a backend with a layer_gradient method)"
    )


# ------------------------------------------------------------------------------------ Grad-CAM
def feature_map_layers(backend: Backend, x: np.ndarray) -> list[str]:
    """Names of the layers before the output whose activation for ``x`` is (N, K, h, w)."""
    names = backend.layer_names[: backend.layer_names.index(backend.output_layer)]
    acts = backend.forward(backend.check_input(x)[:1], names)
    return [n for n in names if acts[n].ndim == 4]


def default_cam_layer(backend: Backend, x: np.ndarray) -> str:
    """The last feature-map layer before the output (Grad-CAM's usual choice)."""
    layers = feature_map_layers(backend, x)
    if not layers:
        raise ValueError(f"{backend.name}: no (N, K, h, w) layer before the output to explain")
    return layers[-1]


def grad_cam_weights(
    backend: Backend, x: np.ndarray, class_idx: ClassIdx, layer: str, plus: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Feature maps and their Grad-CAM (or Grad-CAM++) channel weights.

    Grad-CAM: ``w_k = mean_ij dS/dA_kij``. Grad-CAM++: ``w_k = sum_ij a_kij relu(dS/dA_kij)``
    with ``a_kij = g^2 / (2 g^2 + sum_ab A_kab g^3)``, ``g = dS/dA_kij`` (the closed form for
    an exponential of the score, whose positive factor ``exp(S)`` is left out: it scales a
    whole map and the heatmap is normalised).

    Inputs: backend; x (N, C, H, W) model space; class_idx int or (N,); layer a
    feature-map layer; plus for Grad-CAM++.

    Returns ``(A, w)``: A (N, K, h, w), w (N, K).
    """
    x = backend.check_input(x)
    cls = backend.check_class(class_idx, x.shape[0])
    scores = backend.scores(x)
    A, g = layer_gradient(backend, x, layer, class_upstream(scores, cls))
    if A.ndim != 4:
        raise ValueError(
            f"{backend.name}: Grad-CAM needs a feature-map layer (N, K, h, w); "
            f"{layer!r} gives {A.shape}"
        )
    A = A.astype(np.float64)
    g = g.astype(np.float64)
    if not plus:
        return A, g.mean(axis=(2, 3))
    g2 = g * g
    denom = 2.0 * g2 + A.sum(axis=(2, 3), keepdims=True) * g2 * g
    safe = np.where(denom != 0, denom, 1.0)
    alpha = np.where(denom != 0, g2 / safe, 0.0)
    return A, (alpha * np.maximum(g, 0.0)).sum(axis=(2, 3))


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each (H, W) map of (N, H, W) to [0, 1] by its maximum (an all-zero map stays 0)."""
    m = np.asarray(maps, dtype=np.float64)
    top = m.reshape(m.shape[0], -1).max(axis=1)
    top = np.where(top > 0, top, 1.0)
    return np.clip(m / top[:, None, None], 0.0, 1.0)


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps to (N, H, W) (half-pixel centres)."""
    return resize_bilinear(np.asarray(maps, dtype=np.float64)[:, None], size)[:, 0]


def grad_cam(
    backend: Backend,
    x: np.ndarray,
    class_idx: ClassIdx,
    layer: str | None = None,
    plus: bool = False,
) -> np.ndarray:
    """Grad-CAM heatmap ``relu(sum_k w_k A_k)`` over the image.

    Inputs:
    - backend, x (N, C, H, W) in model space, class_idx int or (N,) ints;
    - layer: a feature-map layer (default: the last one before the output);
    - plus: Grad-CAM++ weights instead of the mean gradient.

    Returns (N, H, W) float64 in [0, 1]: the map upsampled bilinearly to the input size and
    divided by its maximum.
    """
    x = backend.check_input(x)
    if layer is None:
        layer = default_cam_layer(backend, x)
    A, w = grad_cam_weights(backend, x, class_idx, layer, plus=plus)
    cam = np.maximum(np.einsum("nk,nkhw->nhw", w, A), 0.0)
    return normalise_maps(upsample_maps(cam, x.shape[2:]))


def grad_cam_plus_plus(
    backend: Backend, x: np.ndarray, class_idx: ClassIdx, layer: str | None = None
) -> np.ndarray:
    """Grad-CAM++ heatmap (N, H, W) in [0, 1]; see :func:`grad_cam`."""
    return grad_cam(backend, x, class_idx, layer, plus=True)


# ------------------------------------------------------------------------ guided backpropagation
@contextlib.contextmanager
def guided_relus(model: Any) -> Iterator[int]:
    """Within the block, every ReLU of a ``Sequential`` backpropagates with the guided rule
    ``dx = (x > 0) * (dout > 0) * dout``; restored on exit. Yields the number of ReLUs."""
    with relu_backward_rule(model, guided_relu_backward) as n:
        yield n


def guided_backprop(backend: Backend, x: np.ndarray, class_idx: ClassIdx) -> np.ndarray:
    """Guided backpropagation: d score / d pixel with every ReLU's backward replaced by the
    guided rule.

    On a NumpyBackend the ReLU modules are patched for the duration of the call
    (:func:`guided_relus`); on a TFBackend the Keras model is cloned once with guided-ReLU
    activations (:func:`convnet.interop.tf_guided.guided_backend`).

    Returns (N, C, H, W) in score units per pixel level, RGB order.
    """
    x = backend.check_input(x)
    if isinstance(backend, NumpyBackend) and hasattr(backend.model, "layers"):
        with guided_relus(backend.model):
            return input_gradient_pixels(backend, x, class_idx)
    if _is_tf_backend(backend):
        from convnet.interop.tf_guided import guided_backend

        return input_gradient_pixels(guided_backend(backend), x, class_idx)
    raise ValueError(
        f"{backend.name}: guided backpropagation needs a NumpyBackend over a Sequential or a "
        "TFBackend"
    )


def guided_grad_cam(
    backend: Backend,
    x: np.ndarray,
    class_idx: ClassIdx,
    layer: str | None = None,
) -> np.ndarray:
    """Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM heatmap.

    Returns (N, C, H, W), RGB order.
    """
    cam = grad_cam(backend, x, class_idx, layer)
    return guided_backprop(backend, x, class_idx) * cam[:, None]


# ------------------------------------------------------------------------ integrated gradients
def make_baseline(
    backend: Backend, x: np.ndarray, kind: str | np.ndarray = "black", sigma: float = 10.0
) -> np.ndarray:
    """The integrated-gradients baseline for ``x`` (N, C, H, W), in model space.

    - ``"black"``: pixels all 0;
    - ``"blur"``: x blurred with a Gaussian of ``sigma`` pixels (keeps colours, removes the
      detail the model reads);
    - an array: used as is (broadcast to x's shape).
    """
    x = backend.check_input(x)
    if isinstance(kind, np.ndarray):
        return np.broadcast_to(kind.astype(x.dtype), x.shape).copy()
    if kind == "black":
        return backend.input_space.to_model(np.zeros_like(x))
    if kind == "blur":
        if sigma <= 0:
            raise ValueError(f"make_baseline: blur sigma must be > 0, got {sigma}")
        return gaussian_blur(x, float(sigma)).astype(x.dtype)
    raise ValueError(
        f"make_baseline: baseline must be one of {BASELINES} or an array, got {kind!r}"
    )


def path_weights(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alpha`` in [0, 1] and quadrature weights (summing to 1) along the path."""
    if steps < 1:
        raise ValueError(f"integrated gradients: steps must be >= 1, got {steps}")
    k = np.arange(steps, dtype=np.float64)
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        w = np.full(steps + 1, 1.0 / steps)
        w[[0, -1]] = 0.5 / steps
        return alphas, w
    if rule == "left":
        return k / steps, np.full(steps, 1.0 / steps)
    if rule == "right":
        return (k + 1) / steps, np.full(steps, 1.0 / steps)
    if rule == "midpoint":
        return (k + 0.5) / steps, np.full(steps, 1.0 / steps)
    raise ValueError(f"integrated gradients: rule must be one of {IG_RULES}, got {rule!r}")


def _to_rgb(a: np.ndarray, backend: Backend) -> np.ndarray:
    return a[:, ::-1] if backend.input_space.channel_order == "BGR" else a


def integrated_gradients(
    backend: Backend,
    x: np.ndarray,
    class_idx: ClassIdx,
    baseline: str | np.ndarray = "black",
    steps: int = 64,
    rule: str = "trapezoid",
    batch_size: int = 16,
    sigma: float = 10.0,
) -> np.ndarray:
    """Integrated gradients ``(x - x0) * integral_0^1 dS/dx(x0 + a (x - x0)) da``.

    Inputs:
    - backend, x (N, C, H, W) model space, class_idx int or (N,);
    - baseline: ``"black"``, ``"blur"`` (Gaussian of ``sigma`` pixels) or an array;
    - steps: intervals of the quadrature; rule: ``"trapezoid"`` (default) or the Riemann
      sums ``"left"``, ``"right"``, ``"midpoint"``;
    - batch_size: path points per backend call.

    Returns (N, C, H, W) attributions in score units, RGB order; they sum to about
    ``S(x) - S(x0)`` (see :func:`completeness_error`). The value is the same whether the
    coordinates are pixels or model units (the scale factors cancel).
    """
    x = backend.check_input(x)
    n = x.shape[0]
    cls = backend.check_class(class_idx, n)
    x0 = make_baseline(backend, x, baseline, sigma)
    alphas, weights = path_weights(int(steps), rule)
    if batch_size < 1:
        raise ValueError(f"integrated gradients: batch_size must be >= 1, got {batch_size}")
    total = np.zeros(x.shape, dtype=np.float64)
    for i in range(n):
        d = x[i] - x0[i]
        for s in range(0, alphas.size, batch_size):
            a = alphas[s : s + batch_size].astype(x.dtype)
            pts = x0[i][None] + a[:, None, None, None] * d[None]
            scores = backend.scores(pts)
            g = backend.vjp({OUTPUT: class_upstream(scores, np.full(a.size, cls[i]))})
            total[i] += np.tensordot(weights[s : s + batch_size], g.astype(np.float64), axes=1)
    return _to_rgb(total * (x - x0), backend)


def completeness_error(
    backend: Backend,
    x: np.ndarray,
    class_idx: ClassIdx,
    attributions: np.ndarray,
    baseline: str | np.ndarray = "black",
    sigma: float = 10.0,
) -> np.ndarray:
    """``|sum(attr) - (S(x) - S(x0))| / |S(x) - S(x0)|`` per image, shape (N,)."""
    x = backend.check_input(x)
    cls = backend.check_class(class_idx, x.shape[0])
    x0 = make_baseline(backend, x, baseline, sigma)
    rows = np.arange(x.shape[0])
    diff = (
        backend.scores(x).astype(np.float64)[rows, cls]
        - backend.scores(x0).astype(np.float64)[rows, cls]
    )
    total = np.asarray(attributions, dtype=np.float64).reshape(x.shape[0], -1).sum(axis=1)
    return np.abs(total - diff) / np.maximum(np.abs(diff), 1e-12)


# ------------------------------------------------------------------------------------ SmoothGrad
def noise_sigma(backend: Backend, noise: float, dtype: Any) -> np.ndarray:
    """SmoothGrad's noise std, ``noise`` x the 0..255 pixel range, in model units (1, C, 1, 1)."""
    if noise < 0:
        raise ValueError(f"smoothgrad: noise must be >= 0, got {noise}")
    return noise * 255.0 * backend.input_space.pixel_scale_col(dtype)


def smoothgrad(
    method: Method,
    backend: Backend,
    x: np.ndarray,
    class_idx: ClassIdx,
    samples: int = 16,
    noise: float = 0.15,
    seed: int | np.random.Generator | None = 0,
    batch_size: int = 8,
    **kwargs: Any,
) -> np.ndarray:
    """SmoothGrad around any attribution method: its mean over noisy copies of each image.

    Inputs:
    - method: ``method(backend, x, class_idx, **kwargs) -> (N, ...)`` (e.g. :func:`grad_cam`,
      :func:`guided_backprop`, :func:`integrated_gradients`, ``input_gradient_pixels``);
    - samples: noisy copies per image; noise: std as a fraction of the 0..255 range (0.10 to
      0.20 in the paper); seed: the Gaussian draws, image by image, copy by copy;
    - batch_size: copies per method call.

    Returns the mean of ``method`` over the copies, shaped like ``method(backend, x, ...)``.
    """
    x = backend.check_input(x)
    n = x.shape[0]
    cls = backend.check_class(class_idx, n)
    if samples < 1 or batch_size < 1:
        raise ValueError(f"smoothgrad: samples and batch_size must be >= 1, got {samples}, "
                         f"{batch_size}")  # fmt: skip
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sigma = noise_sigma(backend, noise, x.dtype)
    out: list[np.ndarray] = []
    for i in range(n):
        total: np.ndarray | None = None
        for s in range(0, samples, batch_size):
            k = min(batch_size, samples - s)
            eps = rng.standard_normal((k, *x.shape[1:])).astype(x.dtype)
            r = np.asarray(method(backend, x[i : i + 1] + sigma * eps, np.full(k, cls[i]),
                                  **kwargs), dtype=np.float64)  # fmt: skip
            total = r.sum(axis=0) if total is None else total + r.sum(axis=0)
        out.append(total / samples)  # type: ignore[operator]
    return np.stack(out)


# ------------------------------------------------------------------------------ display helpers
def attribution_heatmap(attr: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """A displayable map (N, H, W) in [0, 1] from attributions.

    (N, C, H, W) pixel attributions: the largest magnitude over channels; (N, H, W) maps: their
    positive part. Each map is divided by its ``percentile`` (so a few extreme pixels do not
    turn the rest black) and clipped to [0, 1].
    """
    a = np.asarray(attr, dtype=np.float64)
    if a.ndim == 4:
        a = np.abs(a).max(axis=1)
    elif a.ndim == 3:
        a = np.maximum(a, 0.0)
    else:
        raise ValueError(f"attribution_heatmap: expected (N, C, H, W) or (N, H, W), got {a.shape}")
    flat = a.reshape(a.shape[0], -1)
    top = np.percentile(flat, percentile, axis=1)
    top = np.where(top > 0, top, np.maximum(flat.max(axis=1), 1e-300))
    return np.clip(a / top[:, None, None], 0.0, 1.0)


def gradient_image(attr: np.ndarray) -> np.ndarray:
    """Signed pixel attributions (N, 3, H, W) as pixels 0..255 (zero at mid-grey, +-3 std at
    the ends), the usual way guided backpropagation is shown."""
    a = np.asarray(attr, dtype=np.float64)
    a = a - a.mean(axis=(1, 2, 3), keepdims=True)
    std = a.std(axis=(1, 2, 3), keepdims=True)
    a = a / np.where(std > 0, std, 1.0)
    return np.clip(127.5 + a * (127.5 / 3.0), 0.0, 255.0)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (ties get their mean rank)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"rank_correlation: need two maps of one shape, got {a.shape}, {b.shape}")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    # Mean rank over each run of equal values.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
    ends = np.r_[starts[1:], v.size]
    mean_rank = (starts + ends - 1) / 2.0
    ranks = np.empty(v.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


__all__ = [
    "BASELINES",
    "IG_RULES",
    "attribution_heatmap",
    "class_upstream",
    "completeness_error",
    "default_cam_layer",
    "feature_map_layers",
    "gradient_image",
    "grad_cam",
    "grad_cam_plus_plus",
    "grad_cam_weights",
    "guided_backprop",
    "guided_grad_cam",
    "guided_relus",
    "integrated_gradients",
    "layer_gradient",
    "make_baseline",
    "noise_sigma",
    "normalise_maps",
    "path_weights",
    "rank_correlation",
    "smoothgrad",
    "upsample_maps",
]
