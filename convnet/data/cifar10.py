"""CIFAR-10 from the python pickles, read through a restricted unpickler, as NCHW arrays."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from convnet.data.images import scale_pixels
from convnet.data.store import find_data_file
from convnet.errors import DataError, DataNotFoundError

__all__ = ["load_cifar10", "read_cifar_pickle", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# Exactly the globals a CIFAR-10 python pickle refers to (they rebuild numpy arrays);
# everything else (os.system, builtins.eval, ...) is refused before it can be called.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, name: str):
        super().__init__(file, encoding="bytes")
        self._name = name

    def find_class(self, module: str, name: str):
        make = _ALLOWED.get((module, name))
        if make is None:
            raise DataError(
                f"{self._name}: refusing to unpickle {module}.{name}: a CIFAR-10 batch contains "
                "only dicts, lists, strings and numpy arrays (corrupt or malicious file?)"
            )
        return make()


def read_cifar_pickle(path: str | os.PathLike) -> dict:
    """Unpickle a CIFAR-10 python file admitting only dict/list/str/bytes/numbers/ndarray.

    Returns: the dict with ``str`` keys (the files store byte-string keys).
    Raises DataError for anything else, naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        obj = _RestrictedUnpickler(io.BytesIO(raw), str(path)).load()
    except DataError:
        raise
    except Exception as e:  # truncated or garbage pickle: many exception types possible
        raise DataError(f"{path}: not a readable CIFAR-10 pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = read_cifar_pickle(path)
    data, labels = d.get("data"), d.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path}: 'data' must be a uint8 array (N, 3072)")
    if data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' is {data.shape}, expected (N, 3072)")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path}: 'labels' must be a list of ints ({e})") from e
    if y.shape != (data.shape[0],):
        raise DataError(f"{path}: {y.shape} labels for {data.shape[0]} images")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{path}: labels out of range 0..9")
    # rows are 1024 red, 1024 green, 1024 blue values, each a 32x32 image in row order
    return data.reshape(-1, 3, 32, 32), y


def load_cifar10(
    path: str | os.PathLike | None = None,
    *,
    validation: int = 1000,
    dtype: str | np.dtype = "uint8",
    value_range: tuple[float, float] = (0.0, 1.0),
    download: bool = True,
) -> dict[str, np.ndarray]:
    """Load CIFAR-10 from whichever ``data_batch_1..5`` are present, plus ``test_batch``.

    The folder is the first holding ``cifar-10-batches-py/data_batch_1`` in the search order
    (``path``, ``$CONVNET_DATA_DIR``, the cache; downloaded and unpacked if nowhere); batches
    2..5 are read from the same folder when they are there.

    Inputs:
    - path: optional folder holding ``cifar-10-batches-py/`` (or the batches themselves).
    - validation: the *last* ``validation`` training images become the validation set
      (cs231n: 49000/1000 with all five batches; 9000/1000 with data_batch_1 only).
    - dtype, value_range: as in :func:`convnet.data.load_mnist` (uint8 0..255 by default, or
      floats mapped onto ``value_range``).
    - download: allow downloading.

    Returns a dict of NCHW RGB images and int64 labels 0..9 (names in ``CIFAR10_CLASSES``):
    - X_train: (N - validation, 3, 32, 32), y_train: (N - validation,), N = 10000 per batch
    - X_val: (validation, 3, 32, 32), y_val: (validation,)
    - X_test: (10000, 3, 32, 32), y_test: (10000,)
    """
    if isinstance(validation, bool) or int(validation) != validation or validation < 0:
        raise ValueError(f"load_cifar10: validation must be an int >= 0, got {validation!r}")
    first = find_data_file("cifar-10-batches-py/data_batch_1", path, download=download)
    folder = first.parent
    test_file = folder / "test_batch"
    if not test_file.is_file():
        test_file = find_data_file("cifar-10-batches-py/test_batch", path, download=download)
    batches = [folder / f"data_batch_{i}" for i in range(1, 6)]
    batches = [b for b in batches if b.is_file()]
    if not batches:  # pragma: no cover - data_batch_1 was just found there
        raise DataNotFoundError(f"no data_batch_* in {folder}")
    parts = [_read_batch(b) for b in batches]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if validation >= len(x):
        raise ValueError(
            f"load_cifar10: validation={validation} leaves no training images "
            f"({len(x)} available in {len(batches)} batch(es))"
        )
    x_test, y_test = _read_batch(test_file)
    n = len(x) - int(validation)
    return {
        "X_train": scale_pixels(x[:n], dtype, value_range),
        "y_train": y[:n].copy(),
        "X_val": scale_pixels(x[n:], dtype, value_range),
        "y_val": y[n:].copy(),
        "X_test": scale_pixels(x_test, dtype, value_range),
        "y_test": y_test,
    }
