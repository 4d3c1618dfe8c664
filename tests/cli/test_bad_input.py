"""Every subcommand against every class of bad input: one line on stderr, exit 2, no output.

Classes of bad input: a missing, empty, truncated or wrong-type file; zero, negative, NaN,
infinite or huge numbers; unknown names (layers, models, datasets); output paths that are
files, lie under a file, or are not writable; runs too large for the memory limit; models
whose numbers are NaN (the method's image becomes non-finite).

For each case the test asserts: exit status 2; exactly one line on stderr, starting with
``convnet <command>``, naming the option or file (and, where the message carries one, the
fix); no traceback; and no file written (the ``--out`` folder is not created, an output
file that existed is unchanged). Commands run in-process on a 16x16 model saved to .npz (or
SqueezeNet with random weights where only a size-free model will do), so no weights or
datasets are needed and the whole file runs in seconds.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convnet.cli import build_parser, main

# Arguments of a fast, valid run of each command; a case appends options (argparse keeps the
# last of a repeated option, so "--steps 0" appended overrides "--steps 2").
BASE = {
    "saliency": ["saliency", "{img}", "--model", "{tiny}"],
    "classviz": ["classviz", "{class}", "--steps", "2", "--no-progress", "--model", "{tiny}"],
    "fool": ["fool", "{img}", "--eps", "2", "--model", "{tiny}"],
    "features": ["features", "{layer}", "--channel", "0", "--size", "16", "--steps", "2",
                 "--no-progress", "--model", "{tiny}"],
    "dream": ["dream", "{img}", "--layers", "conv1", "--variant", "simple", "--steps", "2",
              "--no-progress", "--model", "{tiny}"],
    "style": ["style", "{img}", "{img}", "--style-layers", "conv1", "--content-layer", "conv1",
              "--steps", "2", "--no-progress", "--model", "{tiny}"],
    "autoencoder sample": ["autoencoder", "sample", "{vae}", "--grid", "3"],
    "autoencoder train": ["autoencoder", "train", "--epochs", "1", "--subset", "20", "--quiet"],
    "train": ["train", "{dataset}", "--epochs", "1", "--subset", "20", "--quiet"],
    "check": ["check", "--only", "relu"],
    "explain": ["explain", "{img}", "--model", "{tiny}"],
    "activations": ["activations", "{img}", "--layer", "conv1", "--model", "{tiny}"],
    "grade": ["grade", "{badpy}", "--no-progress"],
    "exercise start": ["exercise", "start", "{exercise}"],
    "exercise list": ["exercise", "list"],
    "compare": ["compare", "--model", "{tiny}"],
    "predict": ["predict", "{img}", "--model", "{tiny}"],
}  # fmt: skip
# Commands whose output goes to a folder given by --out (the case's "{out}" unless it says).
OUT_FOLDER = {"saliency", "classviz", "fool", "features", "dream", "style", "train",
              "autoencoder train", "explain"}  # fmt: skip
# Commands whose output is one file given by --out.
OUT_FILE = {"autoencoder sample", "activations"}
IMAGE_COMMANDS = ("saliency", "classviz", "fool", "features", "dream", "style")
MODEL_COMMANDS = (*IMAGE_COMMANDS, "compare")
SQZ = ["--model", "squeezenet", "--weights", "none"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its pixels are never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))  # fmt: skip


def _tiny_model():
    from convnet.models import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential

    return Sequential(
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


def _with_config(src: Path, dst: Path, edit) -> str:
    """Copy the .npz ``src`` to ``dst`` with its ``__config__`` string passed through ``edit``."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["__config__"] = np.array(edit(str(arrays["__config__"])))
    np.savez(dst, **arrays)
    return str(dst)


