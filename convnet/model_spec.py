"""Model specs: one short string names a model for the input-gradient methods.

The grammar, shared by every ``convnet`` subcommand that takes ``--model`` and usable from
Python::

    squeezenet          SqueezeNet v1.1 with its ImageNet weights (NumPy backend)
    PATH.npz            a model written by ``Sequential.save`` (NumPy backend; fed in the
                        input space the file records, e.g. [0, 1] grey for a model that
                        ``convnet train mnist`` wrote)
    keras:NAME          a ``keras.applications`` model, e.g. keras:mobilenet_v2 (TF backend)
    keras-file:PATH     a Keras classifier saved in a .keras / .h5 file (TF backend)

    backend = load_backend("keras:mobilenet", alpha=0.25, include_top=False)
    acts = backend.forward(x, ["conv_pw_5_relu"])

TensorFlow is imported only for ``keras:`` and ``keras-file:`` specs.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from convnet.backend import INPUT_SPACES, Backend, InputSpace, NumpyBackend
from convnet.errors import CheckpointError

__all__ = ["SPEC_HELP", "load_backend", "model_family", "parse_weights"]

#: One line describing the grammar (for ``--help`` texts and error messages).
SPEC_HELP = (
    "'squeezenet', a .npz model file saved with Sequential.save, keras:NAME, or "
    "keras-file:PATH (a .keras/.h5 classifier)"
)
KERAS_FILE = "keras-file:"


def model_family(spec: str) -> str:
    """The model's family name: ``"keras:vgg19"`` -> ``"vgg19"``; ``"squeezenet"`` as is.

    A ``.npz`` path gives ``"npz"`` (a user's own model has no family defaults), and
    ``keras-file:PATH`` gives ``"keras-file"``. Raises ValueError for a spec outside the
    grammar, without loading anything.
    """
    if spec == "squeezenet":
        return spec
    if spec.startswith(KERAS_FILE) and spec[len(KERAS_FILE):].strip():
        return "keras-file"
    if spec.startswith("keras:") and spec[len("keras:"):].strip():
        return spec[len("keras:"):].strip()
    if Path(spec).suffix == ".npz":
        return "npz"
    raise ValueError(f"--model must be {SPEC_HELP}, got {spec!r}")


def parse_weights(weights: str | os.PathLike | None) -> str | os.PathLike | None:
    """``"none"`` (any case) -> None (random initialisation); anything else as given."""
    if weights is None or str(weights).lower() == "none":
        return None
    return weights


def _input_space(name: str | None) -> InputSpace | None:
    if name is None:
        return None
    if name not in INPUT_SPACES:
        raise ValueError(
            f"unknown input space {name!r}; choose one of {', '.join(INPUT_SPACES)}"
        )
    return INPUT_SPACES[name]()


def _npz_backend(path: Path, space: InputSpace | None) -> Backend:
    from convnet.models.sequential import Sequential

    if path.is_dir():
        raise CheckpointError(f"model file {path} is a folder, not a .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    model = Sequential.load(path)  # CheckpointError naming the file when it is damaged
    if space is None:
        space = getattr(model, "input_space", None)
    if space is None:
        # files written before models recorded their input space: MNIST-style grey in
        # [-1, 1] (the one-convolution MNIST network), else RGB [0, 1]
        shape = model.input_shape
        grey = shape is not None and shape[0] == 1
        space = InputSpace.mnist_minus1_1() if grey else InputSpace.unit_rgb()
    return NumpyBackend(model, space)


def _squeezenet(weights: str | os.PathLike | None) -> Any:
    from convnet.models.squeezenet import SqueezeNet

    try:
        return SqueezeNet(weights)
    except (EOFError, zipfile.BadZipFile, KeyError) as exc:  # empty or truncated .npz
        raise CheckpointError(f"SqueezeNet weights file {weights}: not a readable .npz "
                              f"({type(exc).__name__}: {exc})") from exc  # fmt: skip


def load_backend(
    spec: str,
    input_space: str | None = None,
    alpha: float = 1.0,
    weights: str | os.PathLike | None = "imagenet",
    include_top: bool = True,
) -> Backend:
    """The backend a model spec names (see the module docstring for the grammar).

    Inputs:
    - spec: ``"squeezenet"``, ``"PATH.npz"``, ``"keras:NAME"`` (a name of
      ``convnet.interop.pretrained.MODEL_NAMES``) or ``"keras-file:PATH"`` (a .keras/.h5
      file; default input space RGB/grey [0, 1] by channel count).
    - input_space: name of an ``INPUT_SPACES`` preset overriding the model's own
      preprocessing. A .npz model uses the space its file records (``Sequential.save``
      writes ``model.input_space``); files without one get grey [-1, 1] for one channel,
      RGB [0, 1] for three.
    - alpha: width multiplier of keras:mobilenet / keras:mobilenet_v2 (e.g. 0.25).
    - weights: ``"imagenet"`` (default), a weights file, or None / ``"none"`` (random
      initialisation). For squeezenet a SqueezeNet ``.npz``, for keras: a Keras weights
      file. A ``.npz`` model carries its own weights, so it takes only ``"imagenet"``.
    - include_top: Keras only: keep the ImageNet classifier (fixed input size) or not (any
      size). NumPy models always keep theirs; their backends reach every layer anyway.

    Returns a :class:`convnet.backend.Backend`.

    Raises ValueError for a spec outside the grammar or options that do not apply to it,
    FileNotFoundError for a missing .npz file.
    """
    family = model_family(spec)
    space = _input_space(input_space)
    weights = parse_weights(weights)
    if alpha != 1.0 and not spec.startswith("keras:"):
        raise ValueError(f"alpha applies to keras:mobilenet(_v2) models only, not {spec!r}")
    if family == "squeezenet":
        return NumpyBackend(_squeezenet(weights), space)
    if family == "npz":
        if weights != "imagenet":
            raise ValueError(f"weights do not apply to {spec!r}: a .npz model holds its own")
        return _npz_backend(Path(spec), space)
    if family == "keras-file":
        if weights != "imagenet":
            raise ValueError(f"weights do not apply to {spec!r}: a Keras file holds its own")
        from convnet.interop.keras_file import load_keras_file

        return load_keras_file(spec[len(KERAS_FILE):].strip(), space)
    from convnet.interop.pretrained import keras_model

    backend = keras_model(family, include_top=include_top, weights=weights, alpha=alpha)
    if space is not None:
        backend.input_space = space
    return backend
