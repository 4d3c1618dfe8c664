"""``convnet style``: neural style transfer (Gatys et al.) of a content photo in a style.

    convnet style images/tubingen.jpg images/starry_night.jpg --size 192 --steps 200
    convnet style photo.jpg painting.jpg --model keras:vgg19          # Gatys et al.'s network
    convnet style photo.jpg painting.jpg --optimizer lbfgs --init noise

Writes ``content.png``, ``style.png``, ``styled.png`` and ``losses.png`` (style, content and TV
terms over the steps) into ``--out``.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet.commands._common import (
    Watch,
    add_max_memory_arg,
    add_output_args,
    check_budget,
    check_file,
    check_layers,
    check_out_dir,
    finite_float,
    fixed_size,
    image_side,
    is_grey,
    load_pixels,
    nonneg_float,
    positive_float,
    positive_int,
    run_interruptible,
    save,
)
from convnet.commands._model import add_model_args, load_model
from convnet.model_spec import model_family
from convnet.viz.curves import plot_losses


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "style",
        help="neural style transfer: a content image painted in the style of another",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("content", help="content image file")
    p.add_argument("style", help="style image file")
    p.add_argument("--size", type=image_side, default=192,
                   help="square size of both images (192)")  # fmt: skip
    p.add_argument("--steps", type=positive_int, default=200, help="optimisation steps (200)")
    p.add_argument("--style-layers", default=None, help="comma-separated (default per model)")
    p.add_argument("--style-weights", default=None,
                   help="one weight, or comma-separated, one per style layer")  # fmt: skip
    p.add_argument("--content-layer", default=None, help="default fire6 / block5_conv2")
    p.add_argument("--content-weight", type=nonneg_float, default=None,
                   help="default per model (squeezenet 1e3, mobilenet 1e4, vgg 1e2)")  # fmt: skip
    p.add_argument("--tv-weight", type=nonneg_float, default=0.0, help="total variation weight")
    p.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam")
    p.add_argument("--lr", type=positive_float, default=0.02,
                   help="Adam learning rate (0.02, as the TensorFlow style-transfer tutorial)")
    p.add_argument("--init", choices=("content", "noise"), default="content")
    add_model_args(p, classifier=False)
    add_output_args(p)
    add_max_memory_arg(p)
    p.set_defaults(func=run)


def _defaults(model: str) -> tuple[list[str], list[float], str, float]:
    """(style layers, style weights, content layer, content weight) for a model family."""
    from convnet.inputgrad import style as S

    fam = model_family(model)
    if fam == "squeezenet":
        return (list(S.SQUEEZENET_STYLE_LAYERS), list(S.SQUEEZENET_STYLE_WEIGHTS),
                S.SQUEEZENET_CONTENT_LAYER, S.SQUEEZENET_CONTENT_WEIGHT)  # fmt: skip
    if fam in ("vgg19", "vgg16"):
        # Untuned (no VGG19 weights here): an order-of-magnitude estimate of the balance.
        return list(S.VGG19_STYLE_LAYERS), [1e6] * 5, S.VGG19_CONTENT_LAYER, 1e2
    if fam == "mobilenet":
        return (list(S.MOBILENET_STYLE_LAYERS), list(S.MOBILENET_STYLE_WEIGHTS),
                S.MOBILENET_CONTENT_LAYER, S.MOBILENET_CONTENT_WEIGHT)  # fmt: skip
    raise ValueError(f"no default style/content layers for {model!r}: pass --style-layers "
                     "and --content-layer")  # fmt: skip


_WEIGHT = finite_float(min=0)


def _style_weights(text: str) -> float | list[float]:
    """``--style-weights``: one finite weight >= 0, or a comma-separated list of them."""
    try:
        sw = [_WEIGHT(v) for v in text.split(",")]
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"--style-weights: {e}") from None
    return sw[0] if len(sw) == 1 else sw


def _layers(args: argparse.Namespace) -> tuple[list[str], Any, str, float]:
    """(style layers, style weights, content layer, content weight) from options/defaults."""
    custom = args.style_layers is not None and args.content_layer is not None
    d_layers, d_weights, d_content, d_cw = ([], [], "", 1.0) if custom else _defaults(args.model)
    style_layers = args.style_layers.split(",") if args.style_layers else d_layers
    content_layer = args.content_layer or d_content
    if args.style_weights is not None:
        sw: Any = _style_weights(args.style_weights)
        if isinstance(sw, list) and len(sw) != len(style_layers):
            raise ValueError(f"--style-weights: {len(sw)} weights for {len(style_layers)} "
                             "style layers; give one, or one per layer")  # fmt: skip
    else:
        sw = d_weights if args.style_layers is None else 1.0
    cw = args.content_weight if args.content_weight is not None else d_cw
    return style_layers, sw, content_layer, cw


def run(args: argparse.Namespace) -> int:
    from convnet.inputgrad.style import style_transfer

    check_out_dir(args.out)
    for f in (args.content, args.style):
        check_file(f)
    style_layers, sw, content_layer, cw = _layers(args)
    backend = load_model(args)
    check_layers(backend, style_layers, "--style-layers")
    check_layers(backend, [content_layer], "--content-layer")
    grey = is_grey(backend)
    size = fixed_size(backend) or args.size  # a fixed-size model takes no other size
    hw = size if isinstance(size, tuple) else (size, size)
    # L-BFGS keeps 10 pairs of image-sized float64 vectors and the bounds: ~half an image more
    check_budget(args, backend, hw, "lower --size",
                 images=1.5 if args.optimizer == "lbfgs" else 1.0)  # fmt: skip
    content = load_pixels(args.content, size, grey=grey)
    style = load_pixels(args.style, size, grey=grey)
    watch = Watch(lambda a: a, "lower --lr or the loss weights")
    res = run_interruptible(lambda: style_transfer(
        backend, content, style, style_layers=style_layers, content_layer=content_layer,
        style_weights=sw, content_weight=cw, tv_weight=args.tv_weight,
        steps=args.steps, optimizer=args.optimizer, learning_rate=args.lr, init=args.init,
        seed=args.seed, progress=not args.no_progress, callback=watch,
    ), watch, args.out / "styled_partial.png")  # fmt: skip
    if res is None:
        return 130
    watch.check(res.image, "the end")
    save(content, args.out / "content.png")
    save(style, args.out / "style.png")
    save(res.image, args.out / "styled.png")
    path = plot_losses(res.history, args.out / "losses.png", f"{args.model}, {args.size} px")
    print(f"wrote {path}")
    h = res.history
    print(f"style loss {h['style'][0]:.4g} -> {h['style'][-1]:.4g}, content loss "
          f"{h['content'][0]:.4g} -> {h['content'][-1]:.4g} ({res.seconds:.1f} s)")  # fmt: skip
    return 0
