"""Atomic writes (``convnet._io``) and the writers built on them.

Each writer must: give a new file the mode a plain ``open()`` gives under the umask, keep
an existing file's mode, leave no temporary file behind after an error, and leave the
previous file intact when writing the new one fails.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from convnet._io import (
    atomic_path,
    atomic_save_figure,
    atomic_save_npz,
    atomic_write,
    atomic_write_text,
)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def _save_model(path):
    from convnet.models import Dense, Sequential

    return Sequential([Dense(3, 2, name="fc", seed=0)], input_shape=(3,)).save(path)


def _save_png(path):
    from convnet.data.images import save_png

    return save_png(np.zeros((1, 3, 4, 5)), path)


def _save_image(path):
    from convnet.data.images import save_image

    return save_image(path, np.zeros((4, 5), np.uint8))


def _save_viz_figure(path):
    from convnet.viz import save_figure

    return save_figure(_figure(), path)


WRITERS = {
    "text": lambda p: atomic_write_text(p, "hello\n"),
    "npz": lambda p: atomic_save_npz(p, {"a": np.arange(3)}),
    "figure": lambda p: atomic_save_figure(_figure(), p),
    "viz.save_figure": _save_viz_figure,
    "Sequential.save": _save_model,
    "save_png": _save_png,
    "save_image": _save_image,
}


@pytest.mark.parametrize("writer", WRITERS)
def test_new_file_gets_umask_permissions(writer, umask, tmp_path):
    umask(0o022)
    path = tmp_path / "sub" / "f.png"  # the folder is created too
    assert WRITERS[writer](path) == path
    assert _mode(path) == 0o644
    umask(0o077)
    path2 = tmp_path / "g.png"
    WRITERS[writer](path2)
    assert _mode(path2) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "sub"]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.png"]


def test_existing_file_keeps_its_mode(umask, tmp_path):
    umask(0o022)
    path = tmp_path / "f.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o640


def test_error_keeps_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(path) as f:
            f.write(b"half of the new cont")
            raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_error_on_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


class _Unsavable:
    def __array__(self, *args, **kwargs):
        raise ValueError("cannot convert")


def test_npz_failing_mid_write_keeps_previous(tmp_path):
    path = tmp_path / "m.npz"
    atomic_save_npz(path, {"a": np.arange(3)})
    with pytest.raises(ValueError, match="cannot convert"):
        # the first array is already in the zip when the second one fails
        atomic_save_npz(path, {"a": np.arange(5), "b": _Unsavable()})
    with np.load(path) as f:
        np.testing.assert_array_equal(f["a"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_sequential_save_failure_keeps_previous_model(tmp_path, monkeypatch):
    from convnet.models import Sequential

    path = _save_model(tmp_path / "model.npz")
    before = Sequential.load(path).params["fc/W"].copy()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("no space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="no space left"):
        _save_model(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(Sequential.load(path).params["fc/W"], before)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_save_png_failure_keeps_previous_image(tmp_path, monkeypatch):
    from PIL import Image

    from convnet.data.images import save_png

    path = _save_png(tmp_path / "x.png")
    old = path.read_bytes()

    def broken_save(self, fp, *a, **k):
        fp.write(b"\x89PNG partial")
        raise OSError("write error")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="write error"):
        save_png(np.full((1, 3, 4, 5), 255.0), path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_text_mode_and_bad_mode(tmp_path):
    with atomic_write(tmp_path / "t.txt", "w") as f:
        f.write("naïve\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "naïve\n"
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(tmp_path / "a.txt", "a"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_npz_name_used_as_given(tmp_path):
    path = atomic_save_npz(tmp_path / "ckpt.tmp", {"a": np.ones(2)})
    assert path.name == "ckpt.tmp" and [p.name for p in tmp_path.iterdir()] == ["ckpt.tmp"]
