"""``convnet saliency | classviz | fool`` end to end on a small saved model (fast)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from convnet.models import MnistConvNet

    d = tmp_path_factory.mktemp("cli")
    model_path = d / "mnist.npz"
    MnistConvNet(seed=0).save(model_path)
    img = np.zeros((40, 30), np.uint8)
    img[8:32, 12:18] = 255  # a "1", resized to 28x28 by the command
    Image.fromarray(img).save(d / "one.png")
    return d, str(model_path), str(d / "one.png")


def test_saliency_cli(files, capsys):
    d, model, img = files
    out = d / "sal"
    assert main(["saliency", img, "--model", model, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "prediction:" in text and "saliency for class" in text
    sal = np.asarray(Image.open(out / "saliency.png"))
    assert sal.shape == (28, 28) and sal.max() == 255
    assert np.asarray(Image.open(out / "input.png")).shape == (28, 28)


def test_fool_cli_fgsm_and_target(files, capsys):
    d, model, img = files
    out = d / "fool"
    assert main(["fool", img, "--eps", "8", "--model", model, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "L-inf 8.00" in text and "saved 8-bit PNG" in text
    for f in ("input.png", "adversarial.png", "difference.png"):
        assert (out / f).is_file()
    a = np.asarray(Image.open(out / "adversarial.png"), dtype=float)
    b = np.asarray(Image.open(out / "input.png"), dtype=float)
    assert np.abs(a - b).max() == 8
    assert main(["fool", img, "--target", "3", "--model", model, "--out", str(out)]) == 0
    assert "target 3" in capsys.readouterr().out


def test_classviz_cli_and_errors(files, capsys):
    d, model, img = files
    args = ["classviz", "7", "--steps", "3", "--no-progress", "--model", model, "--out", str(d)]
    assert main(args) == 0
    assert (d / "class_7.png").is_file()
    assert main(["classviz", "10", "--model", model]) == 2
    assert "class index 10 out of range [0, 10)" in capsys.readouterr().err
    assert main(["fool", img, "--eps", "1", "--model", "nope.h5"]) == 2
    assert "--model must be" in capsys.readouterr().err
