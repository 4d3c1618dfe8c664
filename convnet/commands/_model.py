"""``--model`` and its options, the same for every subcommand that looks inside a model.

    --model squeezenet | PATH.npz | keras:NAME | keras-file:PATH.keras (or .h5)
                       (grammar: convnet.model_spec)
    --alpha A          width multiplier of keras:mobilenet(_v2)
    --weights W        imagenet (default), a weights file, or none
    --input-space S    override the model's preprocessing (an INPUT_SPACES name; a
                       keras-file model records none: RGB/grey [0, 1] unless given)
    --include-top / --no-top   Keras classifier on or off (feature commands only)

The classifier commands (saliency, classviz, fool) need the model's class scores, so they
always load Keras models with their classifier; the feature commands (features, dream,
style) load them without it by default, which lets them take images of any size.
"""

from __future__ import annotations

import argparse
from typing import Any

from convnet.backend import INPUT_SPACES
from convnet.commands._common import finite_float
from convnet.model_spec import SPEC_HELP, load_backend


def add_model_args(p: argparse.ArgumentParser, classifier: bool) -> None:
    """Add the model options to ``p``; ``classifier``: the command reads class scores."""
    g = p.add_argument_group("model")
    g.add_argument("--model", default="squeezenet",
                   help=f"{SPEC_HELP} (e.g. keras:mobilenet_v2, "
                        "keras-file:my_net.keras; default squeezenet)")  # fmt: skip
    g.add_argument("--alpha", type=finite_float(min=0, min_open=True, max=10), default=1.0,
                   help="width multiplier of keras:mobilenet(_v2), e.g. 0.25")  # fmt: skip
    g.add_argument("--weights", default="imagenet",
                   help="squeezenet / keras: imagenet (default), a weights file, or none "
                        "(random)")  # fmt: skip
    g.add_argument("--input-space", default=None, metavar="NAME",
                   help="override the model's input preprocessing: "
                        f"{', '.join(INPUT_SPACES)}")  # fmt: skip
    if classifier:
        p.set_defaults(include_top=True)
    else:
        top = g.add_mutually_exclusive_group()
        top.add_argument("--include-top", dest="include_top", action="store_true",
                         help="keras: keep the ImageNet classifier (fixed input size)")  # fmt: skip
        top.add_argument("--no-top", dest="include_top", action="store_false",
                         help="keras: no classifier, any input size (default)")  # fmt: skip
        p.set_defaults(include_top=False)


def load_model(args: argparse.Namespace) -> Any:
    """The backend the model options of ``args`` name."""
    return load_backend(args.model, args.input_space, alpha=args.alpha, weights=args.weights,
                        include_top=args.include_top)  # fmt: skip
