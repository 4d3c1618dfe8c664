"""Training throughput (images/s) of the course's models: convnet vs Keras vs PyTorch.

Cases (float32, Adam lr 1e-3, synthetic data: speed does not depend on the pixel values):

- ``small``: conv 32 3x3 pad 1 - relu - max-pool 2x2 - dense 100 - relu - dense 10 on MNIST
  shapes (1x28x28), batch 100 and (``small_b10``) batch 10;
- ``basic_mnist``: BasicConvNet on MNIST, 32 filters 5x5, hidden 100, batch 50;
- ``basic_cifar``: BasicConvNet on CIFAR-10 (3x32x32), 32 filters 7x7 'same', hidden 100,
  batch 50 (the Keras exercise ``experiments/tfkeras_conv_cifar.py``);
- ``mnist_pref``: MnistConvNet (5 filters 11x11, relu, dense 10), batch 200 (the preferred-
  input experiment);
- ``conv_ae``: ConvAutoencoder with a 2-D code, binary cross-entropy, batch 128;
- ``vae``: the 2-D VAE (same encoder with a Gaussian head, reparameterisation, BCE + KL),
  batch 128 (``convnet autoencoder train --kind vae``).

Libraries, each in its own subprocess with ``--threads`` threads in every pool:

- convnet: ``convnet.solver.Solver._step`` on consecutive minibatches (``model.loss``,
  backward, Adam on every parameter, the Solver's finiteness checks): what ``Solver.train``
  runs per batch;
- Keras ``fit``: the twin of each model (``convnet.interop.keras.to_keras`` for the
  classifiers; the course's Keras encoder/decoder with ``padding='same'`` for the
  autoencoders, the VAE as a ``keras.Model`` with its own ``train_step``), one epoch per
  timed round after a warm-up epoch that traces the graph;
- tf.function: the same twin trained by a hand-written ``tf.function`` step (GradientTape +
  Adam), traced once;
- PyTorch: ``nn.Module`` twins (NCHW) with ``torch.optim.Adam``, where PyTorch is installed.

``--competitors K`` runs K CPU-bound processes (``while True: pass``) next to every worker: the
busy-machine condition. ``--malloc-ab`` adds a convnet worker with ``CONVNET_MALLOC_TUNING=0``
(glibc's default allocator settings), to see what the allocator tuning of
``convnet._memory`` is worth. The convnet worker also reports the process's peak resident
memory during the timed steps (``VmHWM``).

    python -m benchmarks.bench_train [--threads 2] [--quick] [--cases basic_cifar vae]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import (
    Competitors,
    emit,
    machine_description,
    markdown_table,
    pin_threads_in_process,
    ratio,
    reset_peak_rss,
    run_worker,
    status_kb,
)

WORKERS = ["convnet", "keras_fit", "tf_function", "torch"]
#: name -> (description, batch size, images per timed round in quick / full mode)
CASES: dict[str, tuple[str, int, int, int]] = {
    "small": ("conv3x3-pool-fc100-fc10, MNIST", 100, 1000, 4000),
    "small_b10": ("conv3x3-pool-fc100-fc10, MNIST", 10, 200, 1000),
    "basic_mnist": ("BasicConvNet MNIST (32 5x5)", 50, 1000, 4000),
    "basic_cifar": ("BasicConvNet CIFAR-10 (32 7x7)", 50, 500, 3000),
    "mnist_pref": ("MnistConvNet (5 11x11)", 200, 2000, 8000),
    "conv_ae": ("ConvAutoencoder (2-D code)", 128, 384, 1536),
    "vae": ("VAE (2-D code)", 128, 384, 1536),
}
AUTOENCODERS = ("conv_ae", "vae")
#: --quick leaves out the batch-10 case (its Keras fit round is the slowest to trace)
QUICK_CASES = [c for c in CASES if c != "small_b10"]
LR = 1e-3


def _input_shape(case: str) -> tuple[int, int, int]:
    return (3, 32, 32) if case == "basic_cifar" else (1, 28, 28)


def _data(case: str, n: int, seed: int = 0):
    """Synthetic (X (n, C, H, W) float32, y (n,) int labels); autoencoders: X in [0, 1]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (n, *_input_shape(case))
    if case in AUTOENCODERS:
        X = rng.random(shape, dtype=np.float32)
    else:
        X = rng.standard_normal(shape).astype(np.float32)
    return X, rng.integers(0, 10, n)