def _drop_filters(text: str) -> str:
    config = json.loads(text)
    del config["layers"][0]["filters"]  # Conv2D without its number of filters
    return json.dumps(config)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    from convnet.models.autoencoder import VAE

    d = tmp_path_factory.mktemp("bad_input")
    p: dict[str, str] = {}
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(d / "img.png")
    p["img"] = str(d / "img.png")
    model = _tiny_model()
    p["tiny"] = str(model.save(d / "tiny.npz"))
    with np.load(d / "tiny.npz", allow_pickle=False) as z:  # a model that diverged in training
        arrays = {k: (z[k] if k == "__config__" else np.full_like(z[k], np.nan)) for k in z.files}
    np.savez(d / "nan.npz", **arrays)
    p["nan"] = str(d / "nan.npz")
    p["nofilters"] = _with_config(d / "tiny.npz", d / "nofilters.npz", _drop_filters)
    p["badjson"] = _with_config(d / "tiny.npz", d / "badjson.npz", lambda t: t[:-7])
    data = (d / "tiny.npz").read_bytes()
    (d / "trunc.npz").write_bytes(data[: len(data) // 2])
    p["trunc"] = str(d / "trunc.npz")
    (d / "empty.npz").write_bytes(b"")
    p["empty"] = str(d / "empty.npz")
    np.save(d / "pickle.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    os.replace(d / "pickle.npy", d / "pickle.npz")
    p["pickle"] = str(d / "pickle.npz")
    (d / "notimg.png").write_text("this is not an image\n")
    p["notimg"] = str(d / "notimg.png")
    png = (d / "img.png").read_bytes()
    (d / "trunc.png").write_bytes(png[: len(png) // 2])
    p["truncimg"] = str(d / "trunc.png")
    (d / "emptyimg.png").write_bytes(b"")
    p["emptyimg"] = str(d / "emptyimg.png")
    (d / "big.png").write_bytes(_png_header(9000, 8000))  # 72 MP: over our 64 MP limit
    p["big"] = str(d / "big.png")
    (d / "bomb.png").write_bytes(_png_header(30000, 30000))  # Pillow's decompression bomb
    p["bomb"] = str(d / "bomb.png")
    (d / "bad.py").write_text("def conv_forward_naive(:\n")
    p["badpy"] = str(d / "bad.py")
    p["vae"] = str(VAE(latent_dim=2, seed=0).save(d / "vae.npz"))
    p["vae3"] = str(VAE(latent_dim=3, seed=0).save(d / "vae3.npz"))
    (d / "afile").write_text("a file, not a folder\n")
    p["afile"] = str(d / "afile")
    p["missing"] = str(d / "missing")
    p["dir"] = str(d)
    return p


# Values of the positional placeholders of BASE; a case changes one with "@NAME=VALUE".
POSITIONAL = {"class": "1", "layer": "conv1", "dataset": "mnist", "exercise": "fc_layers"}


def _argv(command: str, extra: list[str], paths: dict[str, str], out: Path) -> list[str]:
    subs = {**paths, **POSITIONAL, "out": str(out)}
    subs.update(t[1:].split("=", 1) for t in extra if t.startswith("@"))
    subs = {k: v.format(**paths) for k, v in subs.items()}
    extra = [t for t in extra if not t.startswith("@")]
    argv = [a.format(**subs) for a in BASE[command] + extra]
    if command in OUT_FOLDER and "--out" not in extra:
        argv += ["--out", str(out)]
    if command in OUT_FILE and "--out" not in extra:
        argv += ["--out", str(out / "m.png")]
    return argv


def _assert_one_line(err: str, command: str, expected: tuple[str, ...], paths) -> None:
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line:\n{err}"
    assert err.startswith(f"convnet {command}"), err
    for text in expected:
        assert text.format(**paths) in err, f"{text!r} not in: {err}"


# (command, extra arguments, texts the one line must contain)
CASES = [
    # --- missing, empty, truncated and wrong-type files -------------------------------
    *[(c, ["--model", "{missing}.npz"], ("{missing}.npz", "does not exist"))
      for c in MODEL_COMMANDS],
    *[(c, ["--model", "{empty}"], ("{empty}", "empty", "save the model again"))
      for c in MODEL_COMMANDS],
    *[(c, ["--model", "{trunc}"], ("{trunc}", "not a readable .npz", "save the model again"))
      for c in MODEL_COMMANDS],
    *[(c, ["--model", "{pickle}"], ("{pickle}", "pickled")) for c in MODEL_COMMANDS],
    *[(c, ["--model", "{nofilters}"], ("{nofilters}", "'conv1' (Conv2D)", "filters"))
      for c in MODEL_COMMANDS],
    *[(c, ["--model", "{badjson}"], ("{badjson}", "not valid JSON")) for c in MODEL_COMMANDS],
    ("features", ["--model", "{dir}.npz"], ("{dir}.npz",)),
    ("saliency", ["--model", "squeezenet", "--weights", "{empty}"], ("{empty}", "SqueezeNet")),
    ("saliency", ["--model", "squeezenet", "--weights", "{trunc}"], ("{trunc}",)),
    ("saliency", ["--model", "{tiny}", "--weights", "{tiny}"], ("weights do not apply",)),
    ("saliency", ["@img={missing}.png"], ("{missing}.png", "does not exist")),
    ("predict", ["@img={missing}.png"], ("{missing}.png", "does not exist")),
    ("predict", ["@img={notimg}"], ("{notimg}", "not a readable image")),
    ("predict", ["@img={big}"], ("{big}",)),
    ("predict", ["--top", "0"], ("--top",)),
    ("predict", ["--model", "{trunc}"], ("{trunc}",)),
    ("fool", ["@img={dir}"], ("{dir}", "is a folder")),
    ("saliency", ["@img={notimg}"], ("{notimg}", "not a readable image")),
    ("fool", ["@img={emptyimg}"], ("{emptyimg}", "not a readable image")),
    ("saliency", ["@img={truncimg}"], ("{truncimg}",)),
    ("saliency", ["@img={big}"], ("{big}", "9000x8000", "64 megapixels", "shrink")),
    ("dream", ["@img={notimg}", "--size", "32"], ("{notimg}", "not a readable image")),
    ("dream", ["@img={bomb}", "--size", "32"], ("{bomb}", "over the limit", "shrink")),
    ("dream", ["@img={big}", "--size", "32"], ("{big}", "9000x8000", "shrink")),
    ("style", ["@img={notimg}"], ("{notimg}", "not a readable image")),
    ("style", ["@img={missing}.jpg"], ("{missing}.jpg", "does not exist")),
    ("autoencoder sample", ["@vae={missing}.npz"], ("{missing}.npz", "does not exist")),
    ("autoencoder sample", ["@vae={empty}"], ("{empty}", "empty")),
    ("autoencoder sample", ["@vae={trunc}"], ("{trunc}", "damaged")),
    ("autoencoder sample", ["@vae={pickle}"], ("{pickle}", "pickled")),
    ("autoencoder sample", ["@vae={vae3}"], ("{vae3}", "2-D code")),
    # --- numbers: zero, negative, NaN, Inf, huge --------------------------------------
    ("classviz", ["--steps", "0"], ("--steps", ">= 1", "'0'")),
    ("classviz", ["--size", "0"], ("--size", ">= 1")),
    ("classviz", ["--size", "-5"], ("--size",)),
    ("classviz", ["--lr", "nan"], ("--lr", "finite", "'nan'")),
    ("classviz", ["--lr", "-1"], ("--lr", "> 0")),
    ("classviz", ["--l2", "inf"], ("--l2", "finite")),
    ("classviz", ["--blur-sigma", "1e308"], ("--blur-sigma", "<= 100")),
    ("classviz", ["--jitter", "-1"], ("--jitter",)),
    ("classviz", ["--seed", "-1"], ("--seed",)),
    ("classviz", ["--size", "99999999"], ("--size", "<= 16384")),
    ("classviz", ["--max-memory", "0"], ("--max-memory", "> 0")),
    ("classviz", ["--steps", "two"], ("--steps", "'two'")),
    ("saliency", ["--noise", "nan"], ("--noise", "finite")),
    ("saliency", ["--smoothgrad", "-3"], ("--smoothgrad",)),
    ("saliency", ["--class", "-1"], ("--class",)),
    ("saliency", ["--alpha", "nan"], ("--alpha", "finite")),
    ("fool", ["--eps", "nan"], ("--eps", "finite")),
    ("fool", ["--eps", "0"], ("--eps", "> 0")),
    ("fool", ["--eps", "1e9"], ("--eps", "<= 255")),
    ("fool", ["--step", "inf", "--iterations", "3"], ("--step", "finite")),
    ("fool", ["--iterations", "-1"], ("--iterations",)),
    ("fool", ["--max-steps", "0"], ("--max-steps",)),
    ("features", ["--lr", "nan"], ("--lr", "finite")),
    ("features", ["--batch", "0"], ("--batch", ">= 1")),
    ("features", ["--steps", "0"], ("--steps",)),
    ("features", ["--size", "0"], ("--size",)),
    ("features", ["--init", "nan"], ("--init", "'random' or a number")),
    ("features", ["--diversity", "-1"], ("--diversity",)),
    ("features", ["--shift", "-2"], ("--shift",)),
    ("features", ["--channel", "4"], ("channels 0..3", "--channel")),
    ("features", ["--unit", "1,-2,3"], ("--unit",)),
    ("dream", ["--step-size", "nan"], ("--step-size", "finite")),
    ("dream", ["--octaves", "0"], ("--octaves", ">= 1")),
    ("dream", ["--octave-scale", "1"], ("--octave-scale", "> 1")),
    ("dream", ["--tile", "0"], ("--tile", ">= 32")),
    ("dream", ["--steps", "0"], ("--steps",)),
    ("dream", ["--size", "0"], ("--size",)),
    ("dream", ["--layers", "conv1=nan"], ("--layers", "conv1", "finite")),
    ("style", ["--steps", "0"], ("--steps", ">= 1")),
    ("style", ["--lr", "nan"], ("--lr", "finite")),
    ("style", ["--size", "0"], ("--size",)),
    ("style", ["--content-weight", "-1"], ("--content-weight",)),
    ("style", ["--tv-weight", "inf"], ("--tv-weight",)),
    ("style", ["--style-weights", "nan"], ("--style-weights", "finite")),
    ("style", ["--style-weights", "1,2"], ("--style-weights", "2 weights for 1")),
    ("autoencoder sample", ["--radius", "nan"], ("--radius", "finite")),
    ("autoencoder sample", ["--radius", "0"], ("--radius", "> 0")),
    ("autoencoder sample", ["--grid", "0"], ("--grid", ">= 1")),
    ("autoencoder sample", ["--grid", "100000"], ("--grid", "<= 800")),
    ("compare", ["--batch", "0"], ("--batch", ">= 1")),
    ("compare", ["--rtol", "nan"], ("--rtol", "finite")),
    ("compare", ["--seed", "-4"], ("--seed",)),
    ("explain", ["--noise", "nan", "--method", "saliency", "--smooth", "2"], ("--noise",)),
    ("explain", ["--opacity", "nan"], ("--opacity",)),
    ("explain", ["--steps", "0", "--method", "ig"], ("--steps",)),
    ("explain", ["--smooth", "-1"], ("--smooth",)),
    ("explain", ["--blur-sigma", "nan", "--method", "ig", "--baseline", "blur"], ("--blur-sigma",)),
    ("explain", ["--patch", "0", "--method", "occlusion"], ("--patch",)),
    ("explain", ["--stride", "0", "--method", "occlusion"], ("--stride",)),
    ("explain", ["--fill", "nan", "--method", "occlusion"], ("--fill",)),
    ("explain", ["--size", "0"], ("--size",)),
    ("explain", ["--class", "-1"], ("--class",)),
    ("explain", ["--model", "{empty}"], ("{empty}", "empty")),
    ("explain", ["@img={notimg}"], ("{notimg}", "not a readable image")),
    ("explain", ["@img={big}"], ("{big}", "shrink")),
    ("activations", ["--max-channels", "0"], ("--max-channels",)),
    ("activations", ["--tile", "0"], ("--tile",)),
    ("activations", ["--tile", "100000000"], ("--tile",)),
    ("activations", ["--model", "{trunc}"], ("{trunc}",)),
    ("activations", ["@img={missing}.png"], ("{missing}.png", "does not exist")),
    ("grade", ["--jobs", "0"], ("--jobs",)),
    ("grade", ["--timeout", "nan"], ("--timeout",)),
    ("grade", ["--memory", "-1"], ("--memory",)),
    ("grade", ["--max-output", "0"], ("--max-output",)),
    # --- unknown names ----------------------------------------------------------------
    ("dream", ["--layers", "nosuch"], ("--layers", "unknown layer 'nosuch'", "conv1, relu1")),
    ("features", ["@layer=nosuch"], ("unknown layer 'nosuch'", "conv1")),
    ("classviz", ["@class=5"], ("class index 5 out of range",)),
    ("train", ["@dataset=nosuch"], ("'nosuch'", "mnist")),
    ("style", ["--style-layers", "conv1,nosuch"], ("--style-layers", "'nosuch'", "conv1")),
    ("style", ["--content-layer", "nosuch"], ("--content-layer", "'nosuch'")),
    ("saliency", ["--model", "nosuch"], ("--model must be",)),
    ("saliency", ["--model", "keras:nosuch"], ("unknown model 'nosuch'", "mobilenet")),
    ("saliency", ["--input-space", "bogus"], ("unknown input space 'bogus'",)),
    ("dream", ["--variant", "bogus"], ("--variant", "'bogus'")),
    ("compare", ["--model", "nosuch"], ("--model must be one of",)),
    ("check", ["--only", "nosuch"], ("--only 'nosuch' matches no layer", "relu")),
    ("check", ["--impl", "{missing}.py"], ("--impl", "{missing}.py")),
    ("check", ["--impl", "{badpy}"], ("--impl", "{badpy}", "SyntaxError")),
    ("check", ["--impl", "{img}"], ("--impl", "{img}")),
    ("train", ["--model", "bogus"], ("--model", "'bogus'")),
    ("train", ["--update", "bogus"], ("--update", "'bogus'")),
    ("autoencoder train", ["--kind", "bogus"], ("--kind", "'bogus'")),
    ("explain", ["--layer", "nosuch"], ("unknown layer 'nosuch'",)),
    ("explain", ["--method", "bogus"], ("--method", "'bogus'")),
    ("explain", ["--cmap", "bogus"], ("--cmap", "'bogus'")),
    ("activations", ["--layer", "nosuch"], ("unknown layer 'nosuch'",)),
    ("activations", ["--cmap", "bogus"], ("--cmap", "'bogus'")),
    ("grade", ["--exercise", "nosuch"], ("'nosuch'",)),
    ("grade", ["--only", "nosuch"], ("--only 'nosuch'",)),
    ("grade", ["--weights", "{missing}.json"], ("--weights", "{missing}.json")),
    ("grade", ["--weights", "{img}"], ("--weights", "{img}")),
    ("exercise start", ["@exercise=nosuch"], ("'nosuch'",)),
    # --- output paths -------------------------------------------------------------------
    *[(c, ["--out", "{afile}"], ("--out", "{afile}", "is a file")) for c in IMAGE_COMMANDS],
    *[(c, ["--out", "{afile}/sub"], ("--out", "{afile}", "is a file")) for c in IMAGE_COMMANDS],
    ("autoencoder sample", ["--out", "{dir}"], ("--out", "is a folder")),
    ("autoencoder sample", ["--out", "{out}/m.xyz"], ("--out", "m.xyz", "extension")),
    ("autoencoder sample", ["--out", "{afile}/m.png"], ("--out", "{afile}", "is a file")),
    ("check", ["--json", "{afile}/r.json"], ("--json", "{afile}", "is a file")),
    ("check", ["--json", "{dir}"], ("--json", "is a folder")),
    ("compare", ["--json", "{afile}/r.json"], ("--json", "{afile}")),
    ("explain", ["--out", "{afile}"], ("--out", "{afile}", "is a file")),
    ("activations", ["--out", "{afile}/x.png"], ("--out", "{afile}", "is a file")),
    ("activations", ["--out", "{dir}"], ("--out", "is a folder")),
    ("grade", ["--json", "{afile}/r.json"], ("--json", "{afile}")),
    ("grade", ["--csv", "{afile}/r.csv"], ("--csv", "{afile}")),
    ("grade", ["--gradescope", "{afile}/r.json"], ("--gradescope", "{afile}")),
    ("exercise start", ["--dir", "{afile}"], ("--dir", "{afile}")),
    # --- memory: the estimate against a small artificial limit -------------------------
    ("classviz", ["--size", "1000", *SQZ, "--max-memory", "50"],
     ("needs about", "--max-memory 50", "lower --size")),
    ("features", ["@layer=fire2", "--size", "1000", *SQZ, "--max-memory", "50"],
     ("needs about", "lower --size")),
    ("features", ["@layer=fire2", "--size", "300", "--batch", "64", *SQZ, "--max-memory", "50"],
     ("needs about", "64 images", "--batch")),
    ("dream", ["--size", "1000", *SQZ, "--layers", "fire2", "--max-memory", "50"],
     ("needs about", "lower --size")),
    ("style", ["--size", "1000", *SQZ, "--style-layers", "fire2", "--content-layer", "fire3",
               "--max-memory", "50"], ("needs about", "lower --size")),  # fmt: skip
    ("autoencoder sample", ["--grid", "400", "--max-memory", "50"],
     ("needs about", "lower --grid")),
    # --- a diverged model: the image becomes NaN, the method stops -----------------------
    *[(c, ["--model", "{nan}"], ("NaN or Inf",)) for c in IMAGE_COMMANDS],
]  # fmt: skip

def _run(argv: list[str], out: Path, capsys) -> tuple[int, str]:
    out_parent_before = set(out.parent.iterdir())
    rc = main(argv)
    err = capsys.readouterr().err
    assert not out.exists(), f"{out} was created: {sorted(out.iterdir())}"
    assert set(out.parent.iterdir()) == out_parent_before, "files appeared next to --out"
    return rc, err


@pytest.mark.parametrize(
    ("command", "extra", "expected"),
    CASES,
    ids=[f"{c}:{' '.join(e)}" for c, e, _ in CASES],
)
def test_bad_input_is_one_line_exit_2_no_output(command, extra, expected, paths, tmp_path,
                                                capsys, monkeypatch):  # fmt: skip
    monkeypatch.setenv("CONVNET_OFFLINE", "1")
    out = tmp_path / "out"
    before = {p: Path(p).read_bytes() for p in (paths["afile"],)}
    rc, err = _run(_argv(command, extra, paths, out), out, capsys)
    assert rc == 2, err
    _assert_one_line(err, command, expected, paths)
    assert all(Path(p).read_bytes() == b for p, b in before.items())


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
@pytest.mark.parametrize("command", [*IMAGE_COMMANDS, "autoencoder sample"])
def test_unwritable_out_folder(command, paths, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        target = locked / ("m.png" if command == "autoencoder sample" else "out")
        rc = main(_argv(command, ["--out", str(target)], paths, tmp_path / "unused"))
        err = capsys.readouterr().err
        assert rc == 2
        _assert_one_line(err, command, ("--out", str(locked), "not writable"), paths)
        assert not any(locked.iterdir())
    finally:
        locked.chmod(0o700)


def test_memory_limit_from_the_environment(paths, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONVNET_MAX_MEMORY_MB", "50")
    out = tmp_path / "out"
    rc, err = _run(_argv("classviz", ["--size", "1000", *SQZ], paths, out), out, capsys)
    assert rc == 2
    _assert_one_line(err, "classviz", ("needs about", "CONVNET_MAX_MEMORY_MB=50"), paths)
    monkeypatch.setenv("CONVNET_MAX_MEMORY_MB", "lots")
    rc, err = _run(_argv("classviz", ["--size", "1000", *SQZ], paths, out), out, capsys)
    assert rc == 2
    _assert_one_line(err, "classviz", ("CONVNET_MAX_MEMORY_MB='lots'", "megabytes"), paths)


def test_a_valid_run_still_works_under_the_same_checks(paths, tmp_path, capsys):
    """The baseline: each BASE command succeeds, so the cases above fail for their reason."""
    for command in ("saliency", "classviz", "fool", "features", "dream", "style"):
        out = tmp_path / command
        assert main(_argv(command, ["--max-memory", "1000"] * (command in (
            "classviz", "features", "dream", "style")), paths, out)) == 0, command
        assert any(out.iterdir())
    out = tmp_path / "sample"
    assert main(_argv("autoencoder sample", [], paths, out)) == 0
    assert (out / "m.png").is_file()
    capsys.readouterr()


def test_every_subcommand_is_covered():
    """A new subcommand must get its cases here."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = set()
    for name, p in sub.choices.items():
        inner = [a for a in p._actions if isinstance(a, type(sub))]
        parsers = inner[0].choices.items() if inner else [("", p)]
        for action, q in parsers:
            if any(a.option_strings != ["-h", "--help"] for a in q._actions):  # takes input
                names.add(f"{name} {action}".strip())
    covered = {c for c, _, _ in CASES}
    assert names <= covered, f"no bad-input cases for {sorted(names - covered)}"
