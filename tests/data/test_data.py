"""Data loaders, restricted unpickling, images and digit preprocessing.

Synthetic fixtures run everywhere; real-data checks use ``need_data`` (skip locally without
``$CONVNET_DATA_DIR``, fail in CI when the data is missing).
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
from conftest import need_data

from convnet.data import (
    decode_predictions,
    from_nchw,
    imagenet_labels,
    load_cifar10,
    load_image,
    load_mnist,
    preprocess_digit,
    read_cifar_pickle,
    read_idx,
    save_image,
    scale_pixels,
    to_nchw,
)
from convnet.errors import ConvnetError, DataError, DataNotFoundError


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """No data dir, an empty private cache, downloads disabled."""
    monkeypatch.delenv("CONVNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CONVNET_OFFLINE", "1")
    return tmp_path


def idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


# --- IDX / MNIST --------------------------------------------------------------------------


def test_read_idx_roundtrip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "a.gz"
    p.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(p, 3, 2), a)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"\x00\x00\x0d\x03" + b[4:], "bad IDX magic"),  # float type code
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\x00", "trailing data"),
        (lambda b: b[:2], "too short"),
    ],
)
def test_read_idx_corrupt(tmp_path, mutate, message):
    p = tmp_path / "bad-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(mutate(idx_bytes(np.zeros((2, 28, 28))))))
    with pytest.raises(DataError, match=message) as e:
        read_idx(p, 3)
    assert "bad-idx3-ubyte.gz" in str(e.value)


def test_read_idx_wrong_ndim_count_and_bad_gzip(tmp_path):
    p = tmp_path / "l.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros(5))))
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        read_idx(p, 3)
    with pytest.raises(DataError, match="5 items, expected 7"):
        read_idx(p, 1, 7)
    q = tmp_path / "notgzip.gz"
    q.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="notgzip.gz"):
        read_idx(q, 1)


def test_load_mnist_corrupt_file_named(offline_env):
    folder = offline_env / "mnist"
    folder.mkdir()
    # a header claiming 60000 images followed by only 10 of them
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 28, 28)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + bytes(7840)))
    for name, n in [("train-labels-idx1-ubyte.gz", 60000), ("t10k-labels-idx1-ubyte.gz", 10000)]:
        (folder / name).write_bytes(gzip.compress(idx_bytes(np.zeros(n))))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(head))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*truncated"):
        load_mnist(offline_env)


def test_load_mnist_missing_offline(offline_env):
    with pytest.raises(DataNotFoundError) as e:
        load_mnist()
    msg = str(e.value)
    assert "mnist/train-images-idx3-ubyte.gz" in msg and "CONVNET_OFFLINE" in msg
    assert str(offline_env / "xdg" / "convnet") in msg
    with pytest.raises(ValueError, match="load_mnist: validation"):
        load_mnist(validation=60000)


def test_load_mnist_real():
    need_data("mnist/train-images-idx3-ubyte.gz")
    d = load_mnist()
    shapes = {k: v.shape for k, v in d.items()}
    assert shapes == {
        "X_train": (50000, 1, 28, 28),
        "y_train": (50000,),
        "X_val": (10000, 1, 28, 28),
        "y_val": (10000,),
        "X_test": (10000, 1, 28, 28),
        "y_test": (10000,),
    }
    assert d["X_train"].dtype == np.uint8 and d["y_train"].dtype == np.int64
    # published statistics of the 60000 training images: mean 0.1307, std 0.3081 (in [0, 1])
    hist = np.bincount(d["X_train"].ravel(), minlength=256) + np.bincount(
        d["X_val"].ravel(), minlength=256
    )
    v = np.arange(256) / 255
    mean = (hist * v).sum() / hist.sum()
    std = np.sqrt((hist * (v - mean) ** 2).sum() / hist.sum())
    assert mean == pytest.approx(0.1307, abs=5e-4) and std == pytest.approx(0.3081, abs=5e-4)
    assert list(d["y_train"][:8]) == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known first labels
    assert d["y_test"][0] == 7
    assert np.bincount(d["y_test"], minlength=10).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009,
    ]  # fmt: skip
    f = load_mnist(validation=0, dtype="float32", value_range=(-1, 1))
    assert f["X_train"].shape == (60000, 1, 28, 28) and f["X_val"].shape == (0, 1, 28, 28)
    assert f["X_train"].dtype == np.float32
    assert f["X_train"].min() == -1.0 and f["X_train"].max() == 1.0
    np.testing.assert_allclose(f["X_test"], d["X_test"] / 127.5 - 1, atol=1e-6)


def test_scale_pixels():
    x = np.array([0, 51, 255], dtype=np.uint8)
    np.testing.assert_allclose(scale_pixels(x, "float64"), [0, 0.2, 1])
    np.testing.assert_allclose(scale_pixels(x, "float32", (-1, 1)), [-1, -0.6, 1], atol=1e-6)
    y = scale_pixels(x)
    y[0] = 9  # a writable copy
    assert x[0] == 0
    with pytest.raises(ValueError, match="scale_pixels"):
        scale_pixels(x, "int32")


# --- CIFAR-10 -----------------------------------------------------------------------------


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned_marker",))


def test_restricted_unpickler_rejects_os_system(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "data_batch_1"
    # str keys: Python 3 pickles bytes under protocol 2 via _codecs.encode, refused first
    p.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="refusing to unpickle (posix|nt|os).system") as e:
        read_cifar_pickle(p)
    assert "data_batch_1" in str(e.value)
    assert not (tmp_path / "pwned_marker").exists()
    p.write_bytes(pickle.dumps({"x": eval}, protocol=2))
    with pytest.raises(DataError, match=r"(builtins|__builtin__)\.eval"):
        read_cifar_pickle(p)
    p.write_bytes(b"\x80\x02}q\x00(U\x04data")  # truncated pickle
    with pytest.raises(DataError, match="not a readable"):
        read_cifar_pickle(p)


def test_restricted_unpickler_admits_arrays(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(2, 6)
    p = tmp_path / "b"
    p.write_bytes(pickle.dumps({b"data": a, b"labels": [1, 2]}, protocol=4))
    d = read_cifar_pickle(p)
    np.testing.assert_array_equal(d["data"], a)
    assert d["labels"] == [1, 2]


def test_load_cifar10_reads_present_batches(tmp_path, offline_env):
    folder = tmp_path / "c" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name, n in [("data_batch_1", 6), ("data_batch_3", 4), ("test_batch", 5)]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, n)]
        batches[name] = (x, y)
        (folder / name).write_bytes(pickle.dumps({b"data": x, b"labels": y}, protocol=4))
    d = load_cifar10(tmp_path / "c", validation=3)
    x_all = np.concatenate([batches["data_batch_1"][0], batches["data_batch_3"][0]])
    assert d["X_train"].shape == (7, 3, 32, 32) and d["X_val"].shape == (3, 3, 32, 32)
    # channel-major rows: row[:1024] is the red plane
    np.testing.assert_array_equal(d["X_train"][0, 0].ravel(), x_all[0, :1024])
    np.testing.assert_array_equal(d["X_val"][-1, 2].ravel(), x_all[-1, 2048:])
    assert d["y_val"].tolist() == batches["data_batch_3"][1][1:]
    with pytest.raises(ValueError, match="leaves no training images"):
        load_cifar10(tmp_path / "c", validation=10)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": x_all, b"labels": [1]}, 4))
    with pytest.raises(DataError, match="data_batch_1.*labels"):
        load_cifar10(tmp_path / "c", validation=0)


def test_load_cifar10_real():
    need_data("cifar-10-batches-py/data_batch_1")
    need_data("cifar-10-batches-py/test_batch")
    d = load_cifar10(validation=1000)
    n = d["X_train"].shape[0] + 1000
    assert n % 10000 == 0
    assert d["X_train"].shape[1:] == (3, 32, 32) and d["X_train"].dtype == np.uint8
    assert d["X_test"].shape == (10000, 3, 32, 32) and d["y_test"].shape == (10000,)
    assert d["y_train"].min() == 0 and d["y_train"].max() == 9
    assert np.bincount(d["y_test"]).tolist() == [1000] * 10
    # per-channel means of the CIFAR-10 training set: (0.4914, 0.4822, 0.4465) * 255
    x = np.concatenate([d["X_train"], d["X_val"]])
    means = x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means, [125.31, 122.95, 113.87], atol=1.5)


# --- ImageNet labels ----------------------------------------------------------------------


def test_imagenet_labels_and_decode():
    need_data("imagenet_class_index.json")
    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[817] == ("n04285008", "sports_car")
    p = np.full((2, 1000), 1e-4)
    p[0, [817, 511, 479]] = [0.9, 0.05, 0.03]
    p[1, 208] = 0.8
    out = decode_predictions(p, top=3)
    assert [t[0] for t in out[0]] == [817, 511, 479]
    assert out[0][0] == (817, "n04285008", "sports_car", 0.9)
    assert out[1][0][:3] == (208, "n02099712", "Labrador_retriever")
    assert out[1][1][0] == 0  # ties: lowest index first
    assert len(decode_predictions(p[0], top=1)) == 1
    with pytest.raises(ValueError, match=r"decode_predictions: probs must be \(N, 1000\)"):
        decode_predictions(np.zeros((2, 10)))


def test_imagenet_labels_bad_file(tmp_path):
    (tmp_path / "imagenet_class_index.json").write_text('{"0": ["n1", "a"]}')
    with pytest.raises(DataError, match="imagenet_class_index.json"):
        imagenet_labels(tmp_path)


# --- images -------------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3)).astype(np.float32)
    p = save_image(tmp_path / "sub" / "a.png", img)
    assert [f.name for f in p.parent.iterdir()] == ["a.png"]  # no temp file left
    back = load_image(p)
    assert back.shape == (5, 7, 3) and back.dtype == np.float32
    np.testing.assert_array_equal(back, img)
    g = load_image(p, mode="L")
    assert g.shape == (5, 7, 1)
    np.testing.assert_allclose(g[..., 0], img @ [0.299, 0.587, 0.114], atol=1.0)
    r = load_image(p, size=(10, 4))
    assert r.shape == (10, 4, 3) and 0 <= r.min() and r.max() <= 255
    # floats in [0, 1] with value_range, clipping out-of-range values
    save_image(tmp_path / "b.png", np.array([[0.0, 0.5, 1.0, 2.0]]), value_range=(0, 1))
    np.testing.assert_array_equal(
        load_image(tmp_path / "b.png", mode="L")[0, :, 0], [0, 128, 255, 255]
    )
    with pytest.raises(ValueError, match="save_image"):
        save_image(tmp_path / "c.png", np.zeros((2, 3, 5)))


def test_load_image_limits_and_errors(tmp_path):
    save_image(tmp_path / "big.png", np.zeros((100, 120)))
    with pytest.raises(DataError, match=r"120x100 .* over the limit"):
        load_image(tmp_path / "big.png", max_pixels=10_000)
    assert load_image(tmp_path / "big.png", max_pixels=12_000).shape == (100, 120, 3)
    with pytest.raises(DataNotFoundError):
        load_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ConvnetError, match="junk.png"):
        load_image(tmp_path / "junk.png")
    with pytest.raises(ValueError, match="load_image: mode"):
        load_image(tmp_path / "big.png", mode="CMYK")


def test_load_image_transparent_is_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]
    save_image(tmp_path / "t.png", rgba)
    img = load_image(tmp_path / "t.png")
    np.testing.assert_array_equal(img[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(img[1, 1], [255, 255, 255])


def test_nchw_helpers():
    img = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)  # H=2, W=3, C=3
    x = to_nchw(img)
    assert x.shape == (1, 3, 2, 3) and x[0, 1, 1, 2] == img[1, 2, 1]
    np.testing.assert_array_equal(from_nchw(x), img)
    with pytest.raises(ValueError, match="to_nchw"):
        to_nchw(np.zeros(3))


def test_load_real_image():
    p = need_data("images/car.png")
    img = load_image(p, size=227)
    assert img.shape == (227, 227, 3) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 255 and img.std() > 20


# --- digits -------------------------------------------------------------------------------


def _centre_of_mass(a):
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
    return (yy * a).sum() / a.sum(), (xx * a).sum() / a.sum()


def test_preprocess_digit_synthetic_photo(tmp_path):
    from PIL import Image, ImageDraw

    # a dark "1"-like bar and a foot, off-centre on a light, slightly noisy background
    img = Image.new("L", (300, 240), 220)
    d = ImageDraw.Draw(img)
    d.line([(60, 30), (60, 150)], fill=30, width=12)
    d.line([(40, 150), (85, 150)], fill=30, width=10)
    noisy = np.asarray(img, dtype=np.float32) + np.random.default_rng(0).normal(0, 4, (240, 300))
    save_image(tmp_path / "digit.png", noisy)
    x = preprocess_digit(tmp_path / "digit.png")
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    a = x[0, 0]
    assert a.min() == 0.0 and a.max() == pytest.approx(1.0)
    # light strokes on black: background (noise included) is exactly zero
    assert a[:, :4].max() == 0 and a[:, -4:].max() == 0 and (a == 0).mean() > 0.6
    rows = np.nonzero(a.max(axis=1) > 0.05)[0]
    assert 18 <= rows.max() - rows.min() + 1 <= 21  # the tall side fills 20 pixels
    cy, cx = _centre_of_mass(a)  # MNIST's convention: centre of mass at pixel (14, 14)
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6
    y = preprocess_digit(tmp_path / "digit.png", value_range=(-1, 1))
    np.testing.assert_allclose(y, 2 * x - 1, atol=1e-6)
    # without the automatic inversion the light paper would be taken for the digit
    z = preprocess_digit(tmp_path / "digit.png", invert=False)
    assert z.mean() > 2 * x.mean()
    # an already MNIST-like (light on dark) picture is not inverted (atol: the file was
    # rounded to 8 bits, the array was not)
    np.testing.assert_allclose(preprocess_digit(255.0 - noisy), x, atol=5e-3)
    with pytest.raises(DataError, match="no digit"):
        preprocess_digit(np.full((50, 50), 200.0))


def test_preprocess_digit_recovers_mnist_digit():
    need_data("mnist/t10k-images-idx3-ubyte.gz")
    from PIL import Image

    x = load_mnist(validation=0)["X_test"][:5, 0].astype(np.float32)
    for digit in x:
        # print it large, dark on white, off-centre: like a scan
        big = np.asarray(Image.fromarray(digit).resize((140, 140), Image.Resampling.BILINEAR))
        page = np.full((260, 200), 255.0, dtype=np.float32)
        page[30:170, 50:190] = 255.0 - big
        out = preprocess_digit(page)[0, 0]
        ref = digit / 255.0
        # rescaling twice moves thin strokes by up to a pixel: allow a 1-pixel shift
        corr = max(
            np.corrcoef(np.roll(out, (dy, dx), axis=(0, 1)).ravel(), ref.ravel())[0, 1]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )
        assert corr > 0.85, corr
        assert np.corrcoef(out.ravel(), np.roll(ref, 3, axis=1).ravel())[0, 1] < corr - 0.2
