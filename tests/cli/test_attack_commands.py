"""``convnet fool --attack deepfool|cw``, what ``fool`` calls a success, and ``convnet dream
--zoom``, end to end on small models (NumPy only, fast)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from convnet.models import MnistConvNet

    d = tmp_path_factory.mktemp("attack_cli")
    model_path = d / "mnist.npz"
    MnistConvNet(seed=0).save(model_path)
    img = np.zeros((40, 30), np.uint8)
    img[8:32, 12:18] = 255
    Image.fromarray(img).save(d / "one.png")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / "rgb.png")
    return d, str(model_path), str(d / "one.png"), str(d / "rgb.png")


def _top1(text: str) -> int:
    return int(text.split("clean prediction: ")[1].split()[0])


@pytest.mark.parametrize("attack", ["deepfool", "cw"])
def test_minimal_attacks_report_their_norms(files, attack, capsys, tmp_path):
    _, model, img, _ = files
    extra = ["--cw-steps", "30", "--search-steps", "3"] if attack == "cw" else []
    rc = main(["fool", img, "--attack", attack, *extra, "--model", model, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "result: success, the top-1 changed from" in out
    summary = next(line for line in out.splitlines() if line.startswith("[0] away from"))
    l2 = float(summary.split("L2 ")[1].split()[0])
    assert 0 < l2 < 28 * 28 * 255  # a real, non-zero change, in pixel levels
    # A minimal change can be smaller than one 8-bit level: the command says when saving
    # the PNG undid it (likely here: the random model's top two classes are close).
    adv_top1 = int(summary.split(" -> ")[1].split()[0])
    png_top1 = int(out.split("saved 8-bit PNG: ")[1].split()[0])
    assert ("rounding to 8-bit levels undid the attack" in out) == (png_top1 != adv_top1)


def test_attacking_a_class_the_model_never_predicted(files, capsys, tmp_path):
    """The police-van case: the user attacks a class that is not the clean top-1."""
    _, model, img, _ = files
    assert main(["fool", img, "--eps", "0.01", "--model", model, "--out", str(tmp_path)]) == 0
    top = _top1(capsys.readouterr().out)
    other = (top + 1) % 10
    rc = main(["fool", img, "--eps", "0.01", "--label", str(other), "--model", model,
               "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert f"note: the clean top-1 is {top}, not {other}" in out
    assert "success=False" in out and "success=True" not in out
    assert f"result: no success, the top-1 is still {top}; the model never predicted {other}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attack", "fgsm"], "--attack fgsm needs --eps"),
        (["--attack", "ifgsm"], "--attack ifgsm needs --eps"),
        (["--attack", "deepfool", "--eps", "1"], "--eps does not apply to --attack deepfool"),
        (["--attack", "deepfool", "--target", "3"], "--attack deepfool is untargeted"),
        ([], "one of --eps, --target or --attack deepfool|cw is required"),
    ],
)
def test_fool_option_errors(files, args, message, capsys, tmp_path):
    _, model, img, _ = files
    rc = main(["fool", img, *args, "--model", model, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_cw_targeted_and_ifgsm_from_the_command_line(files, capsys, tmp_path):
    _, model, img, _ = files
    rc = main(["fool", img, "--attack", "cw", "--target", "3", "--cw-steps", "50",
               "--model", model, "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "target 3" in out and "result: " in out
    rc = main(["fool", img, "--attack", "ifgsm", "--eps", "4", "--model", model,
               "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "L-inf 4.00" in out and "5 step(s)" in out  # Kurakin: ceil(min(8, 5))


def test_dream_zoom(files, capsys, tmp_path):
    _, _, _, img = files
    rc = main(["dream", img, "--zoom", "1.5", "--zoom-steps", "3", "--steps", "2", "--size",
               "48", "--layers", "fire2", "--max-shift", "4", "--model", "squeezenet",
               "--weights", "none", "--no-progress", "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    sizes = [np.asarray(Image.open(tmp_path / f"zoom_{k}.png")).shape[:2] for k in range(3)]
    assert sizes == [(40, 48), (60, 72), (90, 108)]  # 48 px, then x1.5 per round
    assert np.asarray(Image.open(tmp_path / "dream.png")).shape[:2] == (90, 108)
    assert "zoom dream x1.5, 3 rounds on fire2: 90x108" in out


def test_dream_zoom_errors(files, capsys, tmp_path):
    _, model, img, rgb = files
    base = ["dream", rgb, "--layers", "fire2", "--model", "squeezenet", "--weights", "none",
            "--size", "48", "--steps", "1", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main([*base, "--zoom", "1.0"]) == 2
    assert "argument --zoom: must be a finite number > 1" in capsys.readouterr().err
    assert main([*base, "--zoom", "1.3", "--zoom-steps", "0"]) == 2
    assert "argument --zoom-steps: must be an integer >= 1" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
