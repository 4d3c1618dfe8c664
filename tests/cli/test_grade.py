"""``convnet grade`` on hostile submissions: one batch mixes an infinite loop, a 50 GB
allocation, ``os._exit(3)``, megabytes of output, a module that raises at import, one that
imports a module that does not exist, a syntax error, missing functions, a wrong shape, a
wrong dtype, NaN outputs and functions that mutate their inputs, with a correct solution
and an untouched template. Every one gets a clear verdict, the batch finishes, the correct
one gets full marks, and the JSON, Gradescope and CSV reports are written atomically."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from convnet import checks, grading
from convnet.cli import main
from convnet.errors import ConvnetError

FIXTURES = Path(__file__).parents[1] / "fixtures"
HOSTILE = FIXTURES / "hostile"
SOLUTION = FIXTURES / "solutions" / "fc_layers.py"
TIMEOUT = 15.0  # s per submission: start-up and 11 small checks need ~2 s alone


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every hostile fixture, a syntax error, a missing file, an untouched template
    and the correct solution in one `convnet grade` run; return (reports, folder, wall)."""
    tmp = tmp_path_factory.mktemp("grade")
    (tmp / "syntax_error.py").write_text(
        '__convnet_exercise__ = "fc_layers"\n\ndef relu_forward(x)\n    return x\n')
    assert main(["exercise", "start", "fc_layers", "--dir", str(tmp / "untouched")]) == 0
    weights = tmp / "weights.json"
    weights.write_text(json.dumps({"default": 1, "relu": 2,
                                   "affine: forward vs reference": 5}))
    subs = sorted(str(p) for p in HOSTILE.glob("*.py")) + [
        str(tmp / "syntax_error.py"), str(tmp / "does_not_exist.py"),
        str(tmp / "untouched" / "fc_layers.py"), str(SOLUTION)]
    out = tmp / "out"
    secrets = {"GITHUB_TOKEN": "ghp_secret", "CONVNET_API_TOKEN": "hidden",
               "AWS_SECRET_ACCESS_KEY": "hidden"}
    old = {k: os.environ.get(k) for k in secrets}
    os.environ.update(secrets)
    start = time.monotonic()
    try:
        code = main(["grade", *subs, "--exercise", "fc_layers", "--jobs", "3",
                     "--timeout", str(TIMEOUT), "--memory", "512", "--no-progress",
                     "--weights", str(weights), "--json", str(out / "report.json"),
                     "--csv", str(out / "summary.csv"), "--gradescope", str(out / "gs")])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.monotonic() - start
    assert code == 0
    doc = json.loads((out / "report.json").read_text())
    reports = {Path(r["submission"]).stem if "untouched" not in r["submission"]
               else "untouched": r for r in doc["submissions"]}
    assert len(reports) == len(subs) == doc["summary"]["submissions"]
    return reports, out, wall, doc


def _row(report: dict, name: str) -> dict:
    return next(r for r in report["checks"] if r["name"] == name)


def test_correct_submission_full_marks_with_weights(batch):
    reports, *_ = batch
    ok = reports["fc_layers"]
    assert ok["verdict"] == "ok", ok["message"]
    assert ok["score"] == ok["max_score"]
    # 11 checks: 3 relu at 2 points, affine forward at 5, the 7 others at 1.
    assert ok["max_score"] == 3 * 2 + 5 + 7
    assert _row(ok, "relu: forward vs reference")["max_score"] == 2
    assert _row(ok, "affine: forward vs reference")["score"] == 5
    assert set(ok["functions"].values()) == {"passed"}


def test_untouched_template_scores_zero(batch):
    rep = batch[0]["untouched"]
    assert rep["verdict"] == "ok" and rep["score"] == 0
    assert set(rep["functions"].values()) == {"not implemented"}
    assert {r["status"] for r in rep["checks"]} == {"NOT_IMPLEMENTED"}


def test_infinite_loop_times_out_and_keeps_finished_checks(batch):
    rep = batch[0]["loops_forever"]
    assert rep["verdict"] == "timeout"
    assert rep["wall_s"] < TIMEOUT + 5
    assert "relu: forward vs reference" in rep["message"] and "relu_forward" in rep["message"]
    # The affine checks ran before the loop and keep their points; the rest never ran.
    assert {r["status"] for r in rep["checks"] if r["layer"] == "affine"} == {"PASS"}
    assert rep["score"] == 5 + 1 + 1
    assert _row(rep, "relu: backward vs numerical")["status"] == "NOT_RUN"


