"""Feature visualisation of single units, whole channels and deeper layers (Olah et al.,
"Feature Visualization", Distill 2017).

The reference settings are the defaults for InceptionV3 (run when its ImageNet weights are in
``$KERAS_HOME/models``): layer ``mixed1``, unit (y, x, channel) = (9, 9, 30) and channel 30,
a 200x200 input from the constant 0 ("offset"), 2000 Adam steps (Keras defaults), random
shift 4. The same experiment runs on the weights available here: Keras MobileNet alpha 0.25
(TF backend; ``conv_pw_3_relu`` plays the part of ``mixed1``) and SqueezeNet (NumPy; fire3,
from a random start since a grey image leaves most of its units at zero). Also, as in Olah et al.:
the decorrelated Fourier parameterisation and a diversity term, with and without, in one
figure.

    python experiments/feature_visualization.py --out runs/features
    python experiments/feature_visualization.py --quick --out /tmp/features   # a quick look

Writes per model ``<model>_unit.png``, ``<model>_channel.png``, ``<model>_<layer>_grid.png``
(several channels of a shallow and a deep layer), ``<model>_param_diversity.png`` and
``summary.json`` (objective before/after and times).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from convnet.data.images import save_png
from convnet.inputgrad.features import (
    COURSE_LAYER,
    COURSE_SHIFT,
    COURSE_SIZE,
    COURSE_STEPS,
    COURSE_UNIT,
    feature_objective,
    grid,
    maximize,
    visualize_channels,
)

# model -> settings. 'unit'/'channel' follow the reference settings (a shallow mixed layer, one
# unit near the top-left, channel 30); 'deep' is a deeper layer, for comparison.
SETTINGS = {
    "inception_v3": dict(layer=COURSE_LAYER, unit=COURSE_UNIT, channel=30, deep="mixed5",
                         size=COURSE_SIZE, steps=COURSE_STEPS, lr=1e-3, init=0.0,
                         grid_steps=512, grid_lr=0.05),
    # MobileNet's unit (9, 9, 30) is off (ReLU = 0) on a grey image, so no gradient reaches
    # the input from the zero offset: start that one from noise.
    "mobilenet_025": dict(layer="conv_pw_3_relu", unit=(30, 9, 9), channel=30,
                          deep="conv_pw_11_relu", size=COURSE_SIZE, steps=COURSE_STEPS, lr=1e-3,
                          init=0.0, unit_init="random", grid_steps=512, grid_lr=0.05),
    "squeezenet": dict(layer="fire3", unit=(12, 9, 9), channel=12, deep="fire7", size=128,
                       steps=150, lr=0.05, init="random", grid_steps=100, grid_lr=0.05,
                       fourier_std=0.1),
}


def load(name: str):
    if name == "squeezenet":
        from convnet.models.squeezenet import squeezenet_backend

        return squeezenet_backend()
    from convnet.interop.pretrained import find_weights, keras_model

    if name == "mobilenet_025":
        if find_weights("mobilenet", False, 0.25) is None:
            return None
        return keras_model("mobilenet", alpha=0.25)
    if find_weights("inception_v3", False) is None:
        return None
    return keras_model("inception_v3")


def _live_unit(backend, s: dict) -> tuple[int, int, int]:
    """The reference unit if it responds to the start image, else the most active channel at
    the same position: a ReLU unit that is 0 there gets no gradient and never moves."""
    from convnet.inputgrad.param import PixelParam, to_model_input

    init = s.get("unit_init", s["init"])
    p = PixelParam((1, 3, s["size"], s["size"]), init=init, seed=0)
    a = backend.forward(to_model_input(backend.input_space, p.to_pixels()), [s["layer"]])
    c, y, x = s["unit"]
    col = a[s["layer"]][0, :, y, x]
    if col[c] > 0:
        return (c, y, x)
    # The median of the active channels: the largest may already sit at ReLU6's cap.
    live = np.flatnonzero(col > 0)
    pick = int(live[np.argsort(col[live])[len(live) // 2]])
    print(f"unit {s['unit']} of {s['layer']} is off at the start: using channel {pick} "
          f"({col[pick]:.3g}) at the same position")
    return (pick, y, x)


def run_model(name: str, backend, s: dict, out: Path, quick: bool, seed: int) -> dict:
    q = 10 if quick else 1
    steps, gsteps = max(5, s["steps"] // q), max(5, s["grid_steps"] // q)
    res: dict = {}
    # The reference settings are pixel-space Adam (feature_quality.py compares it with the
    # Fourier default).
    common = dict(size=s["size"], max_shift=COURSE_SHIFT, init=s["init"], seed=seed,
                  param="pixel")  # fmt: skip
    unit = _live_unit(backend, s)
    for kind in ("unit", "channel"):
        obj = (feature_objective(s["layer"], unit=unit) if kind == "unit"
               else feature_objective(s["layer"], channel=s["channel"]))  # fmt: skip
        kw = dict(common, init=s.get("unit_init", s["init"])) if kind == "unit" else common
        r = maximize(backend, obj, steps=steps, learning_rate=s["lr"], progress=True, **kw)
        save_png(r.images, out / f"{name}_{kind}.png")
        res[kind] = {"objective": repr(obj), "start": r.history[0], "end": r.history[-1],
                     "steps": steps, "seconds": round(r.seconds, 1)}  # fmt: skip
        print(f"{name} {kind}: {r.history[0]:.4g} -> {r.history[-1]:.4g} ({r.seconds:.0f} s)")
    for layer in (s["layer"], s["deep"]):
        probe = np.zeros((1, 3, 96, 96), np.float32)
        n_ch = backend.forward(probe, [layer])[layer].shape[1]
        chans = [int(c) for c in np.linspace(0, n_ch - 1, 8)]
        # Deeper layers need a livelier start (a larger constant offset).
        r = visualize_channels(backend, layer, chans, size=s["size"] // 2 + 32, steps=gsteps,
                               learning_rate=s["grid_lr"], max_shift=COURSE_SHIFT,
                               init="random", seed=seed, progress=True, param="pixel")  # fmt: skip
        fig = grid(r.images, [f"ch {c}" for c in chans], ncols=4,
                   suptitle=f"{name} {layer}, {gsteps} steps")  # fmt: skip
        fig.savefig(out / f"{name}_{layer}_grid.png", dpi=90)
        res[f"grid_{layer}"] = {"channels": chans, "start_sum": r.history[0],
                                "end_sum": r.history[-1],
                                "seconds": round(r.seconds, 1)}  # fmt: skip
    # With and without the Fourier parameterisation and the diversity term (2 images each).
    images, titles = [], []
    ch = s["channel"]
    for param in ("pixel", "fourier"):
        for div in (0.0, 50.0):
            r = visualize_channels(
                backend, s["layer"], [ch, ch], size=s["size"] // 2 + 32, steps=gsteps,
                learning_rate=s["grid_lr"] if param == "pixel" else 0.05, param=param,
                diversity=div, init="random", max_shift=COURSE_SHIFT, seed=seed,
                init_std=s.get("fourier_std") if param == "fourier" else None,
            )  # fmt: skip
            images += list(r.images)
            titles += [f"{param}, div {div:g} ({i})" for i in (1, 2)]
            res[f"{param}_div{div:g}"] = {"end_sum": r.history[-1], "seconds": round(r.seconds, 1)}
    fig = grid(np.stack(images), titles, ncols=4,
               suptitle=f"{name} {s['layer']} ch {ch}: pixel vs Fourier, without/with diversity")
    fig.savefig(out / f"{name}_param_diversity.png", dpi=90)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/feature_visualization"))
    p.add_argument("--models", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--quick", action="store_true", help="a tenth of the steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    for name in args.models:
        t0 = time.perf_counter()
        backend = load(name)
        if backend is None:
            print(f"{name}: ImageNet weights not available here, skipped")
            summary[name] = "skipped: weights not available"
            continue
        summary[name] = run_model(name, backend, SETTINGS[name], args.out, args.quick, args.seed)
        summary[name]["total_seconds"] = round(time.perf_counter() - t0, 1)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
