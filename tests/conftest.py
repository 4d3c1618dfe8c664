"""Shared test helpers.

Real data lives in ``$CONVNET_DATA_DIR`` (CI: ``../shared/data``). A test that needs a data
file uses the ``data_file`` fixture: the file is skipped with a clear reason when missing, but
under ``CONVNET_REQUIRE_DATA=1`` (CI) a missing file is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def _data_dir() -> Path | None:
    d = os.environ.get("CONVNET_DATA_DIR")
    return Path(d) if d else None


def need_data(relpath: str) -> Path:
    """Return ``$CONVNET_DATA_DIR/relpath`` or skip (fail under CONVNET_REQUIRE_DATA=1)."""
    d = _data_dir()
    path = d / relpath if d else None
    if path is not None and path.exists():
        return path
    reason = (
        f"needs real data file {relpath!r}: set CONVNET_DATA_DIR to a folder containing it"
        if d is None
        else f"needs real data file {path} (missing)"
    )
    if os.environ.get("CONVNET_REQUIRE_DATA") == "1":
        pytest.fail(reason + " [CONVNET_REQUIRE_DATA=1]")
    pytest.skip(reason)


def need_keras_file(relpath: str) -> Path:
    """A file under ``$KERAS_HOME`` (e.g. ``models/mobilenet_2_5_224_tf_no_top.h5``)."""
    home = os.environ.get("KERAS_HOME")
    path = Path(home) / relpath if home else None
    if path is not None and path.exists():
        return path
    reason = f"needs Keras file {relpath!r} under $KERAS_HOME ({home or 'unset'})"
    if os.environ.get("CONVNET_REQUIRE_DATA") == "1":
        pytest.fail(reason + " [CONVNET_REQUIRE_DATA=1]")
    pytest.skip(reason)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
