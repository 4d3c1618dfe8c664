"""The kit's ``data_utils`` for CIFAR-10, on :func:`convnet.data.load_cifar10`.

The CIFAR-10 files are found where convnet looks for them (the given folder,
``$CONVNET_DATA_DIR``, the cache; downloaded when allowed) and read with convnet's
restricted unpickler, which admits only the arrays and lists a CIFAR-10 batch contains.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from convnet.data.cifar10 import _read_batch, load_cifar10

__all__ = ["load_CIFAR_batch", "load_CIFAR10", "get_CIFAR10_data"]


def load_CIFAR_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: X (N, 32, 32, 3) float64 in 0..255 (NHWC, the kit's layout),
    Y (N,) int64 labels."""
    from pathlib import Path

    x, y = _read_batch(Path(filename))
    return x.transpose(0, 2, 3, 1).astype(np.float64), y


def load_CIFAR10(ROOT: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All of CIFAR-10 from folder ``ROOT`` (``cifar-10-batches-py`` or its parent).

    Returns Xtr (50000, 32, 32, 3), Ytr (50000,), Xte (10000, 32, 32, 3), Yte (10000,):
    float64 images in 0..255 in the kit's NHWC layout, int64 labels.
    """
    d = load_cifar10(ROOT, validation=0, dtype="uint8", download=False)
    nhwc = (0, 2, 3, 1)
    return (
        d["X_train"].transpose(nhwc).astype(np.float64),
        d["y_train"],
        d["X_test"].transpose(nhwc).astype(np.float64),
        d["y_test"],
    )


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    path: str | os.PathLike | None = None,
    dtype: Any = np.float64,
) -> dict[str, np.ndarray]:
    """CIFAR-10 ready for the classifiers: NCHW floats in pixel units (0..255), minus the
    mean training image.

    Inputs:
    - num_training: the first ``num_training`` training images form ``X_train``.
    - num_validation: the next ``num_validation`` form ``X_val`` (49000/1000 by default).
    - num_test: the first ``num_test`` test images.
    - subtract_mean: subtract the per-pixel mean of ``X_train`` from all three sets.
    - path: folder holding ``cifar-10-batches-py`` (default: convnet's search path).
    - dtype: float dtype of the images (the kit's float64 by default; float32 halves the
      memory, 0.6 GB instead of 1.2 GB for the full training set).

    Returns a dict with X_train (num_training, 3, 32, 32), y_train (num_training,), X_val,
    y_val, X_test, y_test (int64 labels).
    """
    for name, n in (("num_training", num_training), ("num_validation", num_validation),
                    ("num_test", num_test)):
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"get_CIFAR10_data: {name} must be an int >= 0, got {n!r}")
    d = load_cifar10(path, validation=0, dtype="uint8")
    X, y = d["X_train"], d["y_train"]
    if num_training + num_validation > len(X):
        raise ValueError(
            f"get_CIFAR10_data: num_training + num_validation = "
            f"{num_training + num_validation} exceeds the {len(X)} training images found"
        )
    # Only the selected images are converted to float: the full set in float64 is 1.2 GB.
    data = {
        "X_train": X[:num_training].astype(dtype),
        "y_train": y[:num_training],
        "X_val": X[num_training:num_training + num_validation].astype(dtype),
        "y_val": y[num_training:num_training + num_validation],
        "X_test": d["X_test"][:num_test].astype(dtype),
        "y_test": d["y_test"][:num_test],
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0, dtype=np.float64).astype(dtype)
        for k in ("X_train", "X_val", "X_test"):
            data[k] -= mean_image
    return data
