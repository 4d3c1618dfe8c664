"""One class-visualisation step at 224x224, batch 1: convnet NumPy backend vs TF backend.

Model: SqueezeNet v1.1 (``convnet.models.squeezenet``), pretrained weights when the data store
has them (random weights otherwise: the speed is the same). The TF side is the exact Keras
twin of the same model (``convnet.interop.keras.to_keras``) behind ``TFBackend``, so both
compute the same numbers; only the engine differs.

One step (Simonyan et al. 2014) = forward to the class-score layer, the vector-Jacobian
product of the one-hot class score back to the image, and a normalised gradient-ascent update
with L2 decay, all through the shared backend interface ``forward``/``vjp``. Each backend runs
in its own subprocess with ``--threads`` threads. Skips with a message when SqueezeNet, the
TF backend or TensorFlow itself is not available.

    python -m benchmarks.bench_inputgrad [--threads 2] [--quick] [--size 224]
"""

from __future__ import annotations

import argparse
import time
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

TARGET_CLASS = 130  # flamingo


def _numpy_model(size: int):
    from convnet.models.squeezenet import SqueezeNet

    note = "pretrained weights"
    try:
        model = SqueezeNet("imagenet")
    except Exception as e:  # noqa: BLE001 - any missing-weights error: time random weights
        model = SqueezeNet(None)
        note = f"random weights ({type(e).__name__})"
    model.input_shape = (3, size, size)
    return model, note


def _step_fn(backend, size: int):
    import numpy as np

    rng = np.random.default_rng(0)
    lo, hi = 0.0, 255.0
    x = backend.input_space.to_model(rng.uniform(lo, hi, (1, size, size, 3)).transpose(0, 3, 1, 2)
                                     .astype(np.float32))
    state = {"x": x.astype(np.float32)}

    def step() -> None:
        xx = state["x"]
        scores = backend.forward(xx, ["output"])["output"]
        up = np.zeros_like(scores)
        up[0, TARGET_CLASS] = 1.0
        dx = backend.vjp({"output": up}) - 2e-3 * xx
        state["x"] = xx + 1.0 * dx / (np.abs(dx).mean() + 1e-12)

    return step


def worker(kind: str, size: int, quick: bool, threads: int) -> dict[str, Any]:
    pin_threads_in_process(threads, "tf" if kind == "tf" else "convnet")
    model, note = _numpy_model(size)
    if kind == "numpy":
        from convnet.backend import NumpyBackend

        backend = NumpyBackend(model, model.input_space)
    else:
        from convnet.interop.keras import to_keras
        from convnet.interop.tf_backend import TFBackend

        backend = TFBackend(to_keras(model), model.input_space)
    step = _step_fn(backend, size)
    t0 = time.perf_counter()
    step()
    first = 1e3 * (time.perf_counter() - t0)
    t = time_fn(step, warmup=1, repeat=3 if quick else 8)
    return {"ms": t["median_ms"], "first_ms": first, "note": note}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        try:
            emit(worker(args.worker, args.size, args.quick, args.threads))
        except (ImportError, NotImplementedError) as e:
            emit({"error": f"skipped: not available ({type(e).__name__}: {e})"})
        return 0
    results = {}
    for kind in ("numpy", "tf"):
        print(f"running {kind} ...", flush=True)
        extra = ["--quick"] if args.quick else []
        results[kind] = run_worker(
            "benchmarks.bench_inputgrad",
            ["--worker", kind, "--threads", str(args.threads), "--size", str(args.size), *extra],
            args.threads,
        )
    print()
    print(machine_description(args.threads))
    print()
    npr, tfr = results["numpy"], results["tf"]
    print(markdown_table(
        ["backend", f"step ms ({args.size}px, batch 1)", "first step ms (incl. compile/trace)",
         "numpy/TF"],
        [["convnet NumPy (SqueezeNet)", npr.get("ms"), npr.get("first_ms"),
          ratio(npr.get("ms"), tfr.get("ms"))],
         ["TF (Keras twin)", tfr.get("ms"), tfr.get("first_ms"), None]],
    ))
    for kind, r in results.items():
        print(f"- {kind}: {r.get('error') or r.get('note')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