def test_memory_exit_output_and_import_verdicts(batch):
    reports, *_ = batch
    mem = reports["allocates_50gb"]
    assert mem["verdict"] == "memory"
    assert "relu_forward" in mem["message"] and "MemoryError" in mem["message"]
    assert "512 MB" in mem["message"]

    ex = reports["calls_os_exit"]
    assert ex["verdict"] == "crashed" and ex["returncode"] == 3
    assert "exited with status 3" in ex["message"] and "relu_forward" in ex["message"]

    loud = reports["prints_megabytes"]
    assert loud["verdict"] == "output-too-large" and "MB" in loud["message"]
    assert loud["output_bytes"] > 5 * 2**20
    assert loud["functions"]["relu_forward"] == "passed"  # its checks still count
    assert loud["score"] == 3 * 2

    boom = reports["raises_at_import"]
    assert boom["verdict"] == "import-error"
    assert boom["message"] == ("raised at import: RuntimeError: the student's module "
                               "exploded at import")
    missing = reports["imports_missing_module"]
    assert missing["verdict"] == "import-error"
    assert "module that does not exist" in missing["message"]
    assert "numpy_but_faster" in missing["message"]
    syntax = reports["syntax_error"]
    assert syntax["verdict"] == "import-error"
    assert syntax["message"].startswith("syntax error: expected ':'")
    assert "line 3" in syntax["message"]
    gone = reports["does_not_exist"]
    assert gone["verdict"] == "not-found"
    for rep in (boom, missing, syntax, gone):
        assert rep["score"] == 0 and {r["status"] for r in rep["checks"]} == {"NOT_RUN"}


def test_function_level_verdicts_name_function_and_problem(batch):
    reports, *_ = batch
    bad = reports["bad_functions"]
    assert bad["verdict"] == "ok"
    fs, problems = bad["functions"], bad["problems"]
    assert fs["svm_loss"] == "missing"
    assert fs["affine_forward"] == "failed"
    assert "output shape (5, 4), expected (4, 5)" in problems["affine_forward"]
    assert fs["relu_forward"] == "failed"
    assert problems["relu_forward"].endswith("relu_forward mutates its input x")
    assert fs["softmax_loss"] == "failed"
    assert "large logits" in problems["softmax_loss"] and "not finite" in problems["softmax_loss"]
    assert "svm_loss missing" in bad["message"]
    # The two ordinary softmax checks still pass: partial credit per check.
    assert bad["score"] == 2

    nan = reports["nan_outputs"]
    assert nan["functions"]["relu_forward"] == "failed"
    assert "NaN" in nan["problems"]["relu_forward"]
    assert nan["problems"]["relu_backward"] == ("relu: backward vs numerical: fails together "
                                                "with relu_forward, which is wrong by itself")
    dtype = reports["wrong_dtype"]
    assert "float32 input gave float64 output" in dtype["problems"]["relu_forward"]
    assert _row(dtype, "relu: forward vs reference")["status"] == "PASS"
    dout = reports["mutates_dout"]
    assert "relu_backward mutates its input dout" in dout["problems"]["relu_backward"]
    assert _row(dout, "relu: forward vs reference")["status"] == "PASS"


def test_sandbox_environment_and_scratch_folder(batch):
    probe = batch[0]["env_probe"]
    assert probe["verdict"] == "ok"
    line = next(ln for ln in probe["stderr_tail"].splitlines() if ln.startswith("PROBE "))
    seen = json.loads(line[len("PROBE "):])
    for secret in ("GITHUB_TOKEN", "CONVNET_API_TOKEN", "AWS_SECRET_ACCESS_KEY"):
        assert secret not in seen["env"]
    assert "CONVNET_DATA_DIR" in seen["env"] or "CONVNET_DATA_DIR" not in os.environ
    allowed = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "NUMBA_CACHE_DIR", "HOME", "TMPDIR",
               "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE", "PYTHONIOENCODING",
               "MPLBACKEND", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS"}
    assert {k for k in seen["env"] if not k.startswith("CONVNET_")} <= allowed
    assert seen["home"] == seen["cwd"] and "convnet-grade-" in seen["cwd"]
    assert not os.path.exists(seen["cwd"])  # the scratch folder is gone
    # The process it started was killed with its process group (at most a zombie is left
    # until its new parent reaps it).
    status = Path(f"/proc/{seen['left_behind']}/status")
    if status.exists():
        state = next((ln for ln in status.read_text().splitlines()
                      if ln.startswith("State:")), "State: Z")
        assert "Z" in state.split()[1], state


