"""``--model`` means the same in every subcommand that looks inside a model.

Each of saliency, classviz, fool, features, dream and style runs in-process on a small saved
``Sequential`` (``--model PATH.npz``) and on SqueezeNet (``--model squeezenet``, random
weights so that no data file is needed), with tiny images and one or two steps, and rejects
a bad spec with one line on stderr and exit status 2.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convnet.cli import build_parser, main
from convnet.model_spec import load_backend, model_family

COMMANDS = ("saliency", "classviz", "fool", "features", "dream", "style")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from convnet.models import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential

    d = tmp_path_factory.mktemp("model_option")
    model = Sequential(
        [
            Conv2D(3, 4, 3, pad=1, name="conv1", seed=0),
            ReLU(name="relu1"),
            MaxPool2D(2, 2, name="pool1"),
            Flatten(name="flat"),
            Dense(4 * 8 * 8, 5, name="fc", seed=1),
        ],
        input_shape=(3, 16, 16),
        loss="softmax",
        name="tiny",
    )
    model_path = model.save(d / "tiny.npz")
    rng = np.random.default_rng(0)
    img = d / "img.png"
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(img)
    return d, str(model_path), str(img)


def _args(command: str, img: str, small: bool) -> list[str]:
    """Arguments of ``command`` for a fast run; ``small``: the tiny model (layer conv1)."""
    layer = "conv1" if small else "fire2"
    size = "16" if small else "48"
    return {
        "saliency": ["saliency", img],
        "classviz": ["classviz", "1", "--steps", "2", "--size", size, "--no-progress"],
        "fool": ["fool", img, "--eps", "2"],
        "features": ["features", layer, "--channel", "0", "--size", size, "--steps", "2",
                     "--init", "random", "--no-progress"],
        "dream": ["dream", img, "--layers", layer, "--variant", "simple", "--steps", "2",
                  "--size", size, "--no-progress"],
        "style": ["style", img, img, "--style-layers", layer, "--content-layer", layer,
                  "--size", size, "--steps", "2", "--no-progress"],
    }[command]  # fmt: skip


OUTPUTS = {
    "saliency": "saliency.png",
    "classviz": "class_1.png",
    "fool": "adversarial.png",
    "features": None,  # named after the layer
    "dream": "dream.png",
    "style": "styled.png",
}


@pytest.mark.parametrize("command", COMMANDS)
def test_npz_model(files, command, capsys, tmp_path):
    _, model, img = files
    rc = main([*_args(command, img, small=True), "--model", model, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    name = OUTPUTS[command] or "features_conv1_channel_0.png"
    out = np.asarray(Image.open(tmp_path / name))
    assert out.shape[:2] == (16, 16)  # the model's size or --size, from the tiny model
    assert f"wrote {tmp_path / name}" in captured.out


@pytest.mark.parametrize("command", COMMANDS)
def test_squeezenet_model(files, command, capsys, tmp_path):
    _, _, img = files
    args = [*_args(command, img, small=False), "--model", "squeezenet", "--weights", "none",
            "--out", str(tmp_path)]  # fmt: skip
    rc = main(args)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    name = OUTPUTS[command] or "features_fire2_channel_0.png"
    assert (tmp_path / name).is_file()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("spec", "extra", "message"),
    [
        ("nope.h5", [], "--model must be 'squeezenet', a .npz model file"),
        ("keras:", [], "--model must be"),
        ("squeezenet", ["--alpha", "0.5"], "alpha applies to keras:mobilenet"),
        ("squeezenet", ["--input-space", "bogus"], "unknown input space 'bogus'"),
    ],
)
def test_bad_model_spec_is_one_line_and_exit_2(files, command, spec, extra, message, capsys,
                                               tmp_path):  # fmt: skip
    _, _, img = files
    args = _args(command, img, small=False)
    if command == "dream":
        args = [a for a in args if a not in ("--layers", "fire2")]  # default layers path too
    rc = main([*args, "--model", spec, *extra, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"convnet {command}: error: ")
    assert message in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_npz_model_rejects_weights(files, capsys):
    _, model, img = files
    assert main(["saliency", img, "--model", model, "--weights", "other.h5"]) == 2
    assert "weights do not apply" in capsys.readouterr().err


def test_missing_npz_file(capsys, tmp_path):
    rc = main(["features", "conv1", "--model", str(tmp_path / "gone.npz"), "--steps", "1"])
    assert rc == 2
    assert f"model file {tmp_path / 'gone.npz'} does not exist" in capsys.readouterr().err


def test_include_top_only_on_feature_commands():
    parser = build_parser()
    for command in ("features", "dream", "style"):
        argv = [command, "a", "b"] if command == "style" else [command, "a"]
        assert parser.parse_args(argv).include_top is False
        assert parser.parse_args([*argv, "--include-top"]).include_top is True
        assert parser.parse_args([*argv, "--no-top"]).include_top is False
    for command in ("saliency", "fool", "classviz"):
        argv = {"classviz": [command, "1"], "fool": [command, "a", "--eps", "1"]}.get(
            command, [command, "a"]
        )
        assert parser.parse_args(argv).include_top is True  # class scores need the top
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--no-top"])


def test_every_model_command_has_the_same_model_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in COMMANDS:
        opts = {o for a in sub.choices[command]._actions for o in a.option_strings}
        assert {"--model", "--alpha", "--weights", "--input-space", "--out"} <= opts, command


def test_model_family_and_library_loader(files):
    _, model, _ = files
    assert model_family("keras:vgg19") == "vgg19"
    assert model_family("squeezenet") == "squeezenet"
    assert model_family(model) == "npz"
    with pytest.raises(ValueError, match="--model must be"):
        model_family("resnet")
    backend = load_backend(model)
    assert backend.input_space.channels == 3 and backend.num_classes == 5
    # the old import path still works
    from convnet.inputgrad.backend import load_backend as old

    assert old is load_backend


@pytest.mark.tf
@pytest.mark.parametrize("command", ["saliency", "features"])
def test_keras_model_with_alpha_and_weights(files, command, capsys, tmp_path):
    """keras:NAME with --alpha and --weights none (random, no download) in both kinds of
    command: saliency loads the classifier (224x224), features loads no top (any size)."""
    pytest.importorskip("tensorflow")
    _, _, img = files
    args = {
        "saliency": ["saliency", img],
        "features": ["features", "conv_pw_1_relu", "--channel", "0", "--size", "32",
                     "--steps", "1", "--init", "random", "--no-progress"],
    }[command]  # fmt: skip
    rc = main([*args, "--model", "keras:mobilenet", "--alpha", "0.25", "--weights", "none",
               "--out", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    if command == "saliency":
        assert np.asarray(Image.open(tmp_path / "saliency.png")).shape == (224, 224)
    else:
        assert np.asarray(Image.open(tmp_path / "features_conv_pw_1_relu_channel_0.png")).shape[
            :2
        ] == (32, 32)
