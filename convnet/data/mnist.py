"""MNIST from the four IDX .gz files (LeCun et al.), validated, as NCHW arrays."""

from __future__ import annotations

import gzip
import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from convnet.data.images import scale_pixels
from convnet.data.store import find_data_file
from convnet.errors import DataError

__all__ = ["load_mnist", "read_idx", "MNIST_FILES"]

MNIST_FILES = {
    "train_images": "mnist/train-images-idx3-ubyte.gz",
    "train_labels": "mnist/train-labels-idx1-ubyte.gz",
    "test_images": "mnist/t10k-images-idx3-ubyte.gz",
    "test_labels": "mnist/t10k-labels-idx1-ubyte.gz",
}

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte) and the number of dimensions.
_UBYTE = 0x08


def read_idx(path: str | os.PathLike, ndim: int, count: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzipped or not) and check its header against its size.

    Inputs:
    - path: the .gz (or raw) IDX file.
    - ndim: expected number of dimensions (1 for labels, 3 for images).
    - count: expected number of items (first dimension), or None for any.

    Returns: uint8 array of the shape the header declares, e.g. (60000, 28, 28).

    Raises DataError naming the file and what is wrong (bad gzip, magic, sizes, truncation).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{path}: not a readable {'gzip' if opener is gzip.open else ''} IDX file ({e})"
        ) from e
    if len(raw) < 4:
        raise DataError(f"{path}: IDX file too short ({len(raw)} bytes) for a header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE:
        raise DataError(
            f"{path}: bad IDX magic {raw[:4].hex()}, expected 0000{_UBYTE:02x}{ndim:02x} "
            "(unsigned bytes)"
        )
    if raw[3] != ndim:
        raise DataError(f"{path}: IDX file has {raw[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header truncated ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(
            f"{path}: header declares shape {shape} ({expected} bytes) but the file has "
            f"{len(raw)} bytes ({'truncated' if len(raw) < expected else 'trailing data'})"
        )
    if count is not None and shape[0] != count:
        raise DataError(f"{path}: {shape[0]} items, expected {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@lru_cache(maxsize=4)
def _read_idx_cached(path: Path, stamp: tuple[int, int], ndim: int, count: int) -> np.ndarray:
    # keyed on (mtime, size) so a replaced file is re-read; the arrays are read-only and
    # every caller copies what it returns, so sharing them is safe (55 MB for all of MNIST)
    return read_idx(path, ndim, count)


def _read(path: Path, ndim: int, count: int) -> np.ndarray:
    st = path.stat()
    return _read_idx_cached(path.resolve(), (st.st_mtime_ns, st.st_size), ndim, count)


def _load_split(images: Path, labels: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    x = _read(images, 3, count)
    if x.shape[1:] != (28, 28):
        raise DataError(f"{images}: images are {x.shape[1:]}, expected (28, 28)")
    y = _read(labels, 1, count)
    if y.max() > 9:
        raise DataError(f"{labels}: label {int(y.max())} out of range 0..9")
    return x.reshape(count, 1, 28, 28), y.astype(np.int64)


def load_mnist(
    path: str | os.PathLike | None = None,
    *,
    validation: int = 10000,
    dtype: str | np.dtype = "uint8",
    value_range: tuple[float, float] = (0.0, 1.0),
    download: bool = True,
) -> dict[str, np.ndarray]:
    """Load MNIST, split off a validation set (the common 50000/10000 split by default).

    Files are searched as in :func:`convnet.data.store.find_data_file` (``path``, then
    ``$CONVNET_DATA_DIR/mnist``, then the cache) and downloaded if missing.

    Inputs:
    - path: optional folder holding ``mnist/`` (or the four files themselves).
    - validation: the *last* ``validation`` of the 60000 training images become the
      validation set (0 <= validation < 60000).
    - dtype: ``"uint8"`` (default) returns raw pixels 0..255; a float dtype (``"float32"``,
      ``"float64"``) returns pixels mapped linearly from [0, 255] onto ``value_range``.
    - value_range: (lo, hi) for float output: ``(0, 1)`` (default) or ``(-1, 1)`` (the
      ``MnistConvNet``'s input). Ignored for uint8.
    - download: allow downloading missing files.

    Returns a dict of NCHW images and int64 labels in 0..9:
    - X_train: (60000 - validation, 1, 28, 28), y_train: (60000 - validation,)
    - X_val: (validation, 1, 28, 28), y_val: (validation,)
    - X_test: (10000, 1, 28, 28), y_test: (10000,)

    Raises DataNotFoundError (missing and not downloadable) or DataError (corrupt file).
    """
    if isinstance(validation, bool) or int(validation) != validation:
        raise ValueError(f"load_mnist: validation must be an int, got {validation!r}")
    if not 0 <= validation < 60000:
        raise ValueError(f"load_mnist: validation must be in [0, 60000), got {validation}")
    files = {k: find_data_file(v, path, download=download) for k, v in MNIST_FILES.items()}
    x, y = _load_split(files["train_images"], files["train_labels"], 60000)
    x_test, y_test = _load_split(files["test_images"], files["test_labels"], 10000)
    n = 60000 - int(validation)

    def conv(a: np.ndarray) -> np.ndarray:
        return scale_pixels(a, dtype, value_range)

    return {
        "X_train": conv(x[:n]),
        "y_train": y[:n].copy(),
        "X_val": conv(x[n:]),
        "y_val": y[n:].copy(),
        "X_test": conv(x_test),
        "y_test": y_test,
    }