def _rounds(quick: bool) -> tuple[int, float]:
    """(timed rounds, seconds after which a round stops early)."""
    return (2, 1.0) if quick else (3, 6.0)


def _images_per_s(step: Callable[[int], None], n_batches: int, batch: int,
                  rounds: int, round_time: float, warmup: int = 2) -> dict[str, float]:
    """Median throughput over ``rounds`` timed runs (after ``warmup`` untimed steps).

    A round runs ``n_batches`` steps, or stops early (after at least 3 steps) once it has
    taken ``round_time`` seconds, so that a slow library keeps the script short. Returns
    ``img_s`` and ``cpu_ms``: the process's CPU time (all threads) per image over the
    timed rounds -- what a step costs the machine, and a figure that moves far less than
    wall time when other programs share the cores (busy-waiting threads show up in it).
    """
    for i in range(warmup):
        step(i)
    rates = []
    images = 0
    c0 = time.process_time()
    for _ in range(rounds):
        t0 = time.perf_counter()
        done = 0
        while done < n_batches:
            step(done)
            done += 1
            if done >= 3 and time.perf_counter() - t0 >= round_time:
                break
        rates.append(done * batch / (time.perf_counter() - t0))
        images += done * batch
    return {"img_s": statistics.median(rates),
            "cpu_ms": 1e3 * (time.process_time() - c0) / images}


