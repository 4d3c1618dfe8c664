"""Memory: the glibc allocator tuning done on import, and who owns the arrays convnet returns.

Ownership rule (docs/internals.md, "Memory"): every array a layer, model or loss returns to
the caller is the caller's; a later call never writes into it. The tests keep a returned
array, call again with other data, and check that the kept array did not change. The
exception, by design: ``model.params`` values belong to the model, and the Solver updates
them in place, so a snapshot must be a copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convnet import _memory
from convnet.layers import (
    affine_backward,
    affine_forward,
    conv_backward,
    conv_forward,
    max_pool_backward,
    max_pool_forward,
)
from convnet.models import BasicConvNet
from convnet.models.autoencoder import VAE, ConvAutoencoder

REPO = Path(__file__).resolve().parent.parent
GLIBC = _memory._glibc_mallopt() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the tuning is glibc-only")

# Page faults per round of a step-like pattern: four 1 MiB arrays alive at once, then all
# freed. glibc's default (dynamic) thresholds give the 4 MiB back to the kernel after every
# round (more than twice the largest freed mmap chunk), so each round faults ~1024 pages
# in again. 1 MiB stays below NumPy's 4 MiB huge-page advice, so pages are 4 KiB.
_FAULTS_SCRIPT = """
import json, resource, sys
import convnet, convnet._memory as m
import numpy as np

def round_():
    arrays = [np.ones(1 << 18, dtype=np.float32) for _ in range(4)]
    return sum(float(a[0]) for a in arrays)

for _ in range(5):
    round_()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    round_()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20
print(json.dumps({"applied": m.malloc_tuning_applied(), "faults": faults,
                  "status": m.malloc_tuning_status()}))
