"""A Keras Sequential convnet like BasicConvNet, trained on CIFAR-10 next to convnet's twin.

The Keras model is written with the Sequential API on its own (not converted from convnet):

    Conv2D(32, 7, padding='same', activation='relu') - MaxPooling2D(2) - Flatten -
    Dense(100, activation='relu') - Dense(10)          (softmax in the loss, from_logits)

Next to it, convnet's BasicConvNet of the same architecture (``from_keras`` of the Keras
model, so it also starts from the same weights) is trained with the same update rule (Adam,
Keras' epsilon placement), batch size and minibatch order. The script reports test accuracy
and training time of both, and the time ratio convnet/Keras. Inputs are CIFAR-10 pixels scaled
to [0, 1] minus the per-channel training mean.

    python experiments/tfkeras_conv_cifar.py                       # all available batches
    python experiments/tfkeras_conv_cifar.py --subset 2000 --epochs 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from convnet.data import load_cifar10
from convnet.interop import import_keras
from convnet.interop.keras import from_keras

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_keras_training import (  # noqa: E402
    ConvnetTrainer,
    KerasTrainer,
    epoch_table,
    set_threads,
    train_side_by_side,
    update_rules,
)


def keras_cifar_convnet(num_filters: int = 32, filter_size: int = 7, hidden: int = 100,
                        seed: int = 0):
    """BasicConvNet's architecture in the Keras Sequential API, NHWC input (32, 32, 3)."""
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            L.Conv2D(num_filters, filter_size, padding="same", activation="relu", name="conv1"),
            L.MaxPooling2D(2, name="pool1"),
            L.Flatten(name="flatten"),
            L.Dense(hidden, activation="relu", name="fc1"),
            L.Dense(10, name="out"),
        ],
        name="keras_cifar_convnet",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subset", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--test", type=int, default=10000, help="test images to evaluate on")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--num-filters", type=int, default=32)
    p.add_argument("--filter-size", type=int, default=7)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keras-only", action="store_true", help="skip the convnet run")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for both libraries (0: each library's default)")
    p.add_argument("--out", type=Path, default=Path("runs/tfkeras_conv_cifar"))
    args = p.parse_args(argv)

    set_threads(args.threads)
    keras = import_keras()
    data = load_cifar10(dtype="float32")
    n = args.subset or len(data["X_train"])
    X, y = data["X_train"][:n], data["y_train"][:n]
    mean = X.mean(axis=(0, 2, 3), keepdims=True)
    X = X - mean
    X_test = data["X_test"][: args.test] - mean
    y_test = data["y_test"][: args.test]

    kmodel = keras_cifar_convnet(args.num_filters, args.filter_size, args.hidden, args.seed)
    trainers = {}
    if not args.keras_only:
        # same architecture and initial weights in convnet (conv1 'same' -> pad 3, the fused
        # ReLUs become layers conv1_relu and fc1_relu)
        model = from_keras(kmodel)
        rule, cfg, _ = update_rules("adam", args.lr, keras)
        trainers["convnet"] = ConvnetTrainer(model, rule, cfg)
        print("convnet layers:", ", ".join(model.layer_names))
    _, _, opt = update_rules("adam", args.lr, keras)
    trainers["keras"] = KerasTrainer(kmodel, opt)
    print(f"CIFAR-10: {n} training images, {len(X_test)} test images; Adam lr {args.lr}, "
          f"batch {args.batch_size}, {args.epochs} epoch(s)")
    res = train_side_by_side(trainers, X, y, X_test, y_test, args.epochs, args.batch_size,
                             args.seed)
    if not args.keras_only:
        print("\n" + epoch_table(res["epochs"]))
    last = res["epochs"][-1]
    print(f"\nKeras test accuracy {last['keras_test_acc']:.4f} "
          f"(a short BasicConvNet run reaches a little over 40%)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "epochs": res["epochs"]}, indent=1
    ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