def _sizes(case: str, quick: bool) -> tuple[int, int]:
    """(batch, batches per timed round)."""
    _, batch, n_quick, n_full = CASES[case]
    return batch, max(3, (n_quick if quick else n_full) // batch)


# ----------------------------------------------------------------------------------------
# convnet
# ----------------------------------------------------------------------------------------


def convnet_model(case: str):
    """The convnet model of a case (seeded)."""
    from convnet.models import (
        BasicConvNet,
        Conv2D,
        Dense,
        Flatten,
        MaxPool2D,
        MnistConvNet,
        ReLU,
        Sequential,
    )
    from convnet.models.autoencoder import VAE, ConvAutoencoder

    if case in ("small", "small_b10"):
        return Sequential(
            [Conv2D(1, 32, 3, pad=1, seed=0, name="conv1"), ReLU(name="relu1"),
             MaxPool2D(2, name="pool1"), Flatten(name="flatten"),
             Dense(32 * 14 * 14, 100, seed=1, name="fc1"), ReLU(name="relu2"),
             Dense(100, 10, seed=2, name="out")],
            input_shape=(1, 28, 28), loss="softmax",
        )
    if case == "basic_mnist":
        return BasicConvNet((1, 28, 28), num_filters=32, filter_size=5, hidden_dim=100)
    if case == "basic_cifar":
        return BasicConvNet((3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100)
    if case == "mnist_pref":
        return MnistConvNet()
    if case == "conv_ae":
        return ConvAutoencoder(latent_dim=2)
    if case == "vae":
        return VAE(latent_dim=2)
    raise ValueError(f"unknown case {case!r}")


def _solver_step(model, X, y, batch: int, unsupervised: bool) -> Callable[[int], None]:
    """Solver._step on consecutive minibatches."""
    import numpy as np

    from convnet.solver import Solver

    data = {"X_train": X} if unsupervised else {"X_train": X, "y_train": y}
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": LR},
                    batch_size=batch, num_epochs=1, verbose=False, unsupervised=unsupervised)

    def step(i: int) -> None:
        i %= len(X) // batch
        solver._step(np.arange(i * batch, (i + 1) * batch))

    return step


def worker_convnet(cases: list[str], quick: bool, threads: int) -> dict[str, Any]:
    import gc

    pin_threads_in_process(threads, "convnet")
    from convnet import _memory

    res: dict[str, Any] = {"malloc_tuned": _memory.malloc_tuning_applied()}
    rounds, round_time = _rounds(quick)
    for case in cases:
        batch, nb = _sizes(case, quick)
        model = convnet_model(case)
        X, y = _data(case, nb * batch)
        step = _solver_step(model, X, y, batch, case in AUTOENCODERS)
        step(0)  # compile the Numba kernels before the peak-memory window opens
        gc.collect()
        reset_peak_rss()
        res[case] = _images_per_s(step, nb, batch, rounds, round_time)
        peak = status_kb("VmHWM")
        res[case]["peak_mb"] = None if peak is None else peak / 1024
        del model, step, X, y
    return res


# ----------------------------------------------------------------------------------------
# Keras / TensorFlow
# ----------------------------------------------------------------------------------------


def _keras_autoencoder_parts(case: str):
    """The course's Keras encoder and decoder (``padding='same'``), 2-D code."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        L.Conv2D(64, 3, padding="same", activation="relu"),
        L.Conv2D(64, 3, padding="same", activation="relu"),
        L.Flatten(),
        L.Dense(32, activation="relu"),
        L.Dense(4 if case == "vae" else 2),  # VAE: [z_mean | z_log_var]
    ])
    dec = keras.Sequential([
        keras.Input((2,)),
        L.Dense(64 * 14 * 14, activation="relu"),
        L.Reshape((14, 14, 64)),
        L.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
        L.Conv2D(1, 3, padding="same"),  # logits
    ])
    return enc, dec


def _bce_sum(x, logits):
    """Binary cross-entropy from logits, summed over the pixels, mean over the batch."""
    import tensorflow as tf

    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return tf.reduce_mean(tf.reduce_sum(per_pixel, axis=[1, 2, 3]))


def _vae_loss(enc, dec, x, training: bool):
    import tensorflow as tf

    stats = enc(x, training=training)
    mu, logvar = stats[:, :2], stats[:, 2:]
    z = mu + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mu))
    kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1 + logvar - mu**2 - tf.exp(logvar), axis=1))
    return _bce_sum(x, dec(z, training=training)) + kl


def _keras_vae_model(enc, dec):
    """A ``keras.Model`` whose ``fit`` trains the VAE (custom ``train_step``)."""
    import keras
    import tensorflow as tf

    class KerasVAE(keras.Model):
        def __init__(self, enc, dec):
            super().__init__()
            self.enc, self.dec = enc, dec

        def call(self, x, training=False):
            return self.dec(self.enc(x, training=training)[:, :2], training=training)

        def train_step(self, data):
            x = data[0] if isinstance(data, tuple) else data
            with tf.GradientTape() as tape:
                loss = _vae_loss(self.enc, self.dec, x, True)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
            return {"loss": loss}

    model = KerasVAE(enc, dec)
    model.build((None, 28, 28, 1))
    return model


def keras_twin(case: str):
    """(keras model, loss function(y, out) or None for the VAE, NHWC input)."""
    import keras

    if case in AUTOENCODERS:
        enc, dec = _keras_autoencoder_parts(case)
        if case == "vae":
            return _keras_vae_model(enc, dec), None
        inp = keras.Input((28, 28, 1))
        return keras.Model(inp, dec(enc(inp))), _bce_sum
    from convnet.interop.keras import to_keras

    keras.utils.set_random_seed(0)
    return to_keras(convnet_model(case)), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True)


def _nhwc(case: str, n: int):
    X, y = _data(case, n)
    X = X.transpose(0, 2, 3, 1).copy()
    return X, (X if case in AUTOENCODERS else y)


def worker_keras_fit(cases: list[str], quick: bool, threads: int) -> dict[str, Any]:
    import keras

    pin_threads_in_process(threads, "tf")
    rounds, _ = _rounds(quick)
    res: dict[str, Any] = {}
    for case in cases:
        batch, nb = _sizes(case, quick)
        model, loss = keras_twin(case)
        model.compile(optimizer=keras.optimizers.Adam(LR), loss=loss)
        X, y = _nhwc(case, nb * batch)
        if case == "vae":
            y = None
        model.fit(X[: 2 * batch], y if y is None else y[: 2 * batch], batch_size=batch,
                  epochs=1, verbose=0, shuffle=False)  # traces the graph
        rates = []
        c0 = time.process_time()
        for _ in range(rounds):
            t0 = time.perf_counter()
            model.fit(X, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            rates.append(len(X) / (time.perf_counter() - t0))
        res[case] = {"img_s": statistics.median(rates),
                     "cpu_ms": 1e3 * (time.process_time() - c0) / (rounds * len(X))}
    return res


def _tf_step_fn(case: str, model, loss_fn, opt):
    import tensorflow as tf

    if case == "vae":
        enc, dec = model.enc, model.dec

        @tf.function
        def vae_step(xb, yb):
            with tf.GradientTape() as tape:
                loss = _vae_loss(enc, dec, xb, True)
            variables = enc.trainable_variables + dec.trainable_variables
            grads = tape.gradient(loss, variables)
            opt.apply_gradients(zip(grads, variables, strict=True))
            return loss

        return vae_step

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return train_step


def worker_tf_function(cases: list[str], quick: bool, threads: int) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    pin_threads_in_process(threads, "tf")
    rounds, round_time = _rounds(quick)
    res: dict[str, Any] = {}
    for case in cases:
        batch, nb = _sizes(case, quick)
        model, loss_fn = keras_twin(case)
        train_step = _tf_step_fn(case, model, loss_fn, keras.optimizers.Adam(LR))
        X, y = _nhwc(case, nb * batch)
        Xt = [tf.constant(X[i * batch:(i + 1) * batch]) for i in range(nb)]
        yt = [tf.constant(y[i * batch:(i + 1) * batch]) for i in range(nb)]

        def step(i: int, Xt=Xt, yt=yt, train_step=train_step) -> None:
            train_step(Xt[i % len(Xt)], yt[i % len(yt)])

        res[case] = _images_per_s(step, nb, batch, rounds, round_time)
    return res


# ----------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------


def torch_twin(case: str):
    """(module, loss(out, target) -> scalar) of a case; the VAE's loss takes the input."""
    import torch
    from torch import nn
    from torch.nn import functional as tfn

    torch.manual_seed(0)
    if case in ("small", "small_b10", "basic_mnist", "basic_cifar"):
        c, h, _ = _input_shape(case)
        k = {"basic_mnist": 5, "basic_cifar": 7}.get(case, 3)
        return nn.Sequential(
            nn.Conv2d(c, 32, k, padding=k // 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * (h // 2) ** 2, 100), nn.ReLU(), nn.Linear(100, 10),
        ), nn.CrossEntropyLoss()
    if case == "mnist_pref":
        return nn.Sequential(nn.Conv2d(1, 5, 11), nn.ReLU(), nn.Flatten(),
                             nn.Linear(5 * 18 * 18, 10)), nn.CrossEntropyLoss()
    code = 4 if case == "vae" else 2
    enc = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 14 * 14, 32), nn.ReLU(), nn.Linear(32, code),
    )
    dec = nn.Sequential(
        nn.Linear(2, 64 * 14 * 14), nn.ReLU(), nn.Unflatten(1, (64, 14, 14)),
        nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
        nn.Conv2d(32, 1, 3, padding=1),
    )

    def bce(logits, x):
        return tfn.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)

    if case == "conv_ae":
        return nn.Sequential(enc, dec), bce

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = enc, dec

        def forward(self, x):
            stats = self.enc(x)
            mu, logvar = stats[:, :2], stats[:, 2:]
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
            return self.dec(z), kl

    def vae_loss(out, x):
        logits, kl = out
        return bce(logits, x) + kl

    return TorchVAE(), vae_loss


