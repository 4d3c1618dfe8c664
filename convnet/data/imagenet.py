"""ImageNet class labels (the Keras ``imagenet_class_index.json``) and top-k decoding."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from convnet.data.store import find_data_file
from convnet.errors import DataError

__all__ = ["imagenet_labels", "decode_predictions"]

NUM_CLASSES = 1000


@lru_cache(maxsize=4)
def _read_labels(file: Path) -> tuple[tuple[str, str], ...]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{file}: not a readable JSON class index ({e})") from e
    try:
        labels = tuple((str(data[str(i)][0]), str(data[str(i)][1])) for i in range(NUM_CLASSES))
    except (KeyError, IndexError, TypeError) as e:
        raise DataError(
            f"{file}: expected keys '0'..'999' mapping to [wnid, name], missing or bad entry ({e})"
        ) from e
    if len(data) != NUM_CLASSES:
        raise DataError(f"{file}: {len(data)} classes, expected {NUM_CLASSES}")
    return labels


def imagenet_labels(
    path: str | os.PathLike | None = None, download: bool = True
) -> list[tuple[str, str]]:
    """The 1000 ImageNet classes in index order.

    Inputs:
    - path: optional folder holding ``imagenet_class_index.json``, or the file; otherwise
      the usual search order (``$CONVNET_DATA_DIR``, cache, download).

    Returns: list of 1000 ``(wnid, name)``, e.g. ``labels[817] == ('n04285008',
    'sports_car')``.
    """
    file = find_data_file("imagenet_class_index.json", path, download=download)
    return list(_read_labels(file.resolve()))


def decode_predictions(
    probs: np.ndarray, top: int = 5, path: str | os.PathLike | None = None
) -> list[list[tuple[int, str, str, float]]]:
    """The ``top`` most probable classes of each row, most probable first.

    Inputs:
    - probs: (N, 1000) class probabilities (or scores; only their order matters), or
      (1000,) for one image (treated as N = 1).
    - top: how many classes per row (1..1000).
    - path: where to find the class index (see :func:`imagenet_labels`).

    Returns: a list of N lists of ``(class_index, wnid, name, prob)``. Ties keep the lower
    class index first.
    """
    p = np.asarray(probs)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != NUM_CLASSES:
        raise ValueError(
            f"decode_predictions: probs must be (N, {NUM_CLASSES}) or ({NUM_CLASSES},), "
            f"got {np.shape(probs)}"
        )
    if isinstance(top, bool) or int(top) != top or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"decode_predictions: top must be an int in 1..{NUM_CLASSES}, got {top!r}")
    labels = imagenet_labels(path)
    # stable sort on -p keeps the lower index first among equal probabilities
    order = np.argsort(-p, axis=1, kind="stable")[:, : int(top)]
    return [
        [(int(i), labels[i][0], labels[i][1], float(row[i])) for i in idx]
        for row, idx in zip(p, order, strict=True)
    ]
