"""A method whose image becomes NaN or Inf stops with a clear error naming the step, instead
of finishing "successfully" with a black picture.

The check lives in the one input-optimisation loop (convnet.inputgrad.optimize.render), so
every method built on it (class visualisation, features, DeepDream, style transfer) stops;
the commands add their own options to the message.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnet.backend import InputSpace, NumpyBackend
from convnet.cli import main
from convnet.errors import ConvnetError, NonFiniteError
from convnet.inputgrad.objectives import Channel
from convnet.inputgrad.optimize import optimize_input


def _backend(nan: bool = False) -> NumpyBackend:
    from convnet.models import Conv2D, Dense, Flatten, ReLU, Sequential

    model = Sequential([Conv2D(3, 4, 3, pad=1, name="conv1", seed=0), ReLU(name="relu1"),
                        Flatten(name="flat"), Dense(4 * 8 * 8, 3, name="fc", seed=1)],
                       input_shape=(3, 8, 8), loss="softmax", name="small")  # fmt: skip
    if nan:
        model.layers[0].params["W"][...] = np.nan
    return NumpyBackend(model, InputSpace.unit_rgb())


def _live_channel(b: NumpyBackend, x0: np.ndarray) -> Channel:
    """The relu1 channel most active on x0 (a dead one would never move the image)."""
    act = b.forward(x0, ["relu1"])["relu1"]
    return Channel("relu1", int(act.mean(axis=(0, 2, 3)).argmax()))


def test_the_loop_stops_at_the_step_that_overflows():
    b = _backend()
    x0 = np.random.default_rng(0).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(NonFiniteError, match=r"NaN or Inf at step 0 \(objective value"):
            optimize_input(b, _live_channel(b, x0), x0, steps=20, update="sgd", lr=1e300,
                           clip=False, progress=False)  # fmt: skip


def test_a_nan_model_is_named_as_the_cause():
    b = _backend(nan=True)
    x0 = np.full((1, 3, 8, 8), 0.5, np.float32)
    with np.errstate(invalid="ignore"):
        with pytest.raises(NonFiniteError, match="model's weights") as e:
            optimize_input(b, Channel("relu1", 0), x0, steps=3, progress=False)
    assert isinstance(e.value, ConvnetError)  # the CLI prints it in one line


def test_a_finite_run_is_untouched():
    b = _backend()
    x0 = np.random.default_rng(0).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    x, hist = optimize_input(b, _live_channel(b, x0), x0, steps=3, lr=1e-2, progress=False)
    assert np.all(np.isfinite(x)) and len(hist) == 3


def test_command_names_the_option_to_lower(tmp_path, capsys):
    b = _backend()
    path = b.model.save(tmp_path / "small.npz")
    out = tmp_path / "out"
    rc = main(["classviz", "1", "--model", str(path), "--lr", "1e300", "--steps", "5",
               "--no-progress", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "NaN or Inf at step" in err and "lower --lr" in err
    assert not out.exists()  # no black picture written
