"""Models users bring: ``--model keras-file:PATH`` (.keras / .h5) and the Keras applications
with random weights, through the command line.

The Keras file is the ``to_keras`` twin of the small test network (``toymodel.small_net``),
saved with ``model.save``: as built (input fixed at 24x24, like most classifiers users
train) and rebuilt on an input of any size. Loaded back it must give the NumPy model's
scores, and every command that looks inside a model must run on it. Budget: about 30 s
after the TF import (tiny images, one or two steps; MobileNet 0.25 at 224 px).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from toymodel import small_net

from convnet.backend import InputSpace, NumpyBackend
from convnet.cli import main
from convnet.model_spec import load_backend, model_family

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from convnet.interop._tf import import_keras
    from convnet.interop.keras import to_keras

    d = tmp_path_factory.mktemp("keras_file")
    model = small_net()
    twin = to_keras(model)
    twin.save(d / "twin.keras")
    twin.save(d / "twin.h5")
    # the same layers on an input of any size (the network ends in a global pool)
    keras = import_keras()
    h = inp = keras.Input((None, None, 3))
    for layer in twin.layers[1:]:
        h = layer(h)
    keras.Model(inp, h).save(d / "twin_any.keras")
    rng = np.random.default_rng(0)
    img = d / "img.png"
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(img)
    return d, model, img


def test_keras_file_loads_the_same_model(files):
    d, model, _ = files
    assert model_family(f"keras-file:{d / 'twin.keras'}") == "keras-file"
    ref = NumpyBackend(model, InputSpace.torch_imagenet())
    x = InputSpace.torch_imagenet().to_model(
        np.random.default_rng(1).uniform(0, 255, (2, 3, 24, 24)).astype(np.float32)
    )
    for name in ("twin.keras", "twin.h5", "twin_any.keras"):
        b = load_backend(f"keras-file:{d / name}", input_space="torch_imagenet")
        assert b.input_space.name == "torch" and not b.output_is_probs
        assert b.input_shape == (None if name == "twin_any.keras" else (3, 24, 24))
        assert b.num_classes == 5
        # float32 twin, sums in another order (measured 2e-7)
        np.testing.assert_allclose(b.scores(x), ref.scores(x), rtol=1e-4, atol=1e-5)
    # a file records no preprocessing: RGB in [0, 1] unless --input-space says otherwise
    assert load_backend(f"keras-file:{d / 'twin.keras'}").input_space.name == "unit_rgb"


def test_softmax_output_and_grey_default(tmp_path):
    pytest.importorskip("tensorflow")
    from convnet.interop._tf import import_keras

    keras = import_keras()
    for last in ("activation", "layer"):
        inp = keras.Input((8, 8, 1))
        h = keras.layers.Flatten()(inp)
        if last == "activation":
            out = keras.layers.Dense(3, activation="softmax")(h)
        else:
            out = keras.layers.Softmax()(keras.layers.Dense(3)(h))
        path = tmp_path / f"grey_{last}.keras"
        keras.Model(inp, out).save(path)
        b = load_backend(f"keras-file:{path}")
        assert b.output_is_probs, last  # attacks then work on log-probabilities
        assert b.input_space.name == "mnist_0_1" and b.input_shape == (1, 8, 8)
        p = b.predict_proba(np.zeros((1, 1, 8, 8), np.float32))
        np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)


def _args(command: str, img: str) -> list[str]:
    return {
        "saliency": ["saliency", img],
        "classviz": ["classviz", "1", "--steps", "2", "--size", "24", "--no-progress"],
        "fool": ["fool", img, "--eps", "2"],
        "deepfool": ["fool", img, "--attack", "deepfool"],
        "dream": ["dream", img, "--layers", "relu2", "--variant", "simple", "--steps", "2",
                  "--size", "32", "--no-progress"],
        "zoom": ["dream", img, "--layers", "relu2", "--zoom", "1.25", "--zoom-steps", "2",
                 "--steps", "2", "--size", "32", "--no-progress"],
    }[command]  # fmt: skip


OUTPUTS = {"saliency": "saliency.png", "classviz": "class_1.png", "fool": "adversarial.png",
           "deepfool": "adversarial.png", "dream": "dream.png", "zoom": "zoom_1.png"}  # fmt: skip


# every command on the .keras file; the .h5 file is the same model: two commands suffice
CASES = [(c, ".keras") for c in OUTPUTS] + [("saliency", ".h5"), ("fool", ".h5")]


@pytest.mark.parametrize(("command", "suffix"), CASES)
def test_every_command_runs_on_a_keras_file(files, command, suffix, capsys, tmp_path):
    d, _, img = files
    name = "twin_any.keras" if command == "zoom" else "twin" + suffix
    spec = f"keras-file:{d / name}"
    rc = main([*_args(command, str(img)), "--model", spec, "--input-space", "torch_imagenet",
               "--out", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert (tmp_path / OUTPUTS[command]).is_file()
    if command == "zoom":
        # two rounds: the second is 1.25 times the first (32 px on the longer side)
        assert np.asarray(Image.open(tmp_path / "zoom_1.png")).shape[1] == 40
    if command in ("fool", "deepfool"):
        assert "result: " in captured.out


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: d / "gone.keras", [], "does not exist"),
        (lambda d: d / "twin.keras", ["--weights", "none"], "weights do not apply"),
        (lambda d: d / "model.npy", [], "must end in .keras, .h5, .hdf5"),
        (lambda d: d / "broken.keras", [], "cannot load the Keras model"),
        (lambda d: d / "twin.keras", ["zoom"], "--zoom enlarges the image, but"),
    ],
)
def test_bad_keras_file_is_one_line_and_exit_2(files, make, extra, message, capsys):
    d, _, img = files
    (d / "broken.keras").write_bytes(b"not a zip file")
    (d / "model.npy").write_bytes(b"")
    args = ["saliency", str(img)]
    if extra == ["zoom"]:  # a model with a fixed input size cannot be zoomed into
        args, extra = _args("zoom", str(img)), []
    rc = main([*args, "--model", f"keras-file:{make(d)}", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("command", ["fool", "zoom"])
def test_keras_application_without_weights(files, command, capsys, tmp_path):
    """keras:mobilenet with random weights (no download): DeepFool through its classifier
    (224 px), and the zoom dream without the top (any size)."""
    _, _, img = files
    args = {
        "fool": ["fool", str(img), "--attack", "deepfool", "--max-steps", "3"],
        "zoom": ["dream", str(img), "--layers", "conv_pw_3_relu", "--zoom", "1.2",
                 "--zoom-steps", "2", "--steps", "1", "--size", "48", "--no-progress"],
    }[command]  # fmt: skip
    rc = main([*args, "--model", "keras:mobilenet", "--alpha", "0.25", "--weights", "none",
               "--out", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    if command == "fool":
        assert np.asarray(Image.open(tmp_path / "adversarial.png")).shape == (224, 224, 3)
        assert "result: " in captured.out
    else:
        assert (tmp_path / "zoom_1.png").is_file()
