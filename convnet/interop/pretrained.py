"""Large pretrained Keras models (InceptionV3, MobileNet, MobileNetV2, VGG16/19, ...) as
input-gradient backends.

``keras_model(name, ...)`` builds the ``keras.applications`` model and wraps it in a
:class:`convnet.interop.tf_backend.TFBackend` whose input space is the model's own
preprocessing (``[-1, 1]`` for InceptionV3/MobileNet/Xception, Caffe BGR mean-subtracted for
VGG/ResNet50), so methods keep working in pixel units. Layer names are Keras' own
(``mixed0``..``mixed10``, ``block1_conv1``, ``conv_pw_13_relu``, ...).

Weights load the Keras way: ``weights="imagenet"`` looks for Keras' file name in
``$KERAS_HOME/models`` (default ``~/.keras/models``) and lets Keras download it once where
there is network. We look for the file *before* Keras does, so that:

* a file that is present is loaded directly (even from a read-only ``$KERAS_HOME``, where
  Keras itself would fall back to ``/tmp/.keras`` and try to download again);
* with ``CONVNET_OFFLINE=1`` a missing file raises one ``DataNotFoundError`` naming the file
  and the folder to put it in, instead of a network error from deep inside Keras.

``weights=None`` gives the architecture with random weights (tests, and users without the
files); ``weights=PATH`` loads a weights file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convnet.errors import ConvnetError, DataNotFoundError


@dataclass(frozen=True)
class _Spec:
    module: str  # keras.applications submodule
    cls: str  # constructor name
    space: str  # InputSpace preset: 'tf' ([-1, 1]) or 'caffe' (BGR minus ImageNet mean)
    default_size: int  # the size of the ImageNet weights (and of include_top models)
    min_size: int  # smallest input side Keras accepts without the top
    top_file: str = ""
    notop_file: str = ""


_SPECS: dict[str, _Spec] = {
    "inception_v3": _Spec(
        "inception_v3", "InceptionV3", "tf", 299, 75,
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "vgg16": _Spec(
        "vgg16", "VGG16", "caffe", 224, 32,
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "vgg19": _Spec(
        "vgg19", "VGG19", "caffe", 224, 32,
        "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "resnet50": _Spec(
        "resnet", "ResNet50", "caffe", 224, 32,
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "xception": _Spec(
        "xception", "Xception", "tf", 299, 71,
        "xception_weights_tf_dim_ordering_tf_kernels.h5",
        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    # File names depend on alpha and the input size: see _weights_file.
    "mobilenet": _Spec("mobilenet", "MobileNet", "tf", 224, 32),
    "mobilenet_v2": _Spec("mobilenet_v2", "MobileNetV2", "tf", 224, 32),
}

MODEL_NAMES: tuple[str, ...] = tuple(_SPECS)
_MOBILENET_ALPHAS = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
_MOBILENET_SIZES = (128, 160, 192, 224)
_MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` (default ~/.keras/models)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _rows(input_shape: tuple[int, ...] | None, sizes: tuple[int, ...], default: int) -> int:
    # Keras picks the weights of the input size when it is square and one it has weights
    # for, else the default size's (it warns); reproduce that to know the file name.
    if input_shape is None:
        return default
    rows, cols = input_shape[0], input_shape[1]
    return rows if rows == cols and rows in sizes else default


def weights_file(
    name: str,
    include_top: bool = True,
    alpha: float = 1.0,
    input_shape: tuple[int, int, int] | None = None,
) -> str:
    """Keras' file name for the ImageNet weights of a model (as in ``$KERAS_HOME/models``).

    Inputs:
    - name: one of ``MODEL_NAMES``.
    - include_top, alpha (MobileNet/MobileNetV2), input_shape (H, W, C) as for ``keras_model``.

    Returns the bare file name, e.g. ``mobilenet_2_5_224_tf_no_top.h5``.
    """
    spec = _spec(name)
    if name == "mobilenet":
        a = _MOBILENET_ALPHAS.get(float(alpha))
        if a is None:
            raise ValueError(
                f"keras_model('mobilenet'): ImageNet weights exist for alpha in "
                f"{sorted(_MOBILENET_ALPHAS)}, got {alpha}"
            )
        rows = _rows(input_shape, _MOBILENET_SIZES, 224)
        return f"mobilenet_{a}_{rows}_tf{'' if include_top else '_no_top'}.h5"
    if name == "mobilenet_v2":
        if float(alpha) not in _MOBILENET_V2_ALPHAS:
            raise ValueError(
                f"keras_model('mobilenet_v2'): ImageNet weights exist for alpha in "
                f"{list(_MOBILENET_V2_ALPHAS)}, got {alpha}"
            )
        rows = _rows(input_shape, _MOBILENET_V2_SIZES, 224)
        stem = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
        return f"{stem}.h5" if include_top else f"{stem}_no_top.h5"
    return spec.top_file if include_top else spec.notop_file


def _spec(name: str) -> _Spec:
    spec = _SPECS.get(name)
    if spec is None:
        raise ConvnetError(
            f"keras_model: unknown model {name!r}; available: {', '.join(MODEL_NAMES)}"
        )
    return spec


def find_weights(
    name: str,
    include_top: bool = True,
    alpha: float = 1.0,
    input_shape: tuple[int, int, int] | None = None,
) -> Path | None:
    """Path of the ImageNet weights file if it is already on disk, else None.

    Looks in ``$KERAS_HOME/models``, then ``~/.keras/models`` and ``/tmp/.keras/models``
    (where Keras caches when its home is not writable).
    """
    fname = weights_file(name, include_top, alpha, input_shape)
    dirs = [keras_cache_dir(), Path.home() / ".keras" / "models", Path("/tmp/.keras/models")]
    for d in dict.fromkeys(dirs):
        p = d / fname
        if p.is_file():
            return p
    return None


def input_space_for(name: str):
    """The :class:`InputSpace` of a Keras application's ``preprocess_input``."""
    from convnet.backend import InputSpace

    space = _spec(name).space
    return InputSpace.tf_minus1_1() if space == "tf" else InputSpace.caffe_vgg()


