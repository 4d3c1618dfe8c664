"""BasicConvNet on MNIST: overfitting a tiny subset, then one epoch on all digits.

1. on only the first 40 training digits for 20 epochs, and for 100 epochs;
2. on all 50000 training digits for one epoch.

Prints the test accuracies (all 10000 test digits) and wall times and writes, per run, the
model, the curves and the filter picture to ``--out/<run>/`` plus ``summary.txt`` and
``summary.json``::

    python experiments/run_training_mnist.py --out runs/mnist
    python experiments/run_training_mnist.py --only subset   # the 40-digit runs only

The machine's load changes wall times; compare them only between runs made together.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from convnet.training import load_dataset, run_training

# The 40-digit runs see each digit many times: a small batch gives several updates per epoch;
# their per-epoch validation uses a random 500 of the 10000 validation digits (else the
# validation passes would cost far more than the training).
SUBSET = dict(subset=40, batch_size=10, lr=1e-3, val_samples=500)
FULL = dict(batch_size=50, lr=1e-3)
ARCH = dict(filters=32, filter_size=5, hidden=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/mnist"))
    ap.add_argument("--only", choices=("subset", "full"), default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    data = load_dataset("mnist", "basic")
    runs = []
    if args.only in (None, "subset"):
        runs += [("subset40_20ep", dict(SUBSET, epochs=20)),
                 ("subset40_100ep", dict(SUBSET, epochs=100))]
    if args.only in (None, "full"):
        runs += [("full_1ep", dict(FULL, epochs=1))]
    results = {}
    lines = []
    for name, kw in runs:
        s = run_training("mnist", "basic", seed=args.seed, out=args.out / name,
                         verbose=not args.quiet, data=data, **ARCH, **kw)
        results[name] = {k: s[k] for k in ("num_train", "epochs", "batch_size", "lr",
                                           "test_acc", "test_acc_last_epoch", "best_val_acc",
                                           "train_seconds")}
        line = (f"{name}: {s['num_train']} digits, {s['epochs']} epochs: test accuracy "
                f"{s['test_acc']:.4f} with the best-validation parameters (val "
                f"{s['best_val_acc']:.4f}), {s['test_acc_last_epoch']:.4f} with the last "
                f"epoch's; training {s['train_seconds']:.1f} s")
        print(line, flush=True)
        lines.append(line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
