"""ImageNet weights that cannot be downloaded: one line saying which file to put where, in the
words of the command line (``--weights PATH``) as well as of Python (``weights=PATH``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from convnet.cli import main

FILE = "vgg19_weights_tf_dim_ordering_tf_kernels.h5"


def _failing_keras(calls: list):
    def vgg19(**kwargs):
        calls.append(kwargs)
        # what keras.utils.get_file raises without network (a bare Exception)
        raise Exception(
            f"URL fetch failure on https://storage.googleapis.com/x/{FILE}: None -- "
            "[Errno -3] Temporary failure in name resolution"
        )

    return SimpleNamespace(applications=SimpleNamespace(vgg19=SimpleNamespace(VGG19=vgg19)))


def _check_line(err: str, home) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("convnet classviz: error: keras:vgg19: ImageNet weights " + FILE)
    assert "the download failed (URL fetch failure" in err
    assert f"put the file at {home / 'models' / FILE}" in err
    assert "--weights PATH on the command line" in err and "--weights none" in err


def test_failed_download_is_one_line_naming_the_file_and_folder(monkeypatch, tmp_path, capsys):
    calls: list = []
    monkeypatch.delenv("CONVNET_OFFLINE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("convnet.interop._tf.import_keras", lambda: _failing_keras(calls))
    out = tmp_path / "out"
    rc = main(["classviz", "1", "--model", "keras:vgg19", "--out", str(out)])
    assert rc == 2
    assert calls and calls[0]["weights"] == "imagenet"  # Keras was asked to download
    _check_line(capsys.readouterr().err, tmp_path / "keras")
    assert not out.exists()


def test_other_keras_errors_are_not_disguised_as_downloads(monkeypatch, tmp_path):
    from convnet.interop.pretrained import build_keras_model

    def broken(**kwargs):
        raise RuntimeError("a bug inside Keras")

    keras = SimpleNamespace(applications=SimpleNamespace(vgg19=SimpleNamespace(VGG19=broken)))
    monkeypatch.delenv("CONVNET_OFFLINE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr("convnet.interop._tf.import_keras", lambda: keras)
    with pytest.raises(RuntimeError, match="a bug inside Keras"):
        build_keras_model("vgg19")


def test_offline_message_names_the_command_line_flag(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CONVNET_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    rc = main(["classviz", "1", "--model", "keras:vgg19", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "CONVNET_OFFLINE=1 forbids the download" in err and "--weights PATH" in err


@pytest.mark.tf
@pytest.mark.slow
def test_real_keras_without_network(monkeypatch, tmp_path, capsys):
    """The real Keras download path on a machine without network (skipped when online)."""
    pytest.importorskip("tensorflow")
    import socket

    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        pytest.skip("this machine has network: the download would succeed")
    except OSError:
        pass
    monkeypatch.delenv("CONVNET_OFFLINE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    rc = main(["classviz", "1", "--model", "keras:vgg19", "--out", str(tmp_path / "out")])
    assert rc == 2
    _check_line(capsys.readouterr().err, tmp_path / "keras")
