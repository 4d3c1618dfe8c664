"""Convolution and max-pooling speed: every convnet backend vs TensorFlow vs PyTorch.

Shapes (float32; conv stride 1):

    N100 C1 28x28, F5 11x11 pad 0     N100 C1 28x28, F32 3x3 pad 1
    N64 C3 32x32, F32 3x3 pad 1       N64 C32 16x16, F64 3x3 pad 1
    N16 C64 56x56, F64 3x3 pad 1      max-pool 2x2 stride 2 on (64, 32, 32, 32)

For each: forward, and forward+backward (conv: dx and dW; pool: dx), median of timed calls
after warm-up. Conv also gets a "user loop" row: forward, then backward of a *fresh* upstream
gradient ``np.ones_like(y)`` each call, results dropped -- what a training step or a
student's own loop does (the fwd+bwd row reuses one upstream gradient array, which hides
the cost of fresh memory). Each library runs in its own subprocess with the same thread
count in every pool (``--threads``, default 2). Layouts are each library's native fast
one: convnet NCHW, TensorFlow NHWC (its CPU kernels are NHWC-only), PyTorch channels-last
(and plain NCHW for reference; ``--quick`` leaves out that column and im2col).
``--malloc-ab`` adds a convnet worker with glibc's default allocator settings
(``CONVNET_MALLOC_TUNING=0``), to show what the tuning of ``convnet._memory`` is worth.
The convnet worker also measures NumPy's float32 GEMM (square matrices) to give
the practical ceiling of an im2col convolution; GFLOP/s count 2 flops per multiply-add, with
fwd+bwd = 3x the forward flops.

Naive loops are left out (minutes per shape); bench_layers_naive compares against them.
A missing TensorFlow or PyTorch is reported in the table, not fatal.

    python -m benchmarks.bench_conv [--threads 2] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmarks._common import (
    emit,
    machine_description,
    markdown_table,
    pin_threads_in_process,
    ratio,
    run_worker,
    time_fn,
)

# (label, N, C, H, W, F, K, pad)
CONV_SHAPES = [
    ("N100 C1 28x28, F5 11x11", 100, 1, 28, 28, 5, 11, 0),
    ("N100 C1 28x28, F32 3x3 p1", 100, 1, 28, 28, 32, 3, 1),
    ("N64 C3 32x32, F32 3x3 p1", 64, 3, 32, 32, 32, 3, 1),
    ("N64 C32 16x16, F64 3x3 p1", 64, 32, 16, 16, 64, 3, 1),
    ("N16 C64 56x56, F64 3x3 p1", 16, 64, 56, 56, 64, 3, 1),
]
POOL_SHAPE = ("maxpool 2x2 s2 (64,32,32,32)", 64, 32, 32, 32)
# "convnet:auto" is what a model gets: conv_forward/max_pool_forward's choice per shape
# (Numba, or Winograd for many-channel 3x3 convolutions).
WORKERS = ["convnet:im2col", "convnet:numba", "convnet:auto", "tf", "torch:channels_last",
           "torch:nchw"]
#: --quick leaves out the two reference columns (im2col, PyTorch NCHW)
QUICK_WORKERS = ["convnet:numba", "convnet:auto", "tf", "torch:channels_last"]
#: --malloc-ab adds conv_forward's choice with glibc's default allocator settings
UNTUNED = "convnet:auto:untuned"


PASS_NAMES = {"fwd": "fwd", "fb": "fwd+bwd", "user": "user loop"}


def conv_flops(N: int, C: int, H: int, W: int, F: int, K: int, pad: int) -> float:
    Ho, Wo = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    return 2.0 * N * F * Ho * Wo * C * K * K


def _timing(quick: bool) -> dict[str, Any]:
    return {"warmup": 1, "repeat": 3} if quick else {"warmup": 2, "repeat": 10, "min_time": 1.0}


# ----------------------------------------------------------------------------------------
# workers: one library each, in their own process
# ----------------------------------------------------------------------------------------


def worker_convnet(backend: str, quick: bool, threads: int) -> dict[str, Any]:
    import numpy as np

    pin_threads_in_process(threads, "convnet")
    from convnet import layers as L

    conv_table = {**L.CONV_BACKENDS, "auto": (L.conv_forward, L.conv_backward)}
    pool_table = {**L.POOL_BACKENDS, "auto": (L.max_pool_forward, L.max_pool_backward)}
    rng = np.random.default_rng(0)
    res: dict[str, Any] = {}
    for label, N, C, H, W, F, K, pad in CONV_SHAPES:
        if backend not in conv_table:
            res[label] = {"error": f"no conv backend {backend!r}"}
            continue
        fwd, bwd = conv_table[backend]
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (0.1 * rng.standard_normal((F, C, K, K))).astype(np.float32)
        b = np.zeros(F, dtype=np.float32)
        cp = {"stride": 1, "pad": pad}
        try:
            out, _ = fwd(x, w, b, cp)
            dout = rng.standard_normal(out.shape).astype(np.float32)
            f = lambda fwd=fwd, x=x, w=w, b=b, cp=cp: fwd(x, w, b, cp)
            fb = lambda f=f, bwd=bwd, dout=dout: bwd(dout, f()[1])

            def user(f=f, bwd=bwd) -> None:
                y, cache = f()
                bwd(np.ones_like(y), cache)

            res[label] = {
                "fwd": time_fn(f, **_timing(quick))["median_ms"],
                "fb": time_fn(fb, **_timing(quick))["median_ms"],
                "user": time_fn(user, **_timing(quick))["median_ms"],
            }
        except NotImplementedError as e:
            res[label] = {"error": f"not implemented: {e}"}
    label, N, C, H, W = POOL_SHAPE
    if backend in pool_table:
        fwd, bwd = pool_table[backend]
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
        out, _ = fwd(x, pp)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        res[label] = {
            "fwd": time_fn(lambda: fwd(x, pp), **_timing(quick))["median_ms"],
            "fb": time_fn(lambda: bwd(dout, fwd(x, pp)[1]), **_timing(quick))["median_ms"],
        }
    # NumPy float32 GEMM ceiling: best of a few square sizes.
    best = 0.0
    for n in (512, 1024, 2048) if not quick else (512, 1024):
        a = rng.standard_normal((n, n)).astype(np.float32)
        bm = rng.standard_normal((n, n)).astype(np.float32)
        t = time_fn(lambda a=a, bm=bm: a @ bm, **_timing(quick))["median_ms"]
        best = max(best, 2.0 * n**3 / (t * 1e-3) / 1e9)
    res["gemm_gflops"] = best
    return res


def worker_tf(quick: bool, threads: int) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf

    pin_threads_in_process(threads, "tf")
    rng = np.random.default_rng(0)
    res: dict[str, Any] = {}
    for label, N, C, H, W, F, K, pad in CONV_SHAPES:
        x = tf.constant(rng.standard_normal((N, H, W, C)).astype(np.float32))
        w = tf.constant((0.1 * rng.standard_normal((K, K, C, F))).astype(np.float32))
        # Explicit zero padding in TF's own conv op (as keras' Conv2D(padding='same') does
        # for odd kernels); pad 0 is 'VALID'.
        padding = [[0, 0], [pad, pad], [pad, pad], [0, 0]] if pad else "VALID"

        @tf.function
        def fwd(x, w, padding=padding):
            return tf.nn.conv2d(x, w, strides=1, padding=padding)

        out = fwd(x, w)
        dout = tf.constant(rng.standard_normal(out.shape).astype(np.float32))

        @tf.function
        def fb(x, w, dout, padding=padding):
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                y = tf.nn.conv2d(x, w, strides=1, padding=padding)
            return tape.gradient(y, [x, w], output_gradients=dout)

        @tf.function
        def user(x, w, padding=padding):
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                y = tf.nn.conv2d(x, w, strides=1, padding=padding)
            return tape.gradient(y, [x, w], output_gradients=tf.ones_like(y))

        res[label] = {
            "fwd": time_fn(lambda fwd=fwd, x=x, w=w: fwd(x, w), **_timing(quick))["median_ms"],
            "fb": time_fn(lambda fb=fb, x=x, w=w, dout=dout: fb(x, w, dout),
                          **_timing(quick))["median_ms"],
            "user": time_fn(lambda user=user, x=x, w=w: user(x, w),
                            **_timing(quick))["median_ms"],
        }
    label, N, C, H, W = POOL_SHAPE
    x = tf.constant(rng.standard_normal((N, H, W, C)).astype(np.float32))

    @tf.function
    def pfwd(x):
        return tf.nn.max_pool2d(x, 2, 2, "VALID")

    dout = tf.constant(rng.standard_normal(pfwd(x).shape).astype(np.float32))

    @tf.function
    def pfb(x, dout):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.max_pool2d(x, 2, 2, "VALID")
        return tape.gradient(y, x, output_gradients=dout)

    res[label] = {
        "fwd": time_fn(lambda: pfwd(x), **_timing(quick))["median_ms"],
        "fb": time_fn(lambda: pfb(x, dout), **_timing(quick))["median_ms"],
    }
    return res


def worker_torch(layout: str, quick: bool, threads: int) -> dict[str, Any]:
    import numpy as np
    import torch
    import torch.nn.functional as tfn

    pin_threads_in_process(threads, "torch")
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    rng = np.random.default_rng(0)
    res: dict[str, Any] = {}
    for label, N, C, H, W, F, K, pad in CONV_SHAPES:
        x = torch.from_numpy(rng.standard_normal((N, C, H, W)).astype(np.float32))
        w = torch.from_numpy((0.1 * rng.standard_normal((F, C, K, K))).astype(np.float32))
        x = x.contiguous(memory_format=fmt).requires_grad_(True)
        w = w.contiguous(memory_format=fmt).requires_grad_(True)
        with torch.no_grad():
            out = tfn.conv2d(x, w, padding=pad)
        dout = torch.randn(out.shape).contiguous(memory_format=fmt)

        def fwd(x=x, w=w, pad=pad):
            with torch.no_grad():
                return tfn.conv2d(x, w, padding=pad)

        def fb(x=x, w=w, pad=pad, dout=dout):
            y = tfn.conv2d(x, w, padding=pad)
            return torch.autograd.grad(y, (x, w), dout)

        def user(x=x, w=w, pad=pad, fmt=fmt):
            y = tfn.conv2d(x, w, padding=pad)
            torch.autograd.grad(y, (x, w), torch.ones_like(y, memory_format=fmt))

        res[label] = {
            "fwd": time_fn(fwd, **_timing(quick))["median_ms"],
            "fb": time_fn(fb, **_timing(quick))["median_ms"],
            "user": time_fn(user, **_timing(quick))["median_ms"],
        }
    label, N, C, H, W = POOL_SHAPE
    x = torch.from_numpy(rng.standard_normal((N, C, H, W)).astype(np.float32))
    x = x.contiguous(memory_format=fmt).requires_grad_(True)
    with torch.no_grad():
        dout = torch.randn(tfn.max_pool2d(x, 2, 2).shape).contiguous(memory_format=fmt)

    def pfwd():
        with torch.no_grad():
            return tfn.max_pool2d(x, 2, 2)

    def pfb():
        return torch.autograd.grad(tfn.max_pool2d(x, 2, 2), x, dout)

    res[label] = {
        "fwd": time_fn(pfwd, **_timing(quick))["median_ms"],
        "fb": time_fn(pfb, **_timing(quick))["median_ms"],
    }
    return res


def run_worker_inline(name: str, quick: bool, threads: int) -> dict[str, Any]:
    try:
        if name.startswith("convnet:"):
            return worker_convnet(name.split(":")[1], quick, threads)
        if name == "tf":
            return worker_tf(quick, threads)
        if name.startswith("torch:"):
            return worker_torch(name.split(":", 1)[1], quick, threads)
    except ImportError as e:
        return {"error": f"not installed ({e.name or e})"}
    return {"error": f"unknown worker {name!r}"}


# ----------------------------------------------------------------------------------------
# parent: run the workers and tabulate
# ----------------------------------------------------------------------------------------


COLUMN_NAMES = {"convnet:im2col": "convnet im2col ms", "convnet:numba": "convnet numba ms",
                "convnet:auto": "convnet auto ms", "tf": "TF ms", "torch:channels_last":
                "torch CL ms", "torch:nchw": "torch NCHW ms",
                UNTUNED: "convnet auto, malloc untuned ms"}


def tabulate(results: dict[str, dict[str, Any]]) -> str:
    """One row per shape and pass; a column per worker that ran."""
    gemm = next((results.get(w, {}).get("gemm_gflops") for w in
                 ("convnet:numba", "convnet:auto", "convnet:im2col")
                 if results.get(w, {}).get("gemm_gflops")), None)
    lines = [f"- {name}: {r['error']}" for name, r in results.items() if "error" in r]
    columns = [w for w in [*WORKERS, UNTUNED] if w in results]
    rows = []
    shapes = [(s[0], conv_flops(*s[1:])) for s in CONV_SHAPES] + [(POOL_SHAPE[0], None)]
    for label, flops in shapes:
        for kind, mult in (("fwd", 1.0), ("fb", 3.0), ("user", 3.0)):
            t = {w: results.get(w, {}).get(label, {}).get(kind) for w in columns}
            if not any(t.values()):
                continue  # (max-pool has no user-loop row)
            best_cn = min((v for k, v in t.items()
                           if k.startswith("convnet") and k != UNTUNED and v), default=None)
            gflops = None if (flops is None or not best_cn) else mult * flops / best_cn / 1e6
            rows.append([
                label, PASS_NAMES[kind],
                *(t[w] for w in columns),
                ratio(best_cn, t.get("tf")), ratio(best_cn, t.get("torch:channels_last")),
                gflops,
                None if (gflops is None or not gemm) else 100.0 * gflops / gemm,
            ])
    table = markdown_table(
        ["shape", "pass", *(COLUMN_NAMES[w] for w in columns), "convnet/TF",
         "convnet/torch CL", "convnet GFLOP/s", "% of GEMM"],
        rows,
    )
    head = f"NumPy float32 GEMM ceiling: {gemm:.0f} GFLOP/s\n\n" if gemm else ""
    notes = ("\n\nconvnet = the fastest convnet backend; ratios are time ratios "
             "(< 1: convnet faster). user loop = forward, then backward of a fresh "
             "np.ones_like(y) (tf.ones_like / torch.ones_like) each call, results dropped.")
    return head + table + notes + ("\n\n" + "\n".join(lines) if lines else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    ap.add_argument("--json", help="also write the raw results to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", choices=WORKERS, help="run only these workers")
    ap.add_argument("--malloc-ab", action="store_true",
                    help="also run convnet:auto with CONVNET_MALLOC_TUNING=0")
    args = ap.parse_args(argv)
    if args.worker:
        emit(run_worker_inline(args.worker, args.quick, args.threads))
        return 0
    results: dict[str, dict[str, Any]] = {}
    workers = list(args.only or (QUICK_WORKERS if args.quick else WORKERS))
    if args.malloc_ab:
        workers.append(UNTUNED)
    for name in workers:
        extra = ["--quick"] if args.quick else []
        print(f"running {name} ...", flush=True)
        env = {"CONVNET_MALLOC_TUNING": "0"} if name == UNTUNED else None
        results[name] = run_worker("benchmarks.bench_conv",
                                   ["--worker", name, "--threads", str(args.threads), *extra],
                                   args.threads, extra_env=env)
    print()
    print(machine_description(args.threads))
    print()
    print(tabulate(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