def _check_input_shape(name: str, spec: _Spec,
                       input_shape: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """``input_shape`` as ints, refused unless it is (H, W, 3) and large enough."""
    if input_shape is None:
        return None
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(
            f"keras_model({name!r}): input_shape must be (H, W, 3) (Keras NHWC order), "
            f"got {shape}"
        )
    if min(shape[:2]) < spec.min_size:
        raise ConvnetError(
            f"keras_model({name!r}): input must be at least {spec.min_size}x{spec.min_size}, "
            f"got {shape[0]}x{shape[1]}"
        )
    return shape  # type: ignore[return-value]


def _weights_source(
    name: str,
    weights: str | os.PathLike | None,
    include_top: bool,
    alpha: float,
    input_shape: tuple[int, int, int] | None,
) -> tuple[Path | None, str | None]:
    """(a weights file to load, or None; what to pass Keras as ``weights``)."""
    if weights is None:
        return None, None
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise DataNotFoundError(f"keras_model({name!r}): weights file {path} not found")
        return path, None
    path = find_weights(name, include_top, alpha, input_shape)
    if path is not None:
        return path, None
    fname = weights_file(name, include_top, alpha, input_shape)
    if os.environ.get("CONVNET_OFFLINE") == "1":
        raise _missing_weights(name, fname, "CONVNET_OFFLINE=1 forbids the download")
    return None, "imagenet"  # let Keras download it into its cache


def _missing_weights(name: str, fname: str, why: str) -> DataNotFoundError:
    """Where to put the ImageNet weights file, in words for Python and command-line users."""
    return DataNotFoundError(
        f"keras:{name}: ImageNet weights {fname} not found and {why}: put the file at "
        f"{keras_cache_dir() / fname} (KERAS_HOME chooses the folder), or pass another "
        "weights file (weights=PATH in Python, --weights PATH on the command line; "
        "--weights none for random weights)"
    )


def _is_download_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or "URL fetch failure" in str(exc)


def _download_error(name: str, fname: str, exc: Exception) -> DataNotFoundError:
    # Keras reports a failed download as a bare Exception ("URL fetch failure on ..."),
    # chained through several others; keep only its last line.
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > 200:
        reason = reason[:200] + "..."
    return _missing_weights(name, fname, f"the download failed ({reason})")


def build_keras_model(
    name: str,
    include_top: bool = False,
    weights: str | os.PathLike | None = "imagenet",
    alpha: float = 1.0,
    input_shape: tuple[int, int, int] | None = None,
) -> Any:
    """The ``keras.applications`` model itself (NHWC), weights loaded as described above.

    Inputs:
    - name: one of ``MODEL_NAMES`` ("inception_v3", "mobilenet", "mobilenet_v2", "vgg16",
      "vgg19", "resnet50", "xception").
    - include_top: keep the ImageNet classifier (then the input size is fixed to the
      model's default unless input_shape says otherwise).
    - weights: "imagenet", a path to a Keras weights file (.h5 / .weights.h5), or None
      (random initialisation).
    - alpha: width multiplier of MobileNet (0.25, 0.5, 0.75, 1.0) / MobileNetV2.
    - input_shape: (H, W, 3) in Keras' NHWC order, or None (any size without the top).

    Returns a ``keras.Model``.

    Raises:
    - DataNotFoundError (a ConvnetError) if the ImageNet weights file is missing and
      ``CONVNET_OFFLINE=1``; ConvnetError for an unknown name, a missing weights path, or an
      input smaller than the model accepts.
    """
    from convnet.interop._tf import import_keras

    spec = _spec(name)
    input_shape = _check_input_shape(name, spec, input_shape)
    path, keras_weights = _weights_source(name, weights, include_top, alpha, input_shape)
    keras = import_keras()
    ctor = getattr(getattr(keras.applications, spec.module), spec.cls)
    kwargs: dict[str, Any] = {"include_top": include_top, "weights": keras_weights}
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    if name in ("mobilenet", "mobilenet_v2"):
        kwargs["alpha"] = alpha
    try:
        model = ctor(**kwargs)
    except Exception as exc:  # Keras raises a bare Exception for a failed download
        if keras_weights != "imagenet" or not _is_download_error(exc):
            raise
        fname = weights_file(name, include_top, alpha, input_shape)
        raise _download_error(name, fname, exc) from None
    if path is not None:
        # The same call Keras makes after its own download, so the result is identical.
        model.load_weights(str(path))
    return model


def keras_model(
    name: str,
    include_top: bool = False,
    weights: str | os.PathLike | None = "imagenet",
    alpha: float = 1.0,
    input_shape: tuple[int, int, int] | None = None,
):
    """A pretrained Keras application as an input-gradient backend (NCHW in, NCHW out).

    Inputs: as :func:`build_keras_model` (``input_shape`` is Keras' (H, W, 3)).

    Returns a :class:`convnet.interop.tf_backend.TFBackend` with the model's input space
    (``backend.input_space``) and Keras' layer names (``backend.layer_names``); the Keras
    model itself is ``backend.model`` (NHWC).

    Example::

        net = keras_model("mobilenet", alpha=0.25)          # no top, any input size
        acts = net.forward(x_nchw, ["conv_pw_13_relu"])     # {name: (N, C, H, W)}
    """
    from convnet.interop.tf_backend import TFBackend

    model = build_keras_model(name, include_top, weights, alpha, input_shape)
    return TFBackend(model, input_space_for(name))


__all__ = [
    "MODEL_NAMES",
    "build_keras_model",
    "find_weights",
    "input_space_for",
    "keras_cache_dir",
    "keras_model",
    "weights_file",
]
