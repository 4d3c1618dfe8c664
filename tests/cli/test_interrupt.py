"""Ctrl-C during a long input-optimisation run keeps the work done so far.

The commands watch every step (``convnet.commands._common.Watch``); the test makes the watch
raise KeyboardInterrupt at step 2, as a Ctrl-C arriving then would, and checks: exit status
130, one line on stderr naming the file, and a valid PNG ``*_partial.png`` holding the image
of step 2 (not the start image), written atomically (no temporary file left).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.cli import main
from convnet.commands import _common


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from convnet.models import Conv2D, MaxPool2D, ReLU, Sequential

    d = tmp_path_factory.mktemp("interrupt")
    model = Sequential(
        [Conv2D(3, 6, 3, pad=1, name="conv1", seed=0), ReLU(name="relu1"),
         MaxPool2D(2, 2, name="pool1"), Conv2D(6, 8, 3, pad=1, name="conv2", seed=1),
         ReLU(name="relu2")],
        name="fcn",
    )  # fmt: skip
    path = model.save(d / "fcn.npz")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(d / "img.png")
    return str(path), str(d / "img.png")


@pytest.fixture
def ctrl_c_at_step_2(monkeypatch):
    """Every Watch raises KeyboardInterrupt right after it has seen step 2."""
    seen = {}
    original = _common.Watch.__call__

    def call(self, step, x, value=None):
        original(self, step, x, value)
        if step == 2:
            seen["image"] = self.latest_pixels().copy()
            raise KeyboardInterrupt
        return False

    monkeypatch.setattr(_common.Watch, "__call__", call)
    return seen


def _commands(model: str, img: str) -> dict[str, list[str]]:
    common = ["--model", model, "--no-progress", "--steps", "10"]
    return {
        "dream": ["dream", img, "--layers", "conv2", "--variant", "simple", *common],
        "features": ["features", "conv2", "--channel", "1", "--size", "24", "--init", "random",
                     "--lr", "0.05", *common],
        "style": ["style", img, img, "--style-layers", "conv1,conv2", "--content-layer", "conv2",
                  "--size", "24", "--init", "noise", *common],
        "features_grid": ["features", "conv2", "--channels", "0,1", "--size", "24",
                          "--init", "random", *common],
    }  # fmt: skip


PARTIAL = {
    "dream": "dream_partial.png",
    "features": "features_conv2_channel_1_partial.png",
    "style": "styled_partial.png",
    "features_grid": "features_conv2_channels_partial_0.png",
}


@pytest.mark.parametrize("command", list(PARTIAL))
def test_ctrl_c_writes_the_partial_image_and_exits_130(command, files, ctrl_c_at_step_2,
                                                       tmp_path, capsys):  # fmt: skip
    model, img = files
    out = tmp_path / "out"
    rc = main([*_commands(model, img)[command], "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 130
    assert err.count("\n") == 1 and "interrupted after step 2" in err and "Traceback" not in err
    partial = out / PARTIAL[command]
    assert str(partial) in err
    written = sorted(p.name for p in out.iterdir())
    assert all("partial" in n for n in written), written  # no final outputs, no temp files
    saved = np.asarray(Image.open(partial), dtype=np.float64)
    want = np.clip(np.rint(ctrl_c_at_step_2["image"][0]), 0, 255).transpose(1, 2, 0)
    assert saved.shape == want.shape
    assert np.abs(saved - want).max() <= 1.0  # the image of step 2, as 8-bit


def test_ctrl_c_before_the_first_step_writes_nothing(files, tmp_path, capsys, monkeypatch):
    model, img = files

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("convnet.inputgrad.deepdream.deepdream", interrupt)
    out = tmp_path / "out"
    rc = main([*_commands(model, img)["dream"], "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 130 and err.count("\n") == 1 and "nothing written" in err
    assert not out.exists()