def worker_torch(cases: list[str], quick: bool, threads: int) -> dict[str, Any]:
    import torch

    pin_threads_in_process(threads, "torch")
    rounds, round_time = _rounds(quick)
    res: dict[str, Any] = {}
    for case in cases:
        batch, nb = _sizes(case, quick)
        model, loss_fn = torch_twin(case)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        X, y = _data(case, nb * batch)
        Xt = torch.from_numpy(X)
        yt = Xt if case in AUTOENCODERS else torch.from_numpy(y)

        def step(i: int, model=model, opt=opt, loss_fn=loss_fn, Xt=Xt, yt=yt,
                 batch=batch) -> None:
            i %= len(Xt) // batch
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[i * batch:(i + 1) * batch]), yt[i * batch:(i + 1) * batch])
            loss.backward()
            opt.step()

        res[case] = _images_per_s(step, nb, batch, rounds, round_time)
    return res


# ----------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------

_WORKER_FNS = {"convnet": worker_convnet, "keras_fit": worker_keras_fit,
               "tf_function": worker_tf_function, "torch": worker_torch}


def run_worker_inline(name: str, cases: list[str], quick: bool, threads: int) -> dict[str, Any]:
    fn = _WORKER_FNS.get(name.split(":")[0])
    if fn is None:
        return {"error": f"unknown worker {name!r}"}
    try:
        return fn(cases, quick, threads)
    except ImportError as e:
        return {"error": f"not available ({e})"}


