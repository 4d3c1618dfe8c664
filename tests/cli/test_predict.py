"""``convnet predict``: top classes per image, MNIST-style digits, the model's input space."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data
from PIL import Image

from convnet.cli import main

MNIST = "mnist/train-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    """A small BasicConvNet trained by ``convnet train`` on 2000 digits ([0, 1] inputs)."""
    need_data(MNIST)
    out = tmp_path_factory.mktemp("mnist")
    assert main(["train", "mnist", "--subset", "2000", "--filters", "8", "--hidden", "32",
                 "--batch-size", "25", "--lr", "2e-3", "--val-samples", "100",
                 "--test-samples", "100", "--quiet", "--out", str(out)]) == 0
    return out / "model.npz"


@pytest.fixture(scope="module")
def paper_digits(tmp_path_factory):
    """20 test digits as photos of dark ink on white paper: 4x larger, off-centre, noisy."""
    from convnet.data import load_mnist

    data = load_mnist()
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(20):
        digit = Image.fromarray(data["X_test"][i].reshape(28, 28).astype(np.uint8))
        big = np.asarray(digit.resize((112, 112), Image.Resampling.BILINEAR), np.float64)
        page = np.full((180, 220), 235.0)
        page[30:142, 70:182] -= big * 0.85  # grey-white paper, dark ink
        page += rng.normal(0, 4, page.shape)
        path = folder / f"digit{i}.png"
        Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(path)
        paths.append(str(path))
        labels.append(int(data["y_test"][i]))
    return paths, labels


def predicted(out: str) -> list[int]:
    return [int(line.split(": ", 1)[1].split()[0]) for line in out.strip().splitlines()]


def test_predict_digits_on_paper(digit_model, paper_digits, capsys):
    paths, labels = paper_digits
    assert main(["predict", *paths, "--model", str(digit_model), "--invert", "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 20 and all(len(line.split(", ")) == 3 for line in lines)
    assert lines[0].startswith(paths[0] + ": ")
    inverted = sum(p == y for p, y in zip(predicted("\n".join(lines)), labels, strict=True))
    assert inverted >= 16, inverted
    # without a flag the light border decides to invert: the same answers
    assert main(["predict", *paths, "--model", str(digit_model)]) == 0
    assert predicted(capsys.readouterr().out) == predicted("\n".join(lines))
    # forbidding the inversion feeds the paper as the digit: far worse
    assert main(["predict", *paths, "--model", str(digit_model), "--no-invert"]) == 0
    kept = sum(p == y for p, y in zip(predicted(capsys.readouterr().out), labels, strict=True))
    assert kept < inverted


def test_predict_feeds_the_recorded_input_space(digit_model, paper_digits, capsys):
    """The model was trained on [0, 1]; the old default for grey .npz files was [-1, 1]."""
    paths, labels = paper_digits
    args = ["predict", *paths, "--model", str(digit_model), "--invert"]
    assert main(args) == 0
    right = sum(p == y for p, y in zip(predicted(capsys.readouterr().out), labels, strict=True))
    assert main([*args, "--input-space", "mnist_minus1_1"]) == 0
    wrong = sum(p == y for p, y in zip(predicted(capsys.readouterr().out), labels, strict=True))
    assert wrong < right


def test_predict_rgb_model(capsys):
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    car = need_data("images/car.png")
    assert main(["predict", str(car), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{car}: 817 sports_car") and line.count(", ") == 1


@pytest.mark.parametrize("make, args, words", [
    (None, [], ["nope.png", "does not exist"]),
    (b"not an image", [], ["bad.png", "image"]),
    (b"", ["--top", "0"], ["--top"]),
])
def test_predict_errors_are_one_line(tmp_path, capsys, make, args, words):
    from convnet.models import BasicConvNet

    model = BasicConvNet(num_filters=2, hidden_dim=4)
    model.input_space = "mnist_0_1"
    model.save(tmp_path / "m.npz")
    image = tmp_path / ("nope.png" if make is None else "bad.png")
    if make is not None:
        image.write_bytes(make)
    assert main(["predict", str(image), "--model", str(tmp_path / "m.npz"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "convnet predict: error:" in err
    for w in words:
        assert w in err, err
