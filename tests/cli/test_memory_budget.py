"""The memory budget of the image commands (convnet._memory_budget): the estimate, the limit,
and a real address-space cap under which a command refuses instead of crashing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from convnet import _memory_budget as mb
from convnet.backend import InputSpace, NumpyBackend
from convnet.cli import main


def _fcn_backend() -> NumpyBackend:
    from convnet.models import Conv2D, MaxPool2D, ReLU, Sequential

    model = Sequential(
        [Conv2D(3, 6, 3, pad=1, name="conv1", seed=0), ReLU(name="relu1"),
         MaxPool2D(2, 2, name="pool1"), Conv2D(6, 8, 3, pad=1, name="conv2", seed=1),
         ReLU(name="relu2")],
        name="fcn",
    )  # fmt: skip
    return NumpyBackend(model, InputSpace.unit_rgb())


def test_activation_bytes_per_pixel_counts_every_layer_output():
    # float32 outputs per input pixel: conv1 6, relu1 6, pool1 6/4, conv2 8/4, relu2 8/4
    want = 4 * (6 + 6 + 6 / 4 + 8 / 4 + 8 / 4)
    assert mb.activation_bytes_per_pixel(_fcn_backend()) == pytest.approx(want)


def test_footprint_slope_is_at_least_the_activation_floor():
    b = _fcn_backend()
    fp = mb.measure_footprint(b)
    assert fp.per_pixel >= mb.ACTIVATION_FACTOR * mb.activation_bytes_per_pixel(b)
    assert fp.fixed >= 0


def test_estimate_is_linear_in_pixels_and_images_and_tiles_cap_the_model_part():
    b = _fcn_backend()
    fp = mb.Footprint(fixed=1000.0, per_pixel=300.0)
    one = mb.estimate_images(b, (100, 100), footprint=fp).bytes
    assert one == 1000.0 + (300.0 + mb.PIXEL_BYTES) * 1e4
    assert mb.estimate_images(b, (200, 200), footprint=fp).bytes == 1000.0 + 4 * (one - 1000.0)
    three = mb.estimate_images(b, (100, 100), images=3, footprint=fp)
    assert three.bytes == 1000.0 + 3 * (one - 1000.0) and "3 images of 100x100" in three.detail
    tiled = mb.estimate_images(b, (1000, 1000), footprint=fp, model_hw=(100, 100)).bytes
    assert tiled == 1000.0 + 300.0 * 1e4 + mb.PIXEL_BYTES * 1e6


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_estimate_bounds_a_measured_run_without_being_absurd(param):
    """Peak NumPy memory of a real feature-visualisation run vs the estimate."""
    from convnet.inputgrad.features import feature_objective, maximize

    b = _fcn_backend()
    size = 400
    est = mb.estimate_images(b, (size, size), extra_per_pixel=mb.EXTRA_BYTES[param]).bytes
    obj = feature_objective("conv2", channel=1)
    maximize(b, obj, size=32, steps=1, init="random", param=param)  # compile outside the trace
    tracemalloc.start()
    try:
        maximize(b, obj, size=size, steps=2, init="random", param=param)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= est <= 3 * peak, (peak, est)


def test_limit_comes_from_the_flag_then_the_environment_then_available_memory(monkeypatch):
    monkeypatch.setenv(mb.ENV, "300")
    assert mb.memory_limit(50) == (50 * mb.MB, "--max-memory 50")
    assert mb.memory_limit(None) == (300 * mb.MB, f"{mb.ENV}=300")
    monkeypatch.delenv(mb.ENV)
    monkeypatch.setattr(mb, "available_bytes", lambda: 1000 * mb.MB)
    limit, source = mb.memory_limit(None)
    assert limit == mb.DEFAULT_FRACTION * 1000 * mb.MB and "1,000 MB available" in source
    monkeypatch.setattr(mb, "available_bytes", lambda: None)
    assert mb.memory_limit(None)[0] is None  # unknown: no default limit


def test_available_memory_reads_proc_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable:   2048 kB\n")
    assert mb._meminfo_available(str(f)) == 2048 * 1024
    assert mb._meminfo_available(str(tmp_path / "none")) is None


def test_check_memory_message_names_the_fix_and_the_limit():
    with pytest.raises(mb.MemoryBudgetError) as e:
        mb.check_memory(mb.Estimate(3 * 1024**3, "detail"), 100, "lower --size", who="x")
    msg = str(e.value)
    assert "x needs about 3.0 GB (detail)" in msg and "100.0 MB (--max-memory 100)" in msg
    assert "lower --size" in msg and "--max-memory MB" in msg
    assert mb.check_memory(10 * mb.MB, 100, "lower --size") == 100 * mb.MB  # fits


def test_max_memory_flag_refuses_a_large_size(capsys, tmp_path):
    out = tmp_path / "out"
    rc = main(["classviz", "1", "--model", "squeezenet", "--weights", "none", "--size", "1000",
               "--max-memory", "50", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "needs about 1." in err and " GB (1000x1000 pixels" in err  # ~1,400 bytes a pixel
    assert not out.exists()


_CHILD = textwrap.dedent(
    """
    import resource, sys
    from convnet.cli import main
    from convnet._memory_budget import _vm_size, available_bytes

    # an address-space cap 1.5 GB above what the process uses now (ulimit -v)
    cap = _vm_size() + 1536 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    assert available_bytes() <= 1536 * 2**20, available_bytes()
    out = sys.argv[1]
    args = ["classviz", "1", "--model", "squeezenet", "--weights", "none", "--steps", "1",
            "--no-progress", "--out", out]
    print("small", main([*args, "--size", "64"]), file=sys.stderr, flush=True)
    print("large", main([*args, "--size", "3000"]), file=sys.stderr, flush=True)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_under_an_address_space_cap_a_large_run_is_refused_not_crashed(tmp_path):
    """Without the estimate, --size 3000 (about 10 GB) dies with MemoryError under this cap."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out)], capture_output=True,
                          text=True, timeout=300, env=_env())  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 0, proc.stderr
    assert "small 0" in lines  # the cap leaves room for ordinary work
    assert lines[-1] == "large 2" and "Traceback" not in proc.stderr
    refusal = lines[-2]
    assert refusal.startswith("convnet classviz: error: convnet classviz needs about")
    assert "of the" in refusal and "MB available" in refusal and "lower --size" in refusal
    assert sorted(p.name for p in out.iterdir()) == ["class_1.png"]  # the small run's only


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.pop(mb.ENV, None)
    return env

