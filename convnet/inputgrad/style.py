"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) on any input-gradient backend.

The image is optimised so that the Gram matrices of its activations at a few *style* layers
match those of a style image, while its activations at a *content* layer stay close to those of
a content photo. All losses below have analytic gradients with respect to the activations; the
backend's ``vjp`` carries them back to the image.

Conventions (Gatys et al. 2016, section 2, with the normalisation of the TensorFlow style
transfer tutorial as an option):

* ``a`` is a layer activation ``(N, C, H, W)``; for one image it is the matrix ``F`` of shape
  ``(C, H*W)`` (features x positions).
* ``gram_matrix(a) = F F^T / (H*W)`` (normalised by the number of positions, as in the
  TensorFlow tutorial; ``normalize=False`` gives Gatys et al.'s ``G = F F^T``).
* Style loss of one layer (Gatys et al., eq. 4), with ``N`` the number of entries of ``a``
  (``C*H*W``): ``L = 1/(2N)^2 * ||G - G_style||_F^2``. Its gradient (eq. 6) is
  ``dL/da = 1/N^2 * (G - G_style) a`` for the unnormalised Gram and
  ``1/(N^2 * H*W) * (G - G_style) a`` for the normalised one (the extra ``1/(H*W)`` is the
  chain rule through the normalisation).
* Content loss: ``mean((a - a_content)^2)``.
* Total variation: ``sum((x[..., 1:, :] - x[..., :-1, :])^2) + sum((x[..., 1:] - x[..., :-1])^2)``.

The image is optimised in *unit pixel space* ``u = pixels / 255`` in ``[0, 1]`` (Adam:
learning rate 0.02, beta1 0.99, epsilon 0.1, as in the TensorFlow tutorial); the backend's
input space turns ``255 u`` into model input. :func:`style_transfer` is a preset on
:func:`convnet.inputgrad.optimize.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convnet.errors import ConvnetError
from convnet.inputgrad.objectives import Objective, TotalVariation
from convnet.inputgrad.optimize import Monitor, render
from convnet.inputgrad.param import PixelParam, to_model_input

# The Gatys et al. (2016) layers on VGG19: conv1_1 ... conv5_1 for style, conv5_2 for content.
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
    - normalize: divide by the number of positions H*W; False gives Gatys et al.'s
      G = F F^T.

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


class StyleLoss(Objective):
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


class ContentLoss(Objective):
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


def _style_weights(
    style_layers: list[str], style_weights: float | Sequence[float] | dict[str, float]
) -> dict[str, float]:
    if isinstance(style_weights, dict):
        return {k: float(style_weights[k]) for k in style_layers}
    if np.isscalar(style_weights):
        return {k: float(style_weights) for k in style_layers}  # type: ignore[arg-type]
    sw = list(style_weights)  # type: ignore[arg-type]
    if len(sw) != len(style_layers):
        raise ValueError(
            f"style_transfer: {len(sw)} style weights for {len(style_layers)} style layers"
        )
    return dict(zip(style_layers, map(float, sw), strict=True))


def _start(content: np.ndarray, init: str | np.ndarray, seed: int | None) -> PixelParam:
    """The image variable u = pixels / 255 in [0, 1], from the content, noise or an image."""
    if isinstance(init, str):
        if init not in ("content", "noise"):
            raise ValueError(
                f"style_transfer: init must be 'content', 'noise' or an image, got {init!r}"
            )
        # 'noise': uniform in [0, 1] (amplitude one half-range around mid grey).
        start: Any = content if init == "content" else "random"
        return PixelParam(content.shape, start, std=1.0, seed=seed, value_range=(0.0, 1.0))
    img = _check_pixels("style_transfer(init)", init)
    if img.shape != content.shape:
        raise ValueError(
            f"style_transfer: init image {img.shape} must match content {content.shape}"
        )
    return PixelParam(content.shape, img, value_range=(0.0, 1.0))


def _losses(
    backend: Any, content: np.ndarray, style: np.ndarray, style_layers: list[str],
    content_layer: str, weights: dict[str, float], content_weight: float, tv_weight: float,
    normalize: bool,
) -> tuple[Objective, Monitor]:  # fmt: skip
    """The total loss, and the monitor of its terms (weighted) and of each style layer."""
    space = backend.input_space
    targets = style_targets(backend, style, style_layers, normalize)
    style_obj = StyleLoss(targets, weights, normalize)
    c_acts = backend.forward(to_model_input(space, content), layers=[content_layer])
    content_obj = ContentLoss(content_layer, c_acts[content_layer].astype(np.float32),
                              content_weight)  # fmt: skip
    terms: dict[str, Objective] = {"style": style_obj, "content": content_obj}
    if tv_weight:
        # TV on u = pixels / 255: the model input has 255 * pixel_scale units per unit of u.
        terms["tv"] = tv_weight * TotalVariation(scale=255.0 * space.pixel_scale())
    per_layer = {f"style/{k}": StyleLoss({k: g}, None, normalize) for k, g in targets.items()}
    return sum(terms.values(), 0), Monitor({**terms, **per_layer})  # type: ignore[return-value]


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
    - steps: optimisation steps (Adam steps, or L-BFGS evaluations).
    - optimizer: 'adam' (lr 0.02, beta1 0.99, epsilon 0.1, Keras placement of epsilon) or
      'lbfgs' (scipy.optimize L-BFGS-B with the bounds [0, 1]).
    - init: 'content' (start from the content image), 'noise' (uniform in [0, 1], seeded) or
      an explicit start image in pixels (1, 3, H, W).
    - normalize_gram: Gram matrices divided by H*W (see ``gram_matrix``).
    - progress: tqdm progress bar; callback(step, pixels, losses) after every Adam step.

    Returns:
    - StyleResult(image (1, 3, H, W) float32 pixels, history, seconds).
    """
    content = _check_pixels("style_transfer", content_img)
    style = _check_pixels("style_transfer", style_img)
    style_layers = list(style_layers)
    weights = _style_weights(style_layers, style_weights)
    known = getattr(backend, "layer_names", None)
    unknown = [k for k in [*style_layers, content_layer] if known is not None and k not in known]
    if unknown:
        raise ConvnetError(f"style_transfer: unknown layer(s) {unknown}; the model has {known}")
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"style_transfer: optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    u = _start(content, init, seed)
    objective, monitor = _losses(backend, content, style, style_layers, content_layer, weights,
                                 content_weight, tv_weight, normalize_gram)  # fmt: skip

    def on_step(step: int, x: np.ndarray, total: float) -> None:
        if callback is not None and optimizer == "adam":
            callback(step, u.to_pixels(), {"tv": 0.0, **monitor.last(), "total": total})

    config = {"learning_rate": learning_rate, "beta1": beta1, "epsilon": epsilon,
              "epsilon_placement": "hat"}  # fmt: skip
    r = render(backend, objective, u, steps, optimizer=optimizer, optimizer_config=config,
               maximize=False, monitor=monitor, progress=progress,
               callback=on_step if callback is not None else None, desc="style")  # fmt: skip
    h = monitor.history
    history = {"style": h["style"], "content": h["content"],
               "tv": h.get("tv", [0.0] * len(r.history)), "total": r.history}  # fmt: skip
    history.update({k: v for k, v in h.items() if k.startswith("style/")})
    return StyleResult(u.to_pixels(), history, r.seconds)


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
