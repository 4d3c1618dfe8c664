"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) on any input-gradient backend.

The image is optimised so that the Gram matrices of its activations at a few *style* layers
match those of a style image, while its activations at a *content* layer stay close to those of
a content photo. All losses below have analytic gradients with respect to the activations; the
backend's ``vjp`` carries them back to the image.

Conventions (exercise sheet 003, Aufgabe 18; course notebook 000, section 3.4):

* ``a`` is a layer activation ``(N, C, H, W)``; for one image it is the matrix ``F`` of shape
  ``(C, H*W)`` (features x positions).
* ``gram_matrix(a) = F F^T / (H*W)`` (the notebook normalises by the number of positions;
  ``normalize=False`` gives the sheet's unnormalised ``G = a a^T``).
* Style loss of one layer (the sheet's formula), with ``N`` the number of entries of ``a``
  (``C*H*W``): ``L = 1/(2N)^2 * ||G - G_style||_F^2``. Its gradient is
  ``dL/da = 1/N^2 * (G - G_style) a`` for the unnormalised Gram (the sheet's result) and
  ``1/(N^2 * H*W) * (G - G_style) a`` for the normalised one (the extra ``1/(H*W)`` is the
  chain rule through the normalisation).
* Content loss: ``mean((a - a_content)^2)`` (the notebook's ``reduce_mean``).
* Total variation: ``sum((x[..., 1:, :] - x[..., :-1, :])^2) + sum((x[..., 1:] - x[..., :-1])^2)``.

The image is optimised in *unit pixel space* ``u = pixels / 255`` in ``[0, 1]``, as the course
notebook does (its Adam: learning rate 0.02, beta1 0.99, epsilon 0.1); the backend's input space
turns ``255 u`` into model input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.errors import ConvnetError
from convnet.inputgrad.param import pixel_grad, to_model_input

# Defaults of the Gatys et al. setting on VGG19 (course notebook 000, section 3.4).
VGG19_STYLE_LAYERS = (
    "block1_conv1",
    "block2_conv1",
    "block3_conv1",
    "block4_conv1",
    "block5_conv1",
)
VGG19_CONTENT_LAYER = "block5_conv2"
# SqueezeNet: the cs231n assignment's style layers (features 1, 4, 6, 7 of torchvision's
# squeezenet1_1 = our relu1, fire3, fire4, fire5) and a deeper content layer. The ratios put
# the four layers' losses for tubingen/starry_night at 192 px on the same order: with the
# 1/(2N)^2 normalisation the raw per-layer losses span 4 orders of magnitude. The overall
# scale (1e6) matters because of Adam's epsilon 0.1: per-pixel gradients far below 0.1 turn
# Adam into plain SGD with a tiny step (measured: 2x instead of >10x in 200 steps at 192 px).
SQUEEZENET_STYLE_LAYERS = ("relu1", "fire3", "fire4", "fire5")
SQUEEZENET_STYLE_WEIGHTS = (1e9, 1e7, 3e5, 1e6)
SQUEEZENET_CONTENT_LAYER = "fire6"
SQUEEZENET_CONTENT_WEIGHT = 1e3  # 1e4: content wins, style only 2.8x in 100 steps
# Keras MobileNet v1 (the stand-in for VGG19 where its weights are missing): the first ReLU
# of each resolution, like VGG's blockK_conv1, and a deep pointwise layer for the content.
MOBILENET_STYLE_LAYERS = ("conv1_relu", "conv_pw_1_relu", "conv_pw_3_relu", "conv_pw_5_relu",
                          "conv_pw_11_relu")
MOBILENET_CONTENT_LAYER = "conv_pw_11_relu"
# ReLU6 activations are small, so the raw losses are ~1e-9..1e-5 (tubingen/starry_night,
# 192 px): these weights bring each layer's to ~1e4 (large, for Adam's epsilon; see above).
MOBILENET_STYLE_WEIGHTS = (1e13, 1e13, 1e12, 1e10, 1e9)
MOBILENET_CONTENT_WEIGHT = 1e4


def _check_act(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 4:
        raise ValueError(f"{name}: activation must be 4-D (N, C, H, W), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name}: activation must be floating point, got {a.dtype}")
    return a


def gram_matrix(a: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Gram matrix of the features of one layer, per image.

    Inputs:
    - a: activation of shape (N, C, H, W).
    - normalize: divide by the number of positions H*W (course notebook); False gives the
      exercise sheet's G = a a^T.

    Returns:
    - G: array of shape (N, C, C), G[n, f, g] = sum_j a[n, f, j] a[n, g, j] (/ (H*W)).
    """
    a = _check_act("gram_matrix", a)
    n, c, h, w = a.shape
    f = a.reshape(n, c, h * w)
    g = f @ f.transpose(0, 2, 1)
    return g / (h * w) if normalize else g


def style_layer_loss(
    a: np.ndarray, g_style: np.ndarray, normalize: bool = True
) -> tuple[float, np.ndarray]:
    """Style loss of one layer, 1/(2N)^2 ||G(a) - G_style||_F^2, and its analytic gradient.

    Inputs:
    - a: activation of shape (N_batch, C, H, W); the loss is summed over the batch.
    - g_style: target Gram matrix, (C, C) or (N_batch, C, C), computed with the same
      ``normalize``.
    - normalize: whether the Gram matrices are divided by H*W (see ``gram_matrix``).

    Returns:
    - loss: float.
    - da: gradient of the loss w.r.t. a, shape (N_batch, C, H, W):
      (G - G_style) a / N^2 (/ (H*W) when normalised), N = C*H*W.
    """
    a = _check_act("style_layer_loss", a)
    nb, c, h, w = a.shape
    g_style = np.asarray(g_style)
    if g_style.shape not in ((c, c), (nb, c, c)):
        raise ValueError(
            f"style_layer_loss: g_style must be ({c}, {c}) or ({nb}, {c}, {c}) for an activation "
            f"of shape {a.shape}, got {g_style.shape}"
        )
    n_entries = c * h * w
    diff = gram_matrix(a, normalize) - g_style
    loss = float(np.sum(diff * diff)) / (2.0 * n_entries) ** 2
    scale = 1.0 / n_entries**2 / (h * w if normalize else 1)
    # diff is symmetric, so the two terms of d||G - Gs||^2 / dF coincide: 2 * 2 * diff F.
    da = (diff @ a.reshape(nb, c, h * w)) * scale
    return loss, da.reshape(a.shape).astype(a.dtype, copy=False)


def content_loss(a: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Content loss mean((a - target)^2) and its gradient.

    Inputs:
    - a, target: arrays of the same shape (N, C, H, W) (any shape works).

    Returns:
    - loss: float.
    - da: 2 (a - target) / a.size, the shape of a.
    """
    a = np.asarray(a)
    target = np.asarray(target)
    if a.shape != target.shape:
        raise ValueError(
            f"content_loss: activation {a.shape} and target {target.shape} must have the same shape"
        )
    d = a - target
    return float(np.mean(d * d)), (2.0 / d.size) * d


def tv_loss(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Total variation: the sum of squared differences of vertical and horizontal neighbours.

    Inputs:
    - x: image of shape (N, C, H, W).

    Returns:
    - loss: float.
    - dx: gradient, shape of x.
    """
    x = _check_act("tv_loss", x)
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    loss = float(np.sum(dh * dh) + np.sum(dw * dw))
    dx = np.zeros_like(x)
    dx[:, :, 1:, :] += 2 * dh
    dx[:, :, :-1, :] -= 2 * dh
    dx[:, :, :, 1:] += 2 * dw
    dx[:, :, :, :-1] -= 2 * dw
    return loss, dx


class StyleLoss:
    """Weighted sum of per-layer style losses; objective protocol (``layers``, value, grad).

    Inputs:
    - targets: {layer name: target Gram (C, C)} (e.g. from ``style_targets``).
    - weights: {layer name: weight} (default 1 each).
    - normalize: Gram normalisation by H*W (must match how the targets were computed).
    """

    def __init__(
        self,
        targets: dict[str, np.ndarray],
        weights: dict[str, float] | None = None,
        normalize: bool = True,
    ) -> None:
        if not targets:
            raise ValueError("StyleLoss: need at least one style layer")
        self.targets = dict(targets)
        self.weights = {k: 1.0 for k in self.targets} if weights is None else dict(weights)
        missing = set(self.targets) - set(self.weights)
        if missing:
            raise ValueError(f"StyleLoss: no weight for style layers {sorted(missing)}")
        self.normalize = normalize
        self.layers = list(self.targets)

    def per_layer(self, acts: dict[str, np.ndarray]) -> dict[str, float]:
        """Unweighted loss of every style layer: {name: float}."""
        return {k: style_layer_loss(acts[k], g, self.normalize)[0] for k, g in self.targets.items()}

    def value(self, acts: dict[str, np.ndarray]) -> float:
        return float(sum(self.weights[k] * v for k, v in self.per_layer(acts).items()))

    def grad(self, acts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            k: self.weights[k] * style_layer_loss(acts[k], g, self.normalize)[1]
            for k, g in self.targets.items()
        }


class ContentLoss:
    """weight * mean((a - target)^2) at one layer; objective protocol (``layers``, value, grad)."""

    def __init__(self, layer: str, target: np.ndarray, weight: float = 1.0) -> None:
        self.layer = layer
        self.target = np.asarray(target)
        self.weight = float(weight)
        self.layers = [layer]

    def value(self, acts: dict[str, np.ndarray]) -> float:
        return self.weight * content_loss(acts[self.layer], self.target)[0]

    def grad(self, acts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {self.layer: self.weight * content_loss(acts[self.layer], self.target)[1]}


def _check_pixels(name: str, img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 3:  # (H, W, 3) as loaded from a file
        img = img.transpose(2, 0, 1)[None]
    if img.ndim != 4 or img.shape[:2] != (1, 3):
        raise ValueError(
            f"{name}: image must be (1, 3, H, W) RGB pixels in [0, 255] (or (H, W, 3)), "
            f"got shape {img.shape}"
        )
    return img.astype(np.float32)


def style_targets(
    backend: Any, style_img: np.ndarray, layers: Sequence[str], normalize: bool = True
) -> dict[str, np.ndarray]:
    """Target Gram matrices {layer: (C, C)} of a style image (pixels (1, 3, H, W) in [0, 255])."""
    x = to_model_input(backend.input_space, _check_pixels("style_targets", style_img))
    acts = backend.forward(x, layers=list(layers))
    return {k: gram_matrix(acts[k].astype(np.float64), normalize)[0] for k in layers}


@dataclass
class StyleResult:
    """Result of ``style_transfer``.

    - image: pixels (1, 3, H, W) float32 in [0, 255].
    - history: {'style', 'content', 'tv', 'total'} -> list of weighted loss values, one per step
      (the value at the image *before* that step's update), plus 'style/<layer>' (unweighted).
    - seconds: wall time of the optimisation.
    """

    image: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


def style_transfer(
    backend: Any,
    content_img: np.ndarray,
    style_img: np.ndarray,
    *,
    style_layers: Sequence[str] = VGG19_STYLE_LAYERS,
    content_layer: str = VGG19_CONTENT_LAYER,
    style_weights: float | Sequence[float] | dict[str, float] = 1.0,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    steps: int = 200,
    optimizer: str = "adam",
    learning_rate: float = 0.02,
    beta1: float = 0.99,
    epsilon: float = 0.1,
    init: str | np.ndarray = "content",
    normalize_gram: bool = True,
    seed: int | None = 0,
    progress: bool = False,
    callback: Callable[[int, np.ndarray, dict[str, float]], None] | None = None,
) -> StyleResult:
    """Gatys style transfer: minimise weighted style + content + TV losses over the image.

    Inputs:
    - backend: an input-gradient backend (``forward``, ``vjp``, ``input_space``).
    - content_img, style_img: RGB pixels (1, 3, H, W) (or (H, W, 3)) in [0, 255]; the style
      image may have another size (Gram matrices do not depend on it).
    - style_layers / content_layer: layer names of the backend.
    - style_weights: one weight for all style layers, one per layer (sequence), or a dict.
    - content_weight, tv_weight: weights of the content loss and the TV loss (TV is taken on
      u = pixels / 255). Scale all weights so that the gradient per pixel is well above
      Adam's epsilon (0.1), else Adam degenerates into slow plain SGD (see the SqueezeNet
      and MobileNet defaults above).
    - steps: optimisation steps (Adam steps, or L-BFGS iterations).
    - optimizer: 'adam' (the course's lr 0.02, beta1 0.99, epsilon 0.1, Keras placement of
      epsilon) or 'lbfgs' (scipy.optimize L-BFGS-B with the bounds [0, 1]).
    - init: 'content' (start from the content image), 'noise' (uniform in [0, 1], seeded) or
      an explicit start image in pixels (1, 3, H, W).
    - normalize_gram: Gram matrices divided by H*W (see ``gram_matrix``).
    - progress: tqdm progress bar; callback(step, pixels, losses) after every step.

    Returns:
    - StyleResult(image (1, 3, H, W) float32 pixels, history, seconds).
    """
    content = _check_pixels("style_transfer", content_img)
    style = _check_pixels("style_transfer", style_img)
    style_layers = list(style_layers)
    if isinstance(style_weights, dict):
        weights = {k: float(style_weights[k]) for k in style_layers}
    elif np.isscalar(style_weights):
        weights = {k: float(style_weights) for k in style_layers}  # type: ignore[arg-type]
    else:
        sw = list(style_weights)  # type: ignore[arg-type]
        if len(sw) != len(style_layers):
            raise ValueError(
                f"style_transfer: {len(sw)} style weights for {len(style_layers)} style layers"
            )
        weights = dict(zip(style_layers, map(float, sw), strict=True))
    known = getattr(backend, "layer_names", None)
    if known is not None:
        unknown = [k for k in [*style_layers, content_layer] if k not in known]
        if unknown:
            raise ConvnetError(f"style_transfer: unknown layer(s) {unknown}; the model has {known}")
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"style_transfer: optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")

    space = backend.input_space
    style_obj = StyleLoss(
        style_targets(backend, style, style_layers, normalize_gram), weights, normalize_gram
    )
    c_acts = backend.forward(to_model_input(space, content), layers=[content_layer])
    content_obj = ContentLoss(
        content_layer, c_acts[content_layer].astype(np.float32), content_weight
    )
    layers = list(dict.fromkeys([*style_layers, content_layer]))

    if isinstance(init, str):
        if init == "content":
            u = content / 255.0
        elif init == "noise":
            u = np.random.default_rng(seed).uniform(0, 1, content.shape)
        else:
            raise ValueError(
                f"style_transfer: init must be 'content', 'noise' or an image, got {init!r}"
            )
    else:
        u = _check_pixels("style_transfer(init)", init) / 255.0
        if u.shape != content.shape:
            raise ValueError(
                f"style_transfer: init image {u.shape} must match content {content.shape}"
            )
    u = u.astype(np.float64)
    history: dict[str, list[float]] = {"style": [], "content": [], "tv": [], "total": []}
    for k in style_layers:
        history[f"style/{k}"] = []

    def loss_and_grad(u_: np.ndarray) -> tuple[float, np.ndarray]:
        pixels = (255.0 * u_).astype(np.float32)
        acts = backend.forward(to_model_input(space, pixels), layers=layers)
        per = style_obj.per_layer(acts)
        ls = sum(weights[k] * per[k] for k in style_layers)
        lc = content_obj.value(acts)
        up = style_obj.grad(acts)
        up[content_layer] = up.get(content_layer, 0) + content_obj.grad(acts)[content_layer]
        up = {k: np.asarray(v, dtype=np.float32) for k, v in up.items()}
        gx = backend.vjp(up)
        # d/du = 255 * d/dpixels
        g = 255.0 * pixel_grad(space, gx).astype(np.float64)
        ltv = 0.0
        if tv_weight:
            ltv, dtv = tv_loss(u_)
            ltv *= tv_weight
            g = g + tv_weight * dtv
        total = ls + lc + ltv
        for k in style_layers:
            history[f"style/{k}"].append(per[k])
        history["style"].append(float(ls))
        history["content"].append(float(lc))
        history["tv"].append(float(ltv))
        history["total"].append(float(total))
        return float(total), g

    bar = _progress(steps, progress, "style")
    t0 = time.perf_counter()
    if optimizer == "adam":
        from convnet.optim import adam

        config: dict[str, Any] = {
            "learning_rate": learning_rate,
            "beta1": beta1,
            "epsilon": epsilon,
            "epsilon_placement": "hat",
        }
        for i in range(steps):
            total, g = loss_and_grad(u)
            u, config = adam(u, g, config)
            np.clip(u, 0.0, 1.0, out=u)
            _tick(bar, total)
            if callback is not None:
                callback(i, (255 * u).astype(np.float32), _last(history))
    else:
        from scipy.optimize import minimize

        shape = u.shape

        def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
            total, g = loss_and_grad(flat.reshape(shape))
            _tick(bar, total)
            return total, g.ravel()

        res = minimize(
            fun,
            u.ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * u.size,
            options={"maxiter": steps, "maxfun": steps},
        )
        u = res.x.reshape(shape)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    return StyleResult((255.0 * u).astype(np.float32), history, seconds)


def _last(history: dict[str, list[float]]) -> dict[str, float]:
    return {k: v[-1] for k, v in history.items() if v}


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _tick(bar, loss: float) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}")


__all__ = [
    "MOBILENET_CONTENT_LAYER",
    "MOBILENET_CONTENT_WEIGHT",
    "MOBILENET_STYLE_LAYERS",
    "MOBILENET_STYLE_WEIGHTS",
    "SQUEEZENET_CONTENT_LAYER",
    "SQUEEZENET_CONTENT_WEIGHT",
    "SQUEEZENET_STYLE_LAYERS",
    "SQUEEZENET_STYLE_WEIGHTS",
    "VGG19_CONTENT_LAYER",
    "VGG19_STYLE_LAYERS",
    "ContentLoss",
    "StyleLoss",
    "StyleResult",
    "content_loss",
    "gram_matrix",
    "style_layer_loss",
    "style_targets",
    "style_transfer",
    "tv_loss",
]
