"""Lazy TensorFlow import shared by everything in ``convnet.interop``.

``import convnet`` must never import TensorFlow (it takes seconds and is an optional
dependency), so every interop module calls :func:`import_tf` inside the function that
needs it instead of importing at module level.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from convnet.errors import ConvnetError


class TensorFlowNotAvailableError(ConvnetError, ImportError):
    """TensorFlow (or Keras 3) is not installed; interop features need it."""


_tf: ModuleType | None = None
_keras: ModuleType | None = None


def import_tf() -> ModuleType:
    """Import and return the ``tensorflow`` module.

    Returns:
    - the ``tensorflow`` module (imported once, then cached).

    Raises:
    - TensorFlowNotAvailableError (a ConvnetError) saying how to install it.
    """
    global _tf
    if _tf is None:
        # Silence TF's C++ start-up chatter unless the user asked for it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise TensorFlowNotAvailableError(
                "convnet.interop needs TensorFlow (>= 2.16, with Keras 3); install it with "
                f"`pip install tensorflow` ({exc})"
            ) from exc
        _tf = tf
    return _tf


def import_keras() -> ModuleType:
    """Import and return Keras 3 (the ``keras`` package TensorFlow ships with).

    Raises:
    - TensorFlowNotAvailableError if TensorFlow/Keras is missing or Keras is older than 3.
    """
    global _keras
    if _keras is None:
        import_tf()
        try:
            import keras
        except ImportError as exc:  # pragma: no cover
            raise TensorFlowNotAvailableError(
                f"convnet.interop needs Keras 3: `pip install keras` ({exc})"
            ) from exc
        major = int(str(keras.__version__).split(".")[0])
        if major < 3:  # pragma: no cover
            raise TensorFlowNotAvailableError(
                f"convnet.interop needs Keras >= 3, found {keras.__version__}"
            )
        _keras = keras
    return _keras


def tf_available() -> bool:
    """True when TensorFlow can be imported (without raising)."""
    try:
        import_tf()
    except TensorFlowNotAvailableError:
        return False
    return True


def to_numpy(t: Any):
    """Convert a TF tensor / variable (or anything array-like) to a NumPy array."""
    import numpy as np

    if hasattr(t, "numpy"):
        return t.numpy()
    return np.asarray(t)


__all__ = ["TensorFlowNotAvailableError", "import_tf", "import_keras", "tf_available", "to_numpy"]
