"""Time of the Solver's optimiser step over all parameters: fused in-place kernel vs the rule.

For the course models of ``bench_train`` (``--cases``, default the CIFAR-10 BasicConvNet and
the VAE, float32) this times ``Solver._update(grads)`` with random gradients: the finiteness
checks and the update of every parameter, i.e. what a training step spends after the
backward pass. ``fused``: ``convnet.optim.fused`` (one pass, in place); ``rule``: the same
Solver with ``fused.ENABLED = False`` (``convnet.optim.rules`` plus the checks, a new array
per parameter). One process, the calling thread only; medians in milliseconds.

    python -m benchmarks.bench_optim_step [--cases basic_cifar vae] [--rule adam]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import markdown_table, time_fn
from benchmarks.bench_train import AUTOENCODERS, _input_shape, convnet_model
from convnet.optim import UPDATE_RULES


def measure(case: str, rule: str) -> dict[str, float]:
    """Median ms of one ``Solver._update`` on ``case``'s parameters, fused and with the rule."""
    from convnet.optim import fused
    from convnet.solver import Solver

    model = convnet_model(case)
    X = np.zeros((2, *_input_shape(case)), np.float32)
    solver = Solver(model, {"X_train": X, "y_train": np.zeros(2, np.int64)},
                    update_rule=rule, optim_config={"learning_rate": 1e-3}, verbose=False,
                    unsupervised=case in AUTOENCODERS)
    rng = np.random.default_rng(0)
    grads = {k: (1e-2 * rng.standard_normal(v.shape)).astype(v.dtype)
             for k, v in model.params.items()}
    out = {"params": float(sum(v.size for v in model.params.values()))}
    for label, enabled in (("rule", False), ("fused", True)):
        fused.ENABLED = enabled
        out[label] = time_fn(lambda: solver._update(grads), warmup=3, repeat=50,
                             min_time=1.0)["median_ms"]
    fused.ENABLED = True
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["basic_cifar", "vae"])
    ap.add_argument("--rule", default="adam", choices=sorted(UPDATE_RULES))
    args = ap.parse_args(argv)
    rows = []
    for case in args.cases:
        r = measure(case, args.rule)
        rows.append([case, f"{r['params']:,.0f}", f"{r['rule']:.2f}", f"{r['fused']:.2f}",
                     f"{r['rule'] / r['fused']:.1f}x"])
    print(markdown_table([f"model ({args.rule})", "parameters", "rule ms", "fused ms",
                          "speed-up"], rows))


if __name__ == "__main__":
    main()
