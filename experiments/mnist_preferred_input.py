"""Preferred input of each output unit of a small MNIST network (activation maximisation).

``MnistConvNet`` (5 filters 11x11, relu, flatten, dense 10) is trained on MNIST scaled to
[-1, 1] with ``convnet.solver.Solver`` (or loaded with ``--model``); then for every digit the
input is optimised: start at 0.7 everywhere, Adam (Keras defaults),
maximise the softmax output of that unit, clip to [-1, 1] after each step, at most 500 steps.
Writes ``preferred_inputs.png`` (the ten pictures with p(digit)), ``preferred_inputs.npz``,
the trained model (``mnist_convnet.npz``) and ``summary.txt``.

    python experiments/mnist_preferred_input.py --out runs/preferred
    python experiments/mnist_preferred_input.py --model runs/preferred/mnist_convnet.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from convnet.inputgrad import InputSpace, NumpyBackend, preferred_input


def train(train_size: int, epochs: int, seed: int):
    from convnet.data.mnist import load_mnist
    from convnet.models import MnistConvNet
    from convnet.solver import Solver

    d = load_mnist(dtype="float32", value_range=(-1.0, 1.0))
    data = {"X_train": d["X_train"][:train_size], "y_train": d["y_train"][:train_size],
            "X_val": d["X_val"][:2000], "y_val": d["y_val"][:2000]}  # fmt: skip
    model = MnistConvNet(seed=seed)
    Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
           batch_size=200, num_epochs=epochs, seed=seed, verbose=True).train()  # fmt: skip
    acc = model.accuracy(d["X_test"], d["y_test"])
    return model, acc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/mnist_preferred_input"))
    p.add_argument("--model", type=Path, default=None, help="a saved MnistConvNet .npz")
    p.add_argument("--train-size", type=int, default=50000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    if args.model is not None:
        from convnet.models import Sequential

        model = Sequential.load(args.model)
        lines.append(f"model loaded from {args.model}")
    else:
        model, acc = train(args.train_size, args.epochs, args.seed)
        model.save(args.out / "mnist_convnet.npz")
        lines.append(f"MnistConvNet trained on {args.train_size} digits for {args.epochs} "
                     f"epoch(s): test accuracy {acc:.4f}")  # fmt: skip
    backend = NumpyBackend(model, InputSpace.mnist_minus1_1())
    xs, steps = [], []
    for digit in range(10):
        x, hist = preferred_input(backend, digit, steps=args.steps)
        xs.append(x)
        steps.append(len(hist))
    X = np.concatenate(xs)
    prob = backend.predict_proba(X)
    np.savez(args.out / "preferred_inputs.npz", x=X, p=prob)
    fig, axes = plt.subplots(1, 10, figsize=(15, 2.2))
    for d, ax in enumerate(axes):
        ax.imshow(X[d, 0], cmap="gray", vmin=-1, vmax=1)
        ax.set_title(f"{d}: p={prob[d, d]:.4f}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out / "preferred_inputs.png", dpi=100)
    for d in range(10):
        lines.append(f"digit {d}: predicted {prob[d].argmax()} with p({d}) = {prob[d, d]:.5f} "
                     f"after {steps[d]} steps")  # fmt: skip
    ok = all(prob[d].argmax() == d and prob[d, d] > 0.99 for d in range(10))
    lines.append(f"all ten classified as their digit with p > 0.99: {ok}")
    print("\n".join(lines))
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