"""


def _run(env_extra: dict[str, str], drop: tuple[str, ...] = ()) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith("MALLOC_") and k != "CONVNET_MALLOC_TUNING"}
    env.update(env_extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
def test_tuning_is_applied_on_import_and_stops_the_page_faults():
    tuned = _run({})
    untuned = _run({"CONVNET_MALLOC_TUNING": "0"})
    assert tuned["applied"] is True, tuned["status"]
    assert untuned["applied"] is False
    assert "CONVNET_MALLOC_TUNING=0" in untuned["status"]
    # ~1024 faults per round by default; none once the freed memory stays in the process.
    assert untuned["faults"] > 500, untuned
    assert tuned["faults"] < 50, tuned


@needs_glibc
def test_users_own_allocator_settings_win():
    r = _run({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert r["applied"] is False
    assert "MALLOC_TRIM_THRESHOLD_ is set" in r["status"]


def test_tune_malloc_is_idempotent():
    first = _memory.malloc_tuning_applied()
    assert _memory.tune_malloc() == first
    assert _memory.tune_malloc() == first


# ---------------------------------------------------------------------------------------
# ownership: kept results never change
# ---------------------------------------------------------------------------------------


def _two_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(np.float32),
            rng.standard_normal(shape).astype(np.float32))


def test_layer_results_are_not_overwritten_by_later_calls():
    x1, x2 = _two_inputs((4, 3, 8, 8))
    rng = np.random.default_rng(1)
    w = (0.1 * rng.standard_normal((5, 3, 3, 3))).astype(np.float32)
    b = np.zeros(5, np.float32)
    cp = {"stride": 1, "pad": 1}
    out1, cache1 = conv_forward(x1, w, b, cp)
    dx1, dw1, db1 = conv_backward(np.ones_like(out1), cache1)
    kept = [a.copy() for a in (out1, dx1, dw1, db1)]
    out2, cache2 = conv_forward(x2, w, b, cp)
    conv_backward(2 * np.ones_like(out2), cache2)
    for a, k in zip((out1, dx1, dw1, db1), kept, strict=True):
        np.testing.assert_array_equal(a, k)
    assert not np.shares_memory(out1, out2)

    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    p1, pc1 = max_pool_forward(out1, pp)
    pdx1 = max_pool_backward(np.ones_like(p1), pc1)
    kept = [p1.copy(), pdx1.copy()]
    p2, pc2 = max_pool_forward(out2, pp)
    max_pool_backward(np.full_like(p2, 3.0), pc2)
    np.testing.assert_array_equal(p1, kept[0])
    np.testing.assert_array_equal(pdx1, kept[1])

    wa = rng.standard_normal((3 * 8 * 8, 7)).astype(np.float32)
    ba = np.zeros(7, np.float32)
    a1, ac1 = affine_forward(x1, wa, ba)
    grads1 = affine_backward(np.ones_like(a1), ac1)
    kept = [a1.copy(), *(g.copy() for g in grads1)]
    a2, ac2 = affine_forward(x2, wa, ba)
    affine_backward(np.ones_like(a2), ac2)
    for a, k in zip((a1, *grads1), kept, strict=True):
        np.testing.assert_array_equal(a, k)


def test_model_forward_and_grads_are_not_overwritten():
    model = BasicConvNet((3, 16, 16), num_filters=4, filter_size=3, hidden_dim=10)
    x1, x2 = _two_inputs((6, 3, 16, 16))
    y = np.arange(6) % 10
    out1 = model.forward(x1)
    kept = out1.copy()
    model.forward(x2)
    np.testing.assert_array_equal(out1, kept)

    _, grads1 = model.loss(x1, y)
    kept_grads = {k: v.copy() for k, v in grads1.items()}
    model.loss(x2, y[::-1].copy())
    for k, v in grads1.items():
        np.testing.assert_array_equal(v, kept_grads[k], err_msg=k)


@pytest.mark.parametrize("cls", [ConvAutoencoder, VAE])
def test_autoencoder_results_are_not_overwritten(cls):
    model = cls(latent_dim=2)
    rng = np.random.default_rng(0)
    x1 = rng.random((3, 1, 28, 28), dtype=np.float32)
    x2 = rng.random((3, 1, 28, 28), dtype=np.float32)
    rec1 = model.loss(x1)
    code1 = model.encode(x1)
    _, grads1 = model.loss(x1, x1)
    kept = (rec1.copy(), code1.copy(), {k: v.copy() for k, v in grads1.items()})
    model.loss(x2)
    model.encode(x2)
    model.loss(x2, x2)
    np.testing.assert_array_equal(rec1, kept[0])
    np.testing.assert_array_equal(code1, kept[1])
    for k, v in grads1.items():
        np.testing.assert_array_equal(v, kept[2][k], err_msg=k)


def test_solver_updates_params_in_place_and_keeps_its_snapshots_apart():
    from convnet.solver import Solver

    model = BasicConvNet((3, 8, 8), num_filters=4, filter_size=3, hidden_dim=10)
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((20, 3, 8, 8)).astype(np.float32),
            "y_train": np.arange(20) % 10}
    held = {k: v for k, v in model.params.items()}  # references, not copies
    copies = {k: v.copy() for k, v in held.items()}
    solver = Solver(model, data, optim_config={"learning_rate": 1e-2}, batch_size=10,
                    num_epochs=2, verbose=False, restore_best=False)
    first_best = dict(solver.best_params)  # the Solver's snapshot of the initial values
    solver.train()
    assert solver.iteration == 4
    for k, v in model.params.items():
        assert v is held[k], k  # written in place: a reference follows the training
        assert not np.array_equal(copies[k], v), k  # a copy keeps the initial values
        np.testing.assert_array_equal(first_best[k], copies[k], err_msg=k)
        # the Solver's own snapshots never share memory with the live parameters
        assert not np.shares_memory(solver.best_params[k], v), k
        assert not np.shares_memory(solver.last_params[k], v), k


def test_the_optimiser_step_never_writes_into_the_gradients():
    from convnet.optim import fused, rules

    rng = np.random.default_rng(1)
    w = rng.standard_normal((30, 7)).astype(np.float32)
    g = rng.standard_normal((30, 7)).astype(np.float32)
    kept = g.copy()
    cfg: dict = {}
    for _ in range(3):
        assert fused.fused_step(rules.adam, w, g, cfg) is None
    np.testing.assert_array_equal(g, kept)