def test_import_time_allocation_and_huge_file(batch):
    reports, *_ = batch
    mem = reports["allocates_at_import"]
    assert mem["verdict"] == "memory" and "while importing" in mem["message"]
    assert "Unable to allocate" in mem["message"] and mem["score"] == 0
    big = reports["writes_huge_file"]
    assert big["verdict"] == "output-too-large"
    assert "over the 64 MB limit" in big["message"] and "relu_forward" in big["message"]


def test_reports_gradescope_csv_atomic(batch):
    reports, out, wall, doc = batch
    assert doc["settings"]["memory_mb"] == 512 and doc["settings"]["weights"]["relu"] == 2
    assert doc["summary"]["verdicts"]["import-error"] == 3
    assert doc["summary"]["verdicts"]["memory"] == 2
    # Several submissions: one Gradescope results file per submission, in a folder.
    files = sorted(p.name for p in (out / "gs").iterdir())
    assert len(files) == len(reports) and "solutions__fc_layers.json" in files
    gs = json.loads((out / "gs" / "solutions__fc_layers.json").read_text())
    assert gs["score"] == reports["fc_layers"]["score"] == 18
    assert len(gs["tests"]) == 11
    for t in gs["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output"}
        assert t["score"] == t["max_score"] and t["output"].startswith("PASS")
    gs_loop = json.loads((out / "gs" / "hostile__loops_forever.json").read_text())
    assert gs_loop["output"].startswith("timeout: ")
    assert any(t["output"].startswith("NOT_RUN") for t in gs_loop["tests"])

    with open(out / "summary.csv", newline="") as f:
        rows = {Path(r["submission"]).stem: r for r in csv.DictReader(f)}
    assert tuple(next(iter(rows.values()))) == grading.CSV_COLUMNS
    assert rows["loops_forever"]["verdict"] == "timeout"
    assert rows["fc_layers"]["score"] == rows["fc_layers"]["max_score"] == "18"
    # Written atomically with a plain open()'s permissions; no temporary files left.
    for p in [out / "report.json", out / "summary.csv", *(out / "gs").iterdir()]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~_umask(), p
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    # The loop used its whole timeout; everything else ran beside it (3 jobs).
    assert wall < 3 * TIMEOUT + 30


def test_single_submission_gradescope_file(tmp_path, capsys):
    target = tmp_path / "results" / "results.json"
    code = main(["grade", str(HOSTILE / "raises_at_import.py"), "--no-progress",
                 "--gradescope", str(target), "--only", "relu: forward"])
    assert code == 0
    gs = json.loads(target.read_text())
    assert gs["score"] == 0 and gs["output"].startswith("import-error: raised at import")
    assert [t["name"] for t in gs["tests"]] == ["relu: forward vs reference"]
    assert gs["tests"][0]["max_score"] == 1
    out, _ = capsys.readouterr()
    assert "raises_at_import.py" in out and "0/1" in out


def test_weights_and_usage_errors(tmp_path, capsys):
    w = grading.Weights({"default": 0.5, "conv_*": 3, "conv_naive": 2,
                         "conv_naive: backward 3x3 s=1 p=0 vs numerical": 7})
    assert w.points("conv_naive", "backward 3x3 s=1 p=0 vs numerical") == 7
    assert w.points("conv_naive", "forward 3x3 s=1 p=0 vs reference") == 2
    assert w.points("conv_im2col", "anything") == 3
    assert w.points("relu", "anything") == 0.5
    bad = tmp_path / "w.json"
    bad.write_text(json.dumps({"relu": 1, "reluu": 2}))
    with pytest.raises(ConvnetError, match="'reluu' match no check"):
        grading.Weights.from_file(bad)
    bad.write_text(json.dumps({"relu": -1}))
    with pytest.raises(ConvnetError, match="number >= 0"):
        grading.Weights.from_file(bad)
    bad.write_text("[1, 2]")
    code = main(["grade", str(SOLUTION), "--weights", str(bad)])
    assert code == 2 and "JSON object" in capsys.readouterr().err
    for argv, msg in ((["--jobs", "0"], "--jobs"), (["--exercise", "nope"], "unknown exercise"),
                      (["--only", "no_such_check"], "matches no check"),
                      (["--timeout", "0"], "--timeout")):
        assert main(["grade", str(SOLUTION), *argv]) == 2
        assert msg in capsys.readouterr().err


