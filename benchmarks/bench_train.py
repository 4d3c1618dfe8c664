"""Training throughput (images/s) of a small convnet: convnet vs Keras vs tf.function vs PyTorch.

Network, float32, input 28x28x1, 10 classes:
conv 32 3x3 pad 1 -> relu -> max-pool 2x2 -> dense 100 -> relu -> dense 10 -> softmax
cross-entropy, Adam (lr 1e-3). Batch 100 and batch 10, synthetic data (speed does not
depend on the pixel values).

- convnet: ``convnet.solver.Solver._step`` on consecutive minibatches: ``model.loss(X, y)``
  (forward + backward), an Adam update of every parameter and the Solver's finiteness
  checks (falls back to the first two written out if the Solver is unavailable);
- Keras: ``model.fit`` for one epoch (after a warm-up epoch that traces the graph);
- tf.function: a hand-written train step (GradientTape + Adam), traced once;
- PyTorch: ``nn.Sequential`` + ``torch.optim.Adam`` (NCHW).

Each library runs in its own subprocess with ``--threads`` threads in every pool.

    python -m benchmarks.bench_train [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import (
    emit,
    machine_description,
    markdown_table,
    pin_threads_in_process,
    ratio,
    run_worker,
)

WORKERS = ["convnet", "keras_fit", "tf_function", "torch"]
BATCHES = (100, 10)


def _images_per_s(step: Callable[[int], None], n_batches: int, batch: int,
                  rounds: int, round_time: float = 4.0) -> float:
    """Median throughput over ``rounds`` timed runs (after 3 warm-up steps).

    A round runs ``n_batches`` steps, or stops early (after at least 3 steps) once it has
    taken ``round_time`` seconds, so that a slow library keeps the script short.
    """
    for i in range(3):
        step(i)
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        done = 0
        while done < n_batches:
            step(done)
            done += 1
            if done >= 3 and time.perf_counter() - t0 >= round_time:
                break
        rates.append(done * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def _data(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return X, y


def _n_batches(batch: int, quick: bool) -> int:
    # ~2000 images per timed round (~200 in quick mode).
    return max(5, (200 if quick else 2000) // batch)


def _solver_step(model, X, y, batch: int) -> Callable[[int], None]:
    """Solver._step on consecutive minibatches (else model.loss + Adam written out)."""
    import numpy as np

    from convnet.optim import adam

    try:
        from convnet.solver import Solver

        solver = Solver(model, {"X_train": X, "y_train": y}, update_rule="adam",
                        optim_config={"learning_rate": 1e-3}, batch_size=batch,
                        num_epochs=1, verbose=False)
        if hasattr(solver, "_step"):

            def step(i: int) -> None:
                """convnet.solver.Solver._step (loss, backward, Adam, finiteness checks)"""
                i %= len(X) // batch
                solver._step(np.arange(i * batch, (i + 1) * batch))

            return step
    except (ImportError, NotImplementedError, TypeError):
        pass
    configs: dict[str, dict] = {k: {"learning_rate": 1e-3} for k in model.params}

    def manual_step(i: int) -> None:
        """convnet.solver not available: model.loss + adam per parameter"""
        i %= len(X) // batch
        _, grads = model.loss(X[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
        for k in list(model.params):
            model.params[k], configs[k] = adam(model.params[k], grads[k], configs[k])

    return manual_step


def worker_convnet(quick: bool, threads: int) -> dict[str, Any]:
    pin_threads_in_process(threads, "convnet")
    from convnet.models import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential

    res: dict[str, Any] = {}
    for batch in BATCHES:
        model = Sequential(
            [Conv2D(1, 32, 3, pad=1, seed=0), ReLU(), MaxPool2D(2), Flatten(),
             Dense(32 * 14 * 14, 100, seed=1), ReLU(), Dense(100, 10, seed=2)],
            input_shape=(1, 28, 28), loss="softmax",
        )
        nb = _n_batches(batch, quick)
        X, y = _data(nb * batch)
        step = _solver_step(model, X, y, batch)
        res[str(batch)] = _images_per_s(step, nb, batch, 2 if quick else 3, 1.0 if quick else 4.0)
        res["note"] = step.__doc__
    return res


def _keras_model(batch: int):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1), batch_size=None),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10),
    ])
    return model


def worker_keras_fit(quick: bool, threads: int) -> dict[str, Any]:
    import keras

    pin_threads_in_process(threads, "tf")
    res: dict[str, Any] = {}
    for batch in BATCHES:
        model = _keras_model(batch)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        nb = _n_batches(batch, quick)
        X, y = _data(nb * batch)
        X = X.transpose(0, 2, 3, 1).copy()
        model.fit(X, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # trace
        rates = []
        for _ in range(2 if quick else 3):
            t0 = time.perf_counter()
            model.fit(X, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            rates.append(len(X) / (time.perf_counter() - t0))
        res[str(batch)] = statistics.median(rates)
    return res


def worker_tf_function(quick: bool, threads: int) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    pin_threads_in_process(threads, "tf")
    res: dict[str, Any] = {}
    for batch in BATCHES:
        model = _keras_model(batch)
        opt = keras.optimizers.Adam(1e-3)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        nb = _n_batches(batch, quick)
        X, y = _data(nb * batch)
        Xt = [tf.constant(X[i * batch:(i + 1) * batch].transpose(0, 2, 3, 1)) for i in range(nb)]
        yt = [tf.constant(y[i * batch:(i + 1) * batch]) for i in range(nb)]

        @tf.function
        def train_step(xb, yb, model=model, opt=opt, loss_fn=loss_fn):
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        def step(i: int, Xt=Xt, yt=yt, train_step=train_step) -> None:
            train_step(Xt[i % len(Xt)], yt[i % len(yt)])

        res[str(batch)] = _images_per_s(step, nb, batch, 2 if quick else 3, 1.0 if quick else 4.0)
    return res


def worker_torch(quick: bool, threads: int) -> dict[str, Any]:
    import torch
    from torch import nn

    pin_threads_in_process(threads, "torch")
    torch.manual_seed(0)
    res: dict[str, Any] = {}
    for batch in BATCHES:
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 14 * 14, 100), nn.ReLU(), nn.Linear(100, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        nb = _n_batches(batch, quick)
        X, y = _data(nb * batch)
        Xt = torch.from_numpy(X)
        yt = torch.from_numpy(y)

        def step(i: int, model=model, opt=opt, loss_fn=loss_fn, Xt=Xt, yt=yt,
                 batch=batch) -> None:
            i %= len(Xt) // batch
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[i * batch:(i + 1) * batch]), yt[i * batch:(i + 1) * batch])
            loss.backward()
            opt.step()

        res[str(batch)] = _images_per_s(step, nb, batch, 2 if quick else 3, 1.0 if quick else 4.0)
    return res


def run_worker_inline(name: str, quick: bool, threads: int) -> dict[str, Any]:
    fn = {"convnet": worker_convnet, "keras_fit": worker_keras_fit,
          "tf_function": worker_tf_function, "torch": worker_torch}.get(name)
    if fn is None:
        return {"error": f"unknown worker {name!r}"}
    try:
        return fn(quick, threads)
    except ImportError as e:
        return {"error": f"not available ({e})"}
    except NotImplementedError as e:
        return {"error": f"not implemented yet ({e})"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", choices=WORKERS, help="run only these workers")
    args = ap.parse_args(argv)
    if args.worker:
        emit(run_worker_inline(args.worker, args.quick, args.threads))
        return 0
    results = {}
    for name in args.only or WORKERS:
        print(f"running {name} ...", flush=True)
        extra = ["--quick"] if args.quick else []
        results[name] = run_worker("benchmarks.bench_train",
                                   ["--worker", name, "--threads", str(args.threads), *extra],
                                   args.threads)
    rows = []
    for batch in BATCHES:
        r = {w: results[w].get(str(batch)) if w in results else None for w in WORKERS}
        rows.append([batch, *(r[w] for w in WORKERS),
                     ratio(r["convnet"], r["keras_fit"]), ratio(r["convnet"], r["tf_function"]),
                     ratio(r["convnet"], r["torch"])])
    print()
    print(machine_description(args.threads))
    print()
    print(markdown_table(
        ["batch", "convnet img/s", "Keras fit img/s", "tf.function img/s", "PyTorch img/s",
         "convnet/Keras fit", "convnet/tf.function", "convnet/PyTorch"], rows))
    print("\nratios are throughput ratios (> 1: convnet faster).")
    for name, r in results.items():
        if "error" in r:
            print(f"- {name}: {r['error']}")
        elif "note" in r:
            print(f"- {name}: {r['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
