"""The derivative of x -> 2x sin(pi x) at x = 3/2, three ways.

* TensorFlow: ``tf.GradientTape`` in float64 (automatic differentiation, exact up to rounding);
* convnet: ``convnet.gradcheck.eval_numerical_gradient`` (centred difference, step h);
* analytic: d/dx 2x sin(pi x) = 2 sin(pi x) + 2 pi x cos(pi x) = 2 (-1) + 3 pi * 0 = -2.

The centred difference has truncation error ~ f'''(x) h^2 / 6 and rounding error
~ eps |f| / h; the script prints both methods' errors against -2 and the numerical error for a
few step sizes, so the h^2 behaviour and the rounding floor are visible.

    python experiments/tf_derivative.py [--out runs/tf_derivative]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from convnet.gradcheck import eval_numerical_gradient
from convnet.interop import import_tf

X0 = 1.5
ANALYTIC = -2.0


def f_numpy(x: np.ndarray) -> float:
    return float(np.sum(2 * x * np.sin(np.pi * x)))


def tf_derivative(x0: float = X0) -> tuple[float, float]:
    """(y, dy/dx) at x0 via tf.GradientTape, in float64."""
    tf = import_tf()
    x = tf.Variable(x0, dtype=tf.float64)
    with tf.GradientTape() as tape:
        y = 2 * x * tf.sin(np.pi * x)
    return float(y.numpy()), float(tape.gradient(y, x).numpy())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="folder for summary.json")
    args = p.parse_args(argv)

    y_tf, d_tf = tf_derivative()
    x = np.array([X0], dtype=np.float64)
    d_num = float(eval_numerical_gradient(f_numpy, x, h=1e-5)[0])
    print(f"f(3/2) = {y_tf:.15f}   (exact: 2 * 1.5 * sin(1.5 pi) = -3)")
    print(f"{'method':<42}{'df/dx':>22}{'error vs -2':>14}")
    print(f"{'TensorFlow GradientTape (float64)':<42}{d_tf:>22.15f}{abs(d_tf - ANALYTIC):>14.2e}")
    print(f"{'convnet eval_numerical_gradient h=1e-5':<42}{d_num:>22.15f}"
          f"{abs(d_num - ANALYTIC):>14.2e}")
    print(f"{'analytic 2 sin(pi x) + 2 pi x cos(pi x)':<42}{ANALYTIC:>22.15f}")
    print("\nnumerical gradient vs step size h (truncation ~h^2, rounding ~eps/h):")
    sweep = {}
    for h in (1e-1, 1e-2, 1e-3, 1e-5, 1e-7, 1e-9):
        d = float(eval_numerical_gradient(f_numpy, np.array([X0]), h=h)[0])
        sweep[h] = d
        print(f"  h = {h:<6g} df/dx = {d:>20.15f}  error {abs(d - ANALYTIC):.2e}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps({
            "tf_gradient_tape": d_tf, "convnet_numerical": d_num, "analytic": ANALYTIC,
            "numerical_by_h": {str(k): v for k, v in sweep.items()},
        }, indent=1))
    ok = abs(d_tf - ANALYTIC) < 1e-12 and abs(d_num - ANALYTIC) < 1e-8
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
