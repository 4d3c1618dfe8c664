"""``convnet compare``: cross-check a model against its Keras twin.

Builds the Keras twin (``convnet.interop.keras.to_keras``), runs both on the same random input
and labels, and prints the table of ``convnet.interop.keras.compare``: every named layer's
output, the loss, the input gradient and every parameter gradient. Exit status 0 when all
rows are within tolerance (float32: rtol 1e-4, float64: 1e-10), 1 otherwise.

    convnet compare --model basic
    convnet compare --model mnistconv --dtype float64 --seed 3
    convnet compare --model runs/mnist/best.npz --json report.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from convnet._io import atomic_write_text
from convnet.commands._common import check_out_file, finite_float, int_range, nonneg_int

MODELS = ("basic", "fc", "mnistconv")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare a model with its Keras twin (outputs, loss, gradients)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--model", default="basic",
        help=f"one of {', '.join(MODELS)}, or a model file saved with Sequential.save (.npz)",
    )
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision of both models and of the tolerance (default float32)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of weights, input and labels")
    p.add_argument("--batch", type=int_range(1, 4096), default=4,
                   help="batch size of the random input (1..4096)")
    p.add_argument("--rtol", type=finite_float(min=0, min_open=True, max=1), default=None,
                   help="tolerance on the relative difference (default by dtype)")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    p.set_defaults(func=run)


def build_model(spec: str, dtype: str, seed: int):
    """The convnet model named by ``spec`` (a name of MODELS or a .npz path) in ``dtype``."""
    from convnet.models import BasicConvNet, FullyConnectedNet, MnistConvNet, Sequential

    if spec == "basic":
        return BasicConvNet(seed=seed, dtype=dtype)
    if spec == "fc":
        return FullyConnectedNet([100, 50], input_dim=(1, 28, 28), seed=seed, dtype=dtype)
    if spec == "mnistconv":
        return MnistConvNet(seed=seed, dtype=dtype)
    path = Path(spec)
    if path.suffix != ".npz":
        raise ValueError(f"compare: --model must be one of {MODELS} or a .npz file, got {spec!r}")
    if not path.exists():
        raise FileNotFoundError(f"compare: model file {path} does not exist")
    return Sequential.load(path).astype(dtype)


def run(args: argparse.Namespace) -> int:
    from convnet.interop.keras import compare, to_keras

    if args.json is not None:
        check_out_file(args.json, "--json", "report.json")
    model = build_model(args.model, args.dtype, args.seed)
    if model.input_shape is None:
        raise ValueError(f"compare: model {model.name!r} has no fixed input_shape")
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch, *model.input_shape)).astype(args.dtype)
    y = None
    if getattr(model, "loss_name", None) == "softmax":
        n_out = model.output_shapes()[-1][-1]
        y = rng.integers(0, n_out, args.batch)
    kmodel = to_keras(model)
    report = compare(model, kmodel, x, y, rtol=args.rtol)
    print(f"model: {args.model} ({model.name}), input {x.shape}, seed {args.seed}")
    print(report)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2))
    return 0 if report.passed else 1