def _run_library(name: str, cases: list[str], quick: bool, threads: int) -> dict[str, Any]:
    """Run one library's worker(s); convnet gets a fresh process per case.

    A fresh process per case keeps the peak-memory figure of one model free of what earlier
    cases left allocated (the TF/PyTorch workers share one process: their import is slow).
    """
    extra = ["--quick"] if quick else []
    env = {"CONVNET_MALLOC_TUNING": "0"} if name == "convnet:untuned" else None
    groups = [[c] for c in cases] if name.startswith("convnet") else [cases]
    out: dict[str, Any] = {}
    for group in groups:
        r = run_worker("benchmarks.bench_train",
                       ["--worker", name, "--threads", str(threads), "--cases", *group, *extra],
                       threads, extra_env=env)
        if "error" in r:
            out.setdefault("error", r["error"])
        out.update({k: v for k, v in r.items() if k != "error"})
    return out


def _get(results: dict[str, dict[str, Any]], worker: str, case: str, key: str) -> Any:
    r = results.get(worker, {}).get(case)
    return r.get(key) if isinstance(r, dict) else None


def tabulate(results: dict[str, dict[str, Any]], cases: list[str]) -> str:
    """Throughput table (images/s, ratios, peak memory) and CPU-time table."""
    libs = ["convnet", "keras_fit", "tf_function", "torch"]
    ab = "convnet:untuned" in results
    rows, cpu_rows = [], []
    for case in cases:
        desc, batch, _, _ = CASES[case]
        v = {w: _get(results, w, case, "img_s") for w in libs}
        row = [case, desc, batch, *(v[w] for w in libs),
               *(ratio(v["convnet"], v[w]) for w in libs[1:]),
               _get(results, "convnet", case, "peak_mb")]
        if ab:
            row += [_get(results, "convnet:untuned", case, "img_s"),
                    _get(results, "convnet:untuned", case, "peak_mb")]
        rows.append(row)
        c = {w: _get(results, w, case, "cpu_ms") for w in libs}
        cpu_rows.append([case, batch, *(c[w] for w in libs),
                         *(ratio(c["convnet"], c[w]) for w in libs[1:])])
    header = ["case", "model", "batch", "convnet img/s", "Keras fit img/s",
              "tf.function img/s", "PyTorch img/s", "convnet/Keras fit",
              "convnet/tf.function", "convnet/PyTorch", "convnet peak RSS MB"]
    if ab:
        header += ["convnet untuned img/s", "untuned peak RSS MB"]
    cpu_header = ["case", "batch", "convnet CPU ms/img", "Keras fit CPU ms/img",
                  "tf.function CPU ms/img", "PyTorch CPU ms/img", "convnet/Keras fit",
                  "convnet/tf.function", "convnet/PyTorch"]
    return (markdown_table(header, rows)
            + "\n\nimages/s: median of timed rounds after warm-up; ratios are throughput "
            "ratios (> 1: convnet faster). Peak RSS: the convnet process's resident-memory "
            "high-water mark during the timed steps (one process per model).\n\n"
            + markdown_table(cpu_header, cpu_rows)
            + "\n\nCPU ms/img: process CPU time (all threads) per trained image; ratios are "
            "CPU-time ratios (< 1: convnet cheaper). Less sensitive to other load than "
            "images/s; threads that busy-wait inflate it.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="short rounds (about 2 minutes)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", choices=WORKERS, help="run only these libraries")
    ap.add_argument("--cases", nargs="*", choices=list(CASES), help="run only these models")
    ap.add_argument("--competitors", type=int, default=0,
                    help="CPU-bound processes running next to each worker (busy machine)")
    ap.add_argument("--malloc-ab", action="store_true",
                    help="also run convnet with CONVNET_MALLOC_TUNING=0")
    args = ap.parse_args(argv)
    cases = args.cases or (QUICK_CASES if args.quick else list(CASES))
    if args.worker:
        emit(run_worker_inline(args.worker, cases, args.quick, args.threads))
        return 0
    workers = list(args.only or WORKERS)
    if args.malloc_ab:
        workers.insert(workers.index("convnet") + 1 if "convnet" in workers else 0,
                       "convnet:untuned")
    results = {}
    t_start = time.perf_counter()
    with Competitors(args.competitors):
        for name in workers:
            print(f"running {name} ...", flush=True)
            results[name] = _run_library(name, cases, args.quick, args.threads)
    print()
    print(machine_description(args.threads)
          + (f"; {args.competitors} CPU-bound competitor process(es) running"
             if args.competitors else ""))
    print()
    print(tabulate(results, cases))
    for name, r in results.items():
        if "error" in r:
            print(f"- {name}: {r['error']}")
    print(f"\n(wall time {time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
