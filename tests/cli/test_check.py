"""``convnet check``: passes on convnet's layers, fails each classic-bug fixture on the right
check, passes a correct student module, reports MISSING, writes JSON, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convnet import checks
from convnet.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _failed(doc: dict) -> set[tuple[str, str]]:
    return {(r["layer"], r["check"]) for r in doc["results"] if r["status"] == "FAIL"}


def test_our_layers_pass_every_check(capsys, tmp_path):
    out_json = tmp_path / "ours.json"
    code, out, _ = _run(capsys, "--json", str(out_json))
    doc = json.loads(out_json.read_text())
    failures = [r for r in doc["results"] if r["status"] != "PASS"]
    assert code == 0, failures
    assert failures == []
    assert doc["passed"] is True and doc["counts"]["FAIL"] == 0
    # Every layer function convnet exports is exercised by some check.
    import convnet.layers as L

    public = {n for n in L.__all__ if callable(getattr(L, n)) and not n.startswith("set_")}
    assert public - set(checks.ALL_FUNCTION_NAMES) == set()
    assert {r["layer"] for r in doc["results"]} >= {
        "conv_naive", "conv_im2col", "conv_numba", "max_pool_numba", "conv_transpose",
        "im2col/col2im", "batchnorm", "softmax_loss", "gaussian_kl"}
    for r in doc["results"]:
        assert r["error"] is not None and r["error"] < r["tol"]
    # The table names the columns and every row's status.
    assert "max rel err" in out and "PASS" in out and "FAIL" not in out


# fixture -> checks (layer, check-name prefix) that must fail; every other check passes.
BUGS = {
    "buggy_maxpool_assign": {("max_pool_naive", "backward 3x3 s=2"),
                             ("max_pool_naive", "backward 3x3 s=2 tied")},
    "buggy_im2col_stride": {("conv_im2col", "forward 3x3 s=2 p=1"),
                            ("im2col/col2im", "adjoint 3x3 s=2 p=1")},
    "buggy_col2im": {("conv_im2col", "backward 3x3 s=1 p=0"),
                     ("im2col/col2im", "adjoint 3x3 s=1 p=0")},
    "buggy_conv_pad": {("conv_naive", "backward 3x3 s=2 p=1")},
}
# Checks that must still PASS, to show the bug is only visible where it should be.
STILL_PASS = {
    "buggy_maxpool_assign": {("max_pool_naive", "backward 2x2 s=2")},  # no overlap
    "buggy_im2col_stride": {("conv_im2col", "forward 3x3 s=1 p=0")},
    "buggy_col2im": {("conv_im2col", "forward 3x3 s=2 p=1")},  # forward does not use it
    "buggy_conv_pad": {("conv_naive", "backward 3x3 s=1 p=0")},
}


@pytest.mark.parametrize("name", list(BUGS))
def test_each_classic_bug_fails_the_right_check(name, capsys, tmp_path):
    out_json = tmp_path / f"{name}.json"
    code, out, _ = _run(capsys, "--impl", str(FIXTURES / f"{name}.py"), "--json", str(out_json))
    assert code == 1
    doc = json.loads(out_json.read_text())
    assert doc["passed"] is False
    rows = {(r["layer"], r["check"]): r for r in doc["results"]}

    def find(layer: str, prefix: str) -> dict:
        hits = [r for (lay, c), r in rows.items() if lay == layer and c.startswith(prefix)]
        assert hits, (layer, prefix)
        return hits[0]

    for layer, prefix in BUGS[name]:
        assert find(layer, prefix)["status"] == "FAIL", (layer, prefix)
    for layer, prefix in STILL_PASS[name]:
        assert find(layer, prefix)["status"] == "PASS", (layer, prefix)
    # What the module does not define is MISSING, never silently passed or failed.
    assert doc["counts"]["MISSING"] > 0
    assert rows[("affine", "forward vs reference")]["status"] == "MISSING"
    assert "FAIL" in out and "MISSING" in out


def test_correct_student_module_passes(capsys, tmp_path):
    out_json = tmp_path / "ok.json"
    code, out, _ = _run(capsys, "--impl", str(FIXTURES / "correct_student_layers.py"),
                        "--json", str(out_json))
    doc = json.loads(out_json.read_text())
    assert code == 0, _failed(doc)
    assert doc["counts"]["PASS"] >= 25 and doc["counts"]["FAIL"] == 0
    ran = {r["layer"] for r in doc["results"] if r["status"] == "PASS"}
    assert ran == {"affine", "relu", "conv_naive", "conv_im2col", "im2col/col2im",
                   "max_pool_naive"}
    # Extended features (dilation, pool padding, ceil mode) are not asked of a student.
    assert not any("dilation" in r["check"] or "ceil" in r["check"] for r in doc["results"])


def test_only_filter_stub_not_implemented_and_usage_errors(capsys, tmp_path):
    student = tmp_path / "student.py"
    student.write_text(
        "import numpy as np\n"
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n"
        "def relu_backward(dout, cache):\n    return dout * (cache > 0)\n"
        "def sigmoid_forward(x):\n    raise NotImplementedError('TODO')\n"
    )
    code, out, _ = _run(capsys, "--impl", str(student), "--only", "relu,sigmoid", "-v")
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.startswith(("relu", "sigmoid", "leaky"))]
    assert {ln.split()[0] for ln in lines} == {"relu", "sigmoid", "leaky_relu", "relu_max_pool"}
    assert all("PASS" in ln for ln in lines if ln.split()[0] == "relu")
    # The stub is NOT_IMPLEMENTED where only it is needed; the rest need undefined functions.
    stub_rows = [ln for ln in lines if ln.startswith("sigmoid") and "forward vs" in ln]
    assert stub_rows and all("NOT_IMPLEMENTED" in ln for ln in stub_rows)
    assert all("MISSING" in ln for ln in lines
               if not ln.startswith("relu") and ln not in stub_rows)

    # A module defining none of the names: one line on stderr, exit 2.
    empty = tmp_path / "empty.py"
    empty.write_text("def my_conv(x):\n    return x\n")
    code, out, err = _run(capsys, "--impl", str(empty))
    assert code == 2 and "defines none of the layer functions" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "--impl", str(tmp_path / "nope.py"))
    assert code == 2 and "no such file" in err
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\ndef relu_forward(x):\n    return x +\n")
    code, _, err = _run(capsys, "--impl", str(broken))
    assert code == 2 and "SyntaxError" in err
    code, _, err = _run(capsys, "--only", "no_such_layer")
    assert code == 2 and "matches no layer" in err


def test_run_check_reports_exceptions_and_nan_as_fail():
    class Impl:
        @staticmethod
        def relu_forward(x):
            return np.full_like(x, np.nan), x

        @staticmethod
        def relu_backward(dout, cache):
            raise IndexError("off by one")

    results = {r.check: r for r in checks.run_checks(Impl(), only="relu")
               if r.layer == "relu"}
    assert results["forward vs reference"].status == "FAIL"
    bwd = results["backward vs numerical"]
    assert bwd.status == "FAIL"
    assert json.loads(json.dumps(bwd.to_json()))["error"] is None  # inf is not JSON


def test_console_script_exit_code(tmp_path):
    exe = shutil.which("convnet", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "convnet.cli"]
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.run(
        cmd + ["check", "--impl", str(FIXTURES / "buggy_maxpool_assign.py"), "--only",
               "max_pool_naive"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 1, proc.stderr
    assert "max_pool_naive" in proc.stdout and "FAIL" in proc.stdout
    assert "import tensorflow" not in proc.stderr
