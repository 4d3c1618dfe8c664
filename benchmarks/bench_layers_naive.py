"""Speed-up of the im2col and Numba conv/max-pool backends over the naive loops.

Two configurations, measured in one run (one process, float32 as in training):

1. x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1  -> conv out (100, 25, 16, 16);
   max-pool 2x2 stride 2 on the conv output              -> (100, 25, 8, 8)
2. x (100, 1, 28, 28), w (5, 1, 11, 11), stride 1, pad 0 -> conv out (100, 5, 18, 18);
   max-pool 2x2 stride 2 on the conv output              -> (100, 5, 9, 9)

For each layer and backend: forward, and forward+backward, median wall time; the table gives
the speed-up ``naive time / backend time`` (higher is better).

    python -m benchmarks.bench_layers_naive [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import os

from benchmarks._common import THREAD_VARS, machine_description, markdown_table

CONFIGS = [
    {"name": "x(100,3,31,31) w(25,3,3,3) s2 p1", "x": (100, 3, 31, 31), "w": (25, 3, 3, 3),
     "stride": 2, "pad": 1},
    {"name": "x(100,1,28,28) w(5,1,11,11) s1 p0", "x": (100, 1, 28, 28), "w": (5, 1, 11, 11),
     "stride": 1, "pad": 0},
]
BACKENDS = ("naive", "im2col", "numba")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="batch 10 instead of 100 (smoke run)")
    args = ap.parse_args(argv)
    for var in THREAD_VARS:  # before NumPy/Numba start their thread pools
        os.environ[var] = str(args.threads)

    import numpy as np

    from benchmarks._common import pin_threads_in_process, time_fn
    from convnet.layers import CONV_BACKENDS, POOL_BACKENDS

    pin_threads_in_process(args.threads, "convnet")
    rng = np.random.default_rng(0)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    rows = []
    for cfg in CONFIGS:
        n = 10 if args.quick else cfg["x"][0]
        x = rng.standard_normal((n, *cfg["x"][1:])).astype(np.float32)
        w = (0.1 * rng.standard_normal(cfg["w"])).astype(np.float32)
        b = np.zeros(cfg["w"][0], dtype=np.float32)
        cp = {"stride": cfg["stride"], "pad": cfg["pad"]}
        conv_out = None
        times: dict[tuple[str, str, str], float | None] = {}
        for layer in ("conv", "pool"):
            for backend in BACKENDS:
                table = CONV_BACKENDS if layer == "conv" else POOL_BACKENDS
                if backend not in table:
                    times[layer, backend, "fwd"] = times[layer, backend, "fb"] = None
                    continue
                fwd, bwd = table[backend]
                try:
                    if layer == "conv":
                        conv_out, _ = fwd(x, w, b, cp)
                        f = lambda fwd=fwd, x=x, w=w, b=b, cp=cp: fwd(x, w, b, cp)
                        dout = np.ones_like(conv_out)
                    else:
                        assert conv_out is not None
                        p_out, _ = fwd(conv_out, pool_param)
                        f = lambda fwd=fwd, co=conv_out: fwd(co, pool_param)
                        dout = np.ones_like(p_out)
                    fb = lambda f=f, bwd=bwd, dout=dout: bwd(dout, f()[1])
                    # The naive loops take seconds: one warm-up-free timed call is plenty.
                    reps = (1, 0) if backend == "naive" else (10, 2)
                    times[layer, backend, "fwd"] = time_fn(f, warmup=reps[1],
                                                           repeat=reps[0])["median_ms"]
                    times[layer, backend, "fb"] = time_fn(fb, warmup=reps[1],
                                                          repeat=reps[0])["median_ms"]
                except NotImplementedError as e:
                    print(f"  {layer} {backend}: not implemented yet ({e})")
                    times[layer, backend, "fwd"] = times[layer, backend, "fb"] = None
        for layer in ("conv", "pool"):
            naive_fb = times[layer, "naive", "fb"]
            naive_f = times[layer, "naive", "fwd"]
            for backend in BACKENDS:
                t_f, t_fb = times[layer, backend, "fwd"], times[layer, backend, "fb"]
                rows.append([
                    cfg["name"] if n == cfg["x"][0] else cfg["name"] + f" (N={n})",
                    layer, backend, t_f, t_fb,
                    None if (t_f is None or naive_f is None) else naive_f / t_f,
                    None if (t_fb is None or naive_fb is None) else naive_fb / t_fb,
                ])
    print(machine_description(args.threads))
    print()
    print(markdown_table(
        ["config", "layer", "backend", "fwd ms", "fwd+bwd ms", "speed-up fwd",
         "speed-up fwd+bwd"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
