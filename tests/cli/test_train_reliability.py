"""``convnet train`` and ``convnet autoencoder train|sample`` lose no work and fail early.

Checkpoints every epoch and ``--resume`` bit for bit, options and ``--out`` checked before
the first step, another run in ``--out`` refused unless ``--overwrite``, a diverging run
stopped with one line and exit 2, the architecture options honoured and recorded, the
model's input space recorded, ``sample --out`` writing the format its extension names.
All on tiny MNIST subsets (a few seconds each).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import need_data

from convnet.cli import main
from convnet.models import Sequential

MNIST = "mnist/train-images-idx3-ubyte.gz"
# 200 digits, 4 batches per epoch, a small BasicConvNet: seconds per run
SMALL = ["--subset", "200", "--filters", "4", "--hidden", "16", "--batch-size", "50",
         "--val-samples", "100", "--test-samples", "100", "--quiet"]


def train(out, *extra):
    return main(["train", "mnist", *SMALL, *extra, "--out", str(out)])


def arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)
    return err


class Interrupt:
    """Patch Solver._run_callbacks to raise KeyboardInterrupt at one event (Ctrl-C there)."""

    def __init__(self, monkeypatch, event, iteration):
        from convnet.solver import Solver

        original = Solver._run_callbacks

        def run_callbacks(solver, ev):
            original(solver, ev)
            if ev == event and solver.iteration == iteration:
                raise KeyboardInterrupt

        monkeypatch.setattr(Solver, "_run_callbacks", run_callbacks)


@pytest.mark.parametrize("event, iteration, epoch_saved", [("epoch_end", 4, 1),
                                                           ("batch_end", 6, 1)])
def test_interrupted_run_keeps_its_checkpoint_and_resumes_bit_for_bit(
        tmp_path, monkeypatch, capsys, event, iteration, epoch_saved):
    need_data(MNIST)
    assert train(tmp_path / "ref", "--epochs", "3") == 0
    with monkeypatch.context() as m:
        Interrupt(m, event, iteration)
        assert train(tmp_path / "run", "--epochs", "3") == 130
    assert "--resume" in capsys.readouterr().err
    ck = arrays(tmp_path / "run" / "checkpoint.npz")
    assert json.loads(str(ck["__state__"]))["epoch"] == epoch_saved
    assert not (tmp_path / "run" / "model.npz").exists()
    assert train(tmp_path / "run", "--epochs", "3", "--resume") == 0
    ref, got = arrays(tmp_path / "ref" / "model.npz"), arrays(tmp_path / "run" / "model.npz")
    assert sorted(ref) == sorted(got)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    s_ref = json.loads((tmp_path / "ref" / "summary.json").read_text())
    s_got = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s_got["history"] == s_ref["history"] and s_got["test_acc"] == s_ref["test_acc"]


def test_resume_refuses_other_settings_and_missing_checkpoint(tmp_path, capsys):
    need_data(MNIST)
    assert train(tmp_path / "run", "--epochs", "1") == 0
    assert train(tmp_path / "run", "--epochs", "1", "--lr", "2e-3", "--resume") == 2
    one_line_error(capsys, "--resume", "lr 0.001 -> 0.002")
    assert train(tmp_path / "empty", "--resume") == 2
    one_line_error(capsys, "no checkpoint.npz")
    # training longer from a finished run is a resume with more epochs
    assert train(tmp_path / "run", "--epochs", "2", "--resume") == 0
    assert len(json.loads((tmp_path / "run" / "summary.json").read_text())
               ["history"]["val_acc_history"]) == 2


@pytest.fixture
def no_training(monkeypatch):
    """Any data loading or training step fails the test: errors must come before them."""
    import convnet.training
    from convnet.solver import Solver

    def boom(*a, **k):
        raise AssertionError("reached data loading or training")

    monkeypatch.setattr(convnet.training, "load_dataset", boom)
    monkeypatch.setattr(Solver, "_step", boom)


@pytest.mark.parametrize("args, words", [
    (["--test-samples", "0"], ["--test-samples"]),
    (["--val-samples", "0"], ["--val-samples"]),
    (["--lr", "0"], ["--lr"]),
    (["--lr=-1e-3"], ["--lr"]),
    (["--lr", "nan"], ["--lr"]),
    (["--lr-decay=-0.5"], ["--lr-decay"]),
    (["--lr-decay", "inf"], ["--lr-decay"]),
    (["--reg=-1"], ["--reg"]),
    (["--filters", "0"], ["--filters"]),
    (["--filter-size", "0"], ["--filter-size"]),
    (["--hidden", "0"], ["--hidden"]),
    (["--hidden", "100,0"], ["--hidden"]),
    (["--hidden", "ten"], ["--hidden"]),
    (["--hidden", "100,50"], ["--hidden", "fc"]),
    (["--model", "fc", "--filters", "8"], ["--filters", "fc"]),
    (["--model", "mnistconv", "--hidden", "8"], ["--hidden", "mnistconv"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--resume", "--overwrite"], ["--resume", "--overwrite"]),
])
def test_bad_options_fail_before_anything_is_loaded(tmp_path, capsys, no_training, args, words):
    out = tmp_path / "out"
    assert main(["train", "mnist", *args, "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, "convnet train: error:", *words)
    assert not out.exists() or not any(out.iterdir())


def test_out_that_is_a_file_or_under_a_file(tmp_path, capsys, no_training):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", "mnist", "--out", str(f), "--quiet"]) == 2
    one_line_error(capsys, str(f), "is a file")
    assert main(["train", "mnist", "--out", str(f / "run"), "--quiet"]) == 2
    one_line_error(capsys, "under the file", str(f))
    assert main(["autoencoder", "train", "--out", str(f / "ae"), "--quiet"]) == 2
    one_line_error(capsys, "under the file")
    assert f.read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permissions do not stop root")
def test_unwritable_out(tmp_path, capsys, no_training):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["train", "mnist", "--out", str(ro), "--quiet"]) == 2
        one_line_error(capsys, "not writable")
    finally:
        ro.chmod(0o755)


def test_another_run_is_not_overwritten(tmp_path, capsys):
    need_data(MNIST)
    out = tmp_path / "run"
    assert train(out, "--epochs", "1") == 0
    before = (out / "model.npz").read_bytes()
    assert train(out, "--epochs", "1", "--seed", "1") == 2
    one_line_error(capsys, "holds another run", "--overwrite")
    assert (out / "model.npz").read_bytes() == before
    # the same finished run again reproduces it
    assert train(out, "--epochs", "1") == 0
    assert (out / "model.npz").read_bytes() == before
    assert train(out, "--epochs", "1", "--seed", "1", "--overwrite") == 0
    assert (out / "model.npz").read_bytes() != before
    assert json.loads((out / "run.json").read_text())["settings"]["seed"] == 1


def test_unfinished_run_points_to_resume(tmp_path, monkeypatch, capsys):
    need_data(MNIST)
    with monkeypatch.context() as m:
        Interrupt(m, "epoch_end", 4)
        assert train(tmp_path / "run", "--epochs", "2") == 130
    capsys.readouterr()
    assert train(tmp_path / "run", "--epochs", "2") == 2
    one_line_error(capsys, "unfinished run", "--resume")


@pytest.mark.parametrize("update, lr", [("adam", "1e6"), ("sgd", "10")])
def test_diverging_run_stops_with_one_line_and_keeps_the_checkpoint(tmp_path, capsys, update,
                                                                    lr):
    need_data(MNIST)
    out = tmp_path / "run"
    code = main(["train", "mnist", "--subset", "1000", "--update", update, "--lr", lr,
                 "--quiet", "--out", str(out)])
    assert code == 2
    err = one_line_error(capsys, "diverged", "Lower the learning rate", "checkpoint.npz")
    assert "starting level" in err or "not finite" in err or "loss is" in err
    state = json.loads(str(arrays(out / "checkpoint.npz")["__state__"]))
    assert state["iteration"] == 0  # the last good state: before the first step
    assert not (out / "model.npz").exists()
    # nothing was trained, so the folder may take the run with a sane rate at once
    assert train(out, "--epochs", "1") == 0


def test_hidden_list_architecture_and_input_space_are_recorded(tmp_path):
    need_data(MNIST)
    from convnet.model_spec import load_backend

    out = tmp_path / "fc"
    assert main(["train", "mnist", "--model", "fc", "--hidden", "32,16", *SMALL[:2], "--epochs",
                 "1", "--quiet", "--test-samples", "100", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["architecture"] == {"filters": None, "filter_size": None, "hidden": [32, 16]}
    assert summary["input_space"] == "mnist_0_1"
    model = Sequential.load(out / "model.npz")
    assert model.params["fc1/W"].shape == (784, 32) and model.params["fc2/W"].shape == (32, 16)
    assert model.input_space.name == "mnist_0_1"
    backend = load_backend(str(out / "model.npz"))
    assert backend.input_space.name == "mnist_0_1"
    white = np.full((1, 1, 28, 28), 255.0, np.float32)
    assert backend.input_space.to_model(white).max() == pytest.approx(1.0)

    out = tmp_path / "basic"
    assert train(out, "--epochs", "1", "--filter-size", "3") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["architecture"] == {"filters": 4, "filter_size": 3, "hidden": [16]}
    assert Sequential.load(out / "model.npz").params["conv1/W"].shape == (4, 1, 3, 3)


# -- autoencoder ----------------------------------------------------------------------------
AE = ["autoencoder", "train", "--kind", "dense", "--subset", "300", "--batch-size", "100",
      "--grid", "3", "--quiet"]


def test_autoencoder_checkpoints_resumes_and_refuses_another_run(tmp_path, monkeypatch,
                                                                  capsys):
    need_data(MNIST)
    assert main([*AE, "--epochs", "2", "--out", str(tmp_path / "ref")]) == 0
    with monkeypatch.context() as m:
        Interrupt(m, "epoch_end", 3)
        assert main([*AE, "--epochs", "2", "--out", str(tmp_path / "run")]) == 130
    assert (tmp_path / "run" / "checkpoint.npz").exists()
    assert not (tmp_path / "run" / "model.npz").exists()
    capsys.readouterr()
    assert main([*AE, "--epochs", "2", "--out", str(tmp_path / "run"), "--resume"]) == 0
    ref, got = arrays(tmp_path / "ref" / "model.npz"), arrays(tmp_path / "run" / "model.npz")
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["kind"] == "dense" and "mse" in summary
    capsys.readouterr()
    assert main([*AE, "--epochs", "1", "--seed", "3", "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, "holds another run", "--overwrite")


@pytest.mark.parametrize("args, words", [
    (["--lr=-1"], ["--lr"]), (["--lr", "nan"], ["--lr"]), (["--beta", "nan"], ["--beta"]),
    (["--epochs", "0"], ["--epochs"]), (["--latent", "0"], ["--latent"]),
    (["--grid", "0"], ["--grid"]), (["--grid", "100000"], ["--grid"]),
    (["--subset", "0"], ["--subset"]),
])
def test_autoencoder_bad_options_fail_first(tmp_path, capsys, monkeypatch, args, words):
    import convnet.generative

    monkeypatch.setattr(convnet.generative, "load_mnist_unit",
                        lambda *a, **k: pytest.fail("data loaded"))
    assert main(["autoencoder", "train", *args, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    one_line_error(capsys, *words)


@pytest.fixture
def ae_model(tmp_path):
    from convnet.models.autoencoder import Autoencoder

    path = tmp_path / "ae.npz"
    Autoencoder(latent_dim=2, seed=0).save(path)
    return path


@pytest.mark.parametrize("name, magic", [("grid.jpg", b"\xff\xd8\xff"),
                                         ("grid.jpeg", b"\xff\xd8\xff"),
                                         ("grid.png", b"\x89PNG"),
                                         ("grid.webp", b"RIFF")])
def test_sample_writes_the_format_its_extension_names(tmp_path, ae_model, name, magic):
    out = tmp_path / name
    assert main(["autoencoder", "sample", str(ae_model), "--grid", "3", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("args, words", [
    (["--out", "grid.xyz"], ["grid.xyz", "extension"]),
    (["--out", "grid"], ["extension"]),
    (["--radius", "nan"], ["--radius"]), (["--radius", "0"], ["--radius"]),
    (["--grid", "0"], ["--grid"]), (["--grid", "100000"], ["--grid"]),
])
def test_sample_bad_options_one_line(tmp_path, ae_model, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    assert main(["autoencoder", "sample", str(ae_model), *args]) == 2
    one_line_error(capsys, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae.npz"]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated"])
def test_sample_broken_model_file_is_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    assert main(["autoencoder", "sample", str(bad)]) == 2
    one_line_error(capsys, "bad.npz")
