"""``convnet explain``: which parts of an image a class score depends on.

    convnet explain dog.jpg --method gradcam --class 208 --layer fire9 --out runs/explain
    convnet explain dog.jpg --method guided-gradcam --smooth 16
    convnet explain dog.jpg --method ig --baseline blur --steps 128
    convnet explain dog.jpg --method occlusion --patch 32 --stride 16
    convnet explain digit.png --method saliency --model runs/mnist.npz

Methods: Grad-CAM and Grad-CAM++ (a layer's feature maps weighted by the class gradient),
guided backpropagation and guided Grad-CAM, integrated gradients (black or blurred baseline;
the completeness error is printed), occlusion and the plain saliency map. ``--smooth N``
averages a gradient method over N noisy copies (SmoothGrad).

Writes ``<method>_heatmap.png`` (the map through a colour map) and ``<method>_overlay.png``
(the map over the image) into ``--out``, plus ``<method>_gradient.png`` (signed colour
gradient) for the pixel-gradient methods, and prints the top classes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from convnet.commands._common import (
    MAX_SIDE,
    check_out_dir,
    check_scores,
    class_names,
    colour_map,
    colourise,
    finite_float,
    format_top,
    image_side,
    int_range,
    label,
    load_sized,
    nonneg_int,
    write_image,
)
from convnet.commands._model import add_model_args, load_model

METHODS = ("gradcam", "gradcam++", "guided", "guided-gradcam", "ig", "occlusion", "saliency")
#: methods whose result is a gradient of the pixels (shown as a colour image too)
PIXEL_METHODS = ("guided", "guided-gradcam", "ig")


# ----------------------------------------------------------------------------------- explain
def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="attribution maps of an image (Grad-CAM, guided backprop, integrated gradients, "
        "occlusion, saliency)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("image", help="image file")
    p.add_argument("--method", choices=METHODS, default="gradcam", help="default gradcam")
    p.add_argument("--class", dest="class_idx", type=nonneg_int, default=None,
                   help="class to explain (default: the predicted class)")  # fmt: skip
    p.add_argument(
        "--layer",
        default=None,
        help="Grad-CAM layer (default: the last feature map before the output)",
    )
    p.add_argument(
        "--smooth",
        type=int_range(0, 10000),
        default=0,
        help="SmoothGrad: average over N noisy copies (gradient methods; 0 = off)",
    )
    p.add_argument("--noise", type=finite_float(min=0, max=10), default=0.15,
                   help="SmoothGrad noise std, fraction of the pixel range (0.15)")  # fmt: skip
    p.add_argument("--seed", type=nonneg_int, default=0, help="SmoothGrad noise seed")
    p.add_argument("--steps", type=int_range(1, 100000), default=128,
                   help="integrated gradients: steps (128)")  # fmt: skip
    p.add_argument("--baseline", choices=("black", "blur"), default="black",
                   help="integrated gradients baseline (black)")  # fmt: skip
    p.add_argument("--blur-sigma", type=finite_float(min=0, min_open=True, max=1000), default=10.0,
                   help="blurred baseline: Gaussian sigma in pixels (10)")  # fmt: skip
    p.add_argument("--patch", type=image_side, default=32,
                   help="occlusion patch side in pixels (32)")  # fmt: skip
    p.add_argument("--stride", type=image_side, default=8, help="occlusion stride (8)")
    p.add_argument("--fill", type=finite_float(min=0, max=255), default=127.5,
                   help="occlusion fill level (127.5)")  # fmt: skip
    p.add_argument("--cmap", type=colour_map, default="jet", help="matplotlib colour map (jet)")
    p.add_argument("--opacity", type=finite_float(min=0, max=1), default=0.5,
                   help="overlay opacity of the map (0.5)")  # fmt: skip
    p.add_argument("--size", type=int_range(8, MAX_SIDE), default=None,
                   help="resize the image to SIZE x SIZE (default: the model's input size, "
                   "227 for size-free models)")  # fmt: skip
    add_model_args(p, classifier=True)
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out)")
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    if args.smooth < 0:
        raise ValueError(f"--smooth must be >= 0, got {args.smooth}")
    if args.smooth and args.method == "occlusion":
        raise ValueError("--smooth applies to the gradient methods, not to occlusion")
    if not 0.0 <= args.opacity <= 1.0:
        raise ValueError(f"--opacity must be in [0, 1], got {args.opacity}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")


def attributions(backend: Any, x: np.ndarray, c: int, args: argparse.Namespace) -> np.ndarray:
    """The method's raw result for one image: (1, H, W) map or (1, C, H, W) pixel gradient."""
    from convnet.inputgrad import attribution as at
    from convnet.inputgrad.occlusion import occlusion
    from convnet.inputgrad.saliency import saliency_map

    m = args.method
    if m == "saliency":
        return saliency_map(backend, x, c, smoothgrad=args.smooth, noise=args.noise,
                            seed=args.seed)  # fmt: skip
    if m == "occlusion":
        return occlusion(backend, x, c, patch=args.patch, stride=args.stride, fill=args.fill)
    fn, kw = {
        "gradcam": (at.grad_cam, {"layer": args.layer}),
        "gradcam++": (at.grad_cam_plus_plus, {"layer": args.layer}),
        "guided": (at.guided_backprop, {}),
        "guided-gradcam": (at.guided_grad_cam, {"layer": args.layer}),
        "ig": (
            at.integrated_gradients,
            {"baseline": args.baseline, "steps": args.steps, "sigma": args.blur_sigma},
        ),  # fmt: skip
    }[m]
    if "layer" in kw and kw["layer"] is None:
        kw["layer"] = at.default_cam_layer(backend, x)
        print(f"layer: {kw['layer']}")
    if args.smooth:
        return at.smoothgrad(fn, backend, x, c, samples=args.smooth, noise=args.noise,
                             seed=args.seed, **kw)  # fmt: skip
    result = fn(backend, x, c, **kw)
    if m == "ig":
        err = at.completeness_error(backend, x, c, result, args.baseline, args.blur_sigma)[0]
        print(f"integrated gradients: {args.steps} steps, {args.baseline} baseline, "
              f"completeness error {100 * err:.2f}%")  # fmt: skip
        if err > 0.01:
            print("  (over 1%: more --steps bring the sum closer to the score change)")
    return result


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad import attribution as at

    check_args(args)
    check_out_dir(args.out)
    backend = load_model(args)
    pix, x = load_sized(backend, args.image, args.size)
    names = class_names(backend)
    probs = backend.predict_proba(x)[0]
    check_scores(probs, args.image)
    print(f"top classes: {format_top(probs, names)}")
    c = int(probs.argmax()) if args.class_idx is None else args.class_idx
    backend.check_class(c, 1)
    print(f"explaining class {label(c, names)} ({probs[c]:.3f}) with {args.method}"
          + (f", SmoothGrad x{args.smooth}" if args.smooth else ""))  # fmt: skip
    attr = attributions(backend, x, c, args)
    if args.method.startswith("gradcam"):
        heat = at.normalise_maps(attr)[0]
    else:
        heat = at.attribution_heatmap(attr)[0]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.method.replace("+", "p")
    coloured = colourise(heat, args.cmap)
    img = pix[0].transpose(1, 2, 0)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    write_image(coloured, args.out / f"{stem}_heatmap.png")
    overlay = args.opacity * coloured + (1.0 - args.opacity) * img
    write_image(overlay, args.out / f"{stem}_overlay.png")
    if args.method in PIXEL_METHODS:
        gradient = at.gradient_image(attr)[0].transpose(1, 2, 0)
        write_image(gradient, args.out / f"{stem}_gradient.png")
    return 0