def test_grader_error_on_one_submission_does_not_stop_the_batch(monkeypatch):
    real = grading.grade_submission

    def flaky(path, **kw):
        if "bad" in str(path):
            raise RuntimeError("disk on fire")
        return real(path, **kw)

    monkeypatch.setattr(grading, "grade_submission", flaky)
    reps = grading.grade_all(["/nonexistent/bad.py", "/nonexistent/good.py"], jobs=2,
                             exercise="fc_layers", progress=False)
    assert [r["verdict"] for r in reps] == ["grader-error", "not-found"]
    assert reps[0]["message"] == "RuntimeError: disk on fire"


def test_mutation_guard_names_the_argument():
    def relu_backward(dout, cache):
        cache[0][cache[0] < 0] = 0  # writes into the input x kept in the cache
        return dout * (cache[0] > 0)

    guarded = checks.guard_inputs("relu_backward", relu_backward)
    x = np.array([-1.0, 2.0])
    with pytest.raises(checks.InputMutatedError, match="relu_backward mutates its input "
                                                       r"cache\[0\]"):
        guarded(np.ones(2), (x,))
    ok = checks.guard_inputs("relu_backward", lambda dout, cache: dout * (cache[0] > 0))
    assert ok(np.ones(2), (np.array([np.nan, 1.0]),)).tolist() == [0.0, 1.0]  # NaN == NaN


def _run(rc: int, timed_out: bool = False, stderr: bytes = b"", out: int = 0,
         truncated: bool = False) -> grading.ChildRun:
    return grading.ChildRun(rc, timed_out, 1.0, b"", stderr, out, truncated)


def test_judge_each_way_a_child_can_end():
    limits = grading.Limits(timeout_s=7, memory_mb=600, output_bytes=100, file_mb=3)
    partial = {"complete": False, "running": "conv_naive: backward 3x3 s=1 p=0 vs numerical",
               "running_functions": ["conv_forward_naive", "conv_backward_naive"]}
    v, m = grading.judge(_run(-9, timed_out=True), partial, limits)
    assert v == "timeout" and m == ("timed out after 7 s while running 'conv_naive: backward "
                                    "3x3 s=1 p=0 vs numerical' (conv_forward_naive, "
                                    "conv_backward_naive)")
    assert grading.judge(_run(-24), {"running": "import"}, limits) == (
        "timeout", "timed out after 7 s while importing the submission")  # SIGXCPU
    v, m = grading.judge(_run(-25), partial, limits)  # SIGXFSZ
    assert v == "output-too-large" and "3 MB" in m
    err = {"error": {"kind": "import", "exception": "MemoryError",
                     "message": "--impl: importing /x/s.py failed: MemoryError: "}}
    v, m = grading.judge(_run(2), err, limits)
    assert v == "memory" and "while importing" in m and "600 MB" in m
    v, m = grading.judge(_run(-11, stderr=b"Fatal Python error: Segmentation fault"), partial,
                         limits)
    assert v == "crashed" and m.startswith("was killed by SIGSEGV while running 'conv_naive")
    assert "Segmentation fault" in m
    v, m = grading.judge(_run(0), None, limits)
    assert v == "crashed" and m.startswith("exited with status 0 before finishing")
    v, m = grading.judge(_run(-6, stderr=b"terminate called after std::bad_alloc"), partial,
                         limits)
    assert v == "memory"
    done = {"complete": True, "results": []}
    assert grading.judge(_run(0, out=150), done, limits)[0] == "ok"
    v, m = grading.judge(_run(0, out=250, truncated=True), done, limits)
    assert v == "output-too-large" and m.startswith("printed 250 bytes")
    nothing = {"error": {"kind": "nothing-to-check", "message": "defines none"}}
    assert grading.judge(_run(2), nothing, limits) == ("no-functions", "defines none")
