"""``convnet explain`` and ``convnet activations`` on a small saved model (fast), and once on
the real SqueezeNet with the labrador."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data
from PIL import Image

from convnet.cli import main
from convnet.commands.explain import METHODS
from convnet.models import Conv2D, Dense, GlobalAvgPool, ReLU, Sequential


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    r = np.random.default_rng(0)
    model = Sequential(
        [Conv2D(3, 4, 3, pad=1, name="conv1", seed=r), ReLU(name="relu1"),
         Conv2D(4, 6, 3, pad=1, name="conv2", seed=r), ReLU(name="relu2"),
         GlobalAvgPool(name="gap"), Dense(6, 5, name="fc", seed=r)],
        input_shape=(3, 24, 24), name="small",
    )  # fmt: skip
    model.params["conv2/b"] = np.full(6, 0.1, dtype=np.float32)
    npz = model.save(d / "small.npz")
    img = d / "img.png"
    Image.fromarray(r.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(img)
    return str(npz), str(img), d


def one_error_line(capsys, match: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


@pytest.mark.parametrize("method", METHODS)
def test_explain_writes_heatmap_and_overlay(files, method, capsys):
    npz, img, d = files
    out = d / f"out_{method}"
    rc = main(["explain", img, "--method", method, "--model", npz, "--size", "24",
               "--patch", "8", "--stride", "4", "--steps", "8", "--out", str(out)])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "top classes: " in text and text.count(", ") >= 4  # five classes
    stem = method.replace("+", "p")
    kinds = ["heatmap", "overlay"]
    if method in ("guided", "ig", "guided-gradcam"):
        kinds.append("gradient")
    for kind in kinds:
        a = np.asarray(Image.open(out / f"{stem}_{kind}.png"))
        assert a.shape == (24, 24, 3) and a.dtype == np.uint8
    if method == "ig":
        assert "completeness error" in text
    if method.startswith("gradcam"):
        assert "layer: relu2" in text  # the default: the last feature map


def test_explain_smooth_and_class(files, capsys):
    npz, img, d = files
    rc = main(["explain", img, "--method", "guided-gradcam", "--smooth", "3", "--class", "2",
               "--layer", "relu1", "--model", npz, "--size", "24",
               "--out", str(d / "s")])  # fmt: skip
    assert rc == 0
    assert "explaining class 2 " in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--class", "7"], "out of range"),
        (["--layer", "nosuch"], "unknown layer 'nosuch'"),
        (["--layer", "gap"], "feature-map layer"),
        (["--layer", "fc"], "before the output layer"),
        (["--method", "occlusion", "--smooth", "4"], "--smooth applies"),
        (["--size", "32"], None),  # size-free model: any size works
    ],
)
def test_explain_bad_input_is_one_line_exit_2(files, capsys, extra, match):
    npz, img, d = files
    rc = main(["explain", img, "--model", npz, "--size", "24", "--out", str(d / "bad"), *extra])
    if match is None:
        assert rc == 0
        return
    assert rc == 2
    one_error_line(capsys, match)


def test_explain_missing_files(files, capsys):
    npz, img, d = files
    assert main(["explain", str(d / "none.png"), "--model", npz]) == 2
    one_error_line(capsys, "does not exist")
    assert main(["explain", img, "--model", str(d / "none.npz")]) == 2
    one_error_line(capsys, "does not exist")


def test_activations_grid(files, capsys):
    npz, img, d = files
    out = d / "act.png"
    rc = main(["activations", img, "--layer", "relu1", "--model", npz, "--size", "24",
               "--tile", "48", "--sort", "--out", str(out)])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "relu1: 4 channels of 24x24" in text
    a = np.asarray(Image.open(out))
    assert a.shape == (2 * 48 + 2, 2 * 48 + 2, 3)  # 2x2 tiles of 24x24 enlarged twice, gap 2
    assert (a[48:50] == 255).all()  # the white gap between tile rows
    assert main(["activations", img, "--layer", "gap", "--model", npz, "--out", str(out)]) == 2
    one_error_line(capsys, "not feature maps")


def test_explain_squeezenet_labrador(tmp_path, capsys):
    img = need_data("images/YellowLabradorLooking_new.jpg")
    need_data("squeezenet/squeezenet1.1_fp16_weights.npz")
    rc = main(["explain", str(img), "--method", "gradcam", "--layer", "fire9", "--out",
               str(tmp_path)])  # fmt: skip
    assert rc == 0
    assert "top classes: 208 Labrador_retriever 0.86" in capsys.readouterr().out
    heat = np.asarray(Image.open(tmp_path / "gradcam_heatmap.png"))
    assert heat.shape == (227, 227, 3)
