"""Time and peak memory of conv forward+backward as batch and image size grow: convnet vs TF.

Layer: 3x3 conv, 16 -> 32 channels, pad 1, stride 1, float32. Two sweeps:
batch 1, 4, 16, 64 at 64x64 pixels, and image size 32, 64, 128, 256 at batch 4.

Memory, per configuration:

- ``rss_mb``: increase of the process's resident-set high-water mark (Linux ``VmHWM``, reset
  through ``/proc/self/clear_refs``) during the first forward+backward call, for both
  libraries. TF keeps freed buffers in its allocator, so sizes are swept upward.
- ``traced_mb`` (convnet only): ``tracemalloc`` peak of one call, i.e. NumPy's allocations
  (buffers allocated inside Numba kernels are not traced, none are large here).

Writes the table to stdout and a plot to ``benchmarks/scaling.png``.

    python -m benchmarks.bench_scaling [--threads 2] [--quick] [--png path]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import (
    emit,
    machine_description,
    markdown_table,
    pin_threads_in_process,
    ratio,
    reset_peak_rss,
    run_worker,
    status_kb,
    time_fn,
)

C_IN, F_OUT, K, PAD = 16, 32, 3, 1
BATCH_SWEEP = [(1, 64), (4, 64), (16, 64), (64, 64)]
SIZE_SWEEP = [(4, 32), (4, 64), (4, 128), (4, 256)]
QUICK_BATCH = [(1, 32), (4, 32)]
QUICK_SIZE = [(2, 32), (2, 64)]
DEFAULT_PNG = Path(__file__).resolve().parent / "scaling.png"


def _configs(quick: bool) -> list[tuple[int, int]]:
    cfgs = (QUICK_BATCH + QUICK_SIZE) if quick else (BATCH_SWEEP + SIZE_SWEEP)
    # Increasing size order, so that a library's cached buffers never hide a new peak.
    return sorted(set(cfgs), key=lambda c: c[0] * c[1] * c[1])


def _rss_peak_of(fn) -> float | None:
    """MB by which the RSS high-water mark rises while ``fn()`` runs (None if unsupported)."""
    gc.collect()
    if not reset_peak_rss():
        return None
    before = status_kb("VmRSS")
    fn()
    after = status_kb("VmHWM")
    if before is None or after is None:
        return None
    return max(0, after - before) / 1024.0


def worker(lib: str, quick: bool, threads: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    res: dict[str, Any] = {}
    if lib == "convnet":
        pin_threads_in_process(threads, "convnet")
        import tracemalloc

        from convnet.layers import conv_backward, conv_forward

        # Compile/load the kernels outside the measurements.
        x0 = rng.standard_normal((1, C_IN, 8, 8)).astype(np.float32)
        w = (0.1 * rng.standard_normal((F_OUT, C_IN, K, K))).astype(np.float32)
        b = np.zeros(F_OUT, dtype=np.float32)
        cp = {"stride": 1, "pad": PAD}
        o, c = conv_forward(x0, w, b, cp)
        conv_backward(np.ones_like(o), c)
        for n, hw in _configs(quick):
            x = rng.standard_normal((n, C_IN, hw, hw)).astype(np.float32)
            dout = rng.standard_normal((n, F_OUT, hw, hw)).astype(np.float32)
            fb = lambda x=x, dout=dout: conv_backward(dout, conv_forward(x, w, b, cp)[1])
            rss = _rss_peak_of(fb)
            tracemalloc.start()
            fb()
            traced = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            t = time_fn(fb, warmup=1, repeat=3 if quick else 5)["median_ms"]
            res[f"{n}x{hw}"] = {"ms": t, "rss_mb": rss, "traced_mb": traced}
    else:
        import tensorflow as tf

        pin_threads_in_process(threads, "tf")
        w = tf.constant((0.1 * rng.standard_normal((K, K, C_IN, F_OUT))).astype(np.float32))
        padding = [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]]

        @tf.function(reduce_retracing=True)
        def fb(x, dout):
            with tf.GradientTape() as tape:
                tape.watch([x, w])
                y = tf.nn.conv2d(x, w, strides=1, padding=padding)
            return tape.gradient(y, [x, w], output_gradients=dout)

        # Trace once on a small input, so the first measured call is not mostly tracing.
        fb(tf.zeros((1, 8, 8, C_IN)), tf.zeros((1, 8, 8, F_OUT)))
        for n, hw in _configs(quick):
            x = tf.constant(rng.standard_normal((n, hw, hw, C_IN)).astype(np.float32))
            dout = tf.constant(rng.standard_normal((n, hw, hw, F_OUT)).astype(np.float32))
            call = lambda x=x, dout=dout: [g.numpy() for g in fb(x, dout)]
            rss = _rss_peak_of(call)
            t = time_fn(call, warmup=1, repeat=3 if quick else 5)["median_ms"]
            res[f"{n}x{hw}"] = {"ms": t, "rss_mb": rss}
    return res


def plot(results: dict[str, dict[str, Any]], quick: bool, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bsweep, ssweep = (QUICK_BATCH, QUICK_SIZE) if quick else (BATCH_SWEEP, SIZE_SWEEP)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, (sweep, xlab, xv) in enumerate((
        (bsweep, f"batch size ({bsweep[0][1]}x{bsweep[0][1]} px)", lambda c: c[0]),
        (ssweep, f"image size (batch {ssweep[0][0]})", lambda c: c[1]),
    )):
        for lib, style, color in (("convnet", "o-", "C0"), ("tf", "s--", "C1")):
            r = results.get(lib, {})
            xs = [xv(c) for c in sweep if f"{c[0]}x{c[1]}" in r]
            if not xs:
                continue
            keys = [f"{c[0]}x{c[1]}" for c in sweep if f"{c[0]}x{c[1]}" in r]
            axes[0, col].plot(xs, [r[k]["ms"] for k in keys], style, color=color, label=lib)
            # A zero rise (memory reused from the allocator's free lists) has no log point.
            rss = [r[k]["rss_mb"] if r[k]["rss_mb"] else float("nan") for k in keys]
            axes[1, col].plot(xs, rss, style, color=color, label=f"{lib} RSS peak rise")
            if lib == "convnet":
                axes[1, col].plot(xs, [r[k]["traced_mb"] for k in keys], "o:", color=color,
                                  alpha=0.6, label="convnet NumPy (tracemalloc)")
                axes[1, col].plot(xs, [c[0] * F_OUT * c[1] ** 2 * 4 / 2**20 for c in sweep
                                       if f"{c[0]}x{c[1]}" in r], ":", color="gray",
                                  label="output size")
        for row, ylab in ((0, "fwd+bwd time (ms)"), (1, "peak memory (MB)")):
            ax = axes[row, col]
            ax.set_xscale("log", base=2)
            ax.set_xticks([xv(c) for c in sweep], [str(xv(c)) for c in sweep])
            ax.set_yscale("log")
            ax.set_xlabel(xlab)
            ax.set_ylabel(ylab)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"conv {K}x{K}, {C_IN}->{F_OUT} channels, pad {PAD}, float32: convnet vs TF")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    ap.add_argument("--png", default=None,
                    help="where to write the plot (default: benchmarks/scaling.png; with "
                    "--quick a file in the temp folder, so a smoke run never replaces it)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        try:
            emit(worker(args.worker, args.quick, args.threads))
        except ImportError as e:
            emit({"error": f"not available ({e})"})
        return 0
    if args.png is None:
        args.png = str(Path(tempfile.gettempdir()) / "convnet_scaling_quick.png"
                       if args.quick else DEFAULT_PNG)
    results = {}
    for lib in ("convnet", "tf"):
        print(f"running {lib} ...", flush=True)
        extra = ["--quick"] if args.quick else []
        results[lib] = run_worker("benchmarks.bench_scaling",
                                  ["--worker", lib, "--threads", str(args.threads), *extra],
                                  args.threads)
    rows = []
    for n, hw in _configs(args.quick):
        k = f"{n}x{hw}"
        cn, tf = results["convnet"].get(k, {}), results["tf"].get(k, {})
        out_mb = n * F_OUT * hw * hw * 4 / 2**20
        rows.append([n, hw, cn.get("ms"), tf.get("ms"), ratio(cn.get("ms"), tf.get("ms")),
                     out_mb, cn.get("traced_mb"), cn.get("rss_mb"), tf.get("rss_mb")])
    print()
    print(machine_description(args.threads))
    print()
    print(markdown_table(
        ["batch", "pixels", "convnet ms", "TF ms", "convnet/TF", "output MB",
         "convnet traced MB", "convnet RSS MB", "TF RSS MB"], rows))
    for lib, r in results.items():
        if "error" in r:
            print(f"- {lib}: {r['error']}")
    plot(results, args.quick, Path(args.png))
    print(f"\nplot: {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
