"""Exercise templates: student modules with every signature and docstring, and stub bodies.

``convnet exercise start NAME --dir DIR`` copies ``templates/NAME.py`` to ``DIR/NAME.py``;
every function in it raises ``NotImplementedError`` with a hint. The template sets
``__convnet_exercise__ = NAME`` so that ``convnet check --impl DIR/NAME.py`` grades exactly
the exercise's functions: the checks that call only those functions (see
:func:`convnet.checks.select_checks`), the extended ones left out.

The templates are written in our own words after convnet's layer contract; their
signatures are those of convnet's reference functions (``convnet.layers``,
``convnet.optim``), less the options a first implementation does not need (dilation,
Caffe ceil mode).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from convnet._io import atomic_write_text as write_text_atomic
from convnet.errors import ConvnetError

MARKER = "__convnet_exercise__"


@dataclass(frozen=True)
class Exercise:
    """One template: its name (also the file name), a one-line title and its functions."""

    name: str
    title: str
    functions: tuple[str, ...]

    def template(self) -> str:
        """The template's source text."""
        return (resources.files(__name__) / "templates" / f"{self.name}.py").read_text(
            encoding="utf-8")

    def checks(self) -> list:
        """The checks that grade this exercise (registry order)."""
        from convnet.checks import select_checks

        return select_checks(extended=False, functions=self.functions)


EXERCISES: dict[str, Exercise] = {e.name: e for e in (
    Exercise("fc_layers", "fully connected layers and losses: affine, ReLU, softmax, SVM",
             ("affine_forward", "affine_backward", "relu_forward", "relu_backward",
              "softmax_loss", "svm_loss")),
    Exercise("conv_naive", "convolution and max pooling as plain loops",
             ("conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
              "max_pool_backward_naive")),
    Exercise("conv_im2col", "im2col with stride tricks, col2im, convolution as a matrix "
             "product", ("im2col", "col2im", "conv_forward_im2col", "conv_backward_im2col")),
    Exercise("batchnorm_dropout", "batch normalisation (plain and spatial) and dropout",
             ("batchnorm_forward", "batchnorm_backward", "spatial_batchnorm_forward",
              "spatial_batchnorm_backward", "dropout_forward", "dropout_backward")),
    Exercise("update_rules", "update rules: SGD, momentum, RMSProp, Adam",
             ("sgd", "sgd_momentum", "rmsprop", "adam")),
)}


def get_exercise(name: str) -> Exercise:
    """The exercise called ``name``; ConvnetError (naming the choices) otherwise."""
    try:
        return EXERCISES[name]
    except KeyError:
        raise ConvnetError(f"unknown exercise {name!r}; choose one of: "
                           + ", ".join(EXERCISES)) from None


_MARKER_RE = re.compile(rf"^{MARKER}\s*=\s*['\"]([A-Za-z0-9_]+)['\"]", re.MULTILINE)


def exercise_of_file(path: str | os.PathLike) -> str | None:
    """The exercise a student file declares (its ``__convnet_exercise__ = "NAME"`` line),
    read as text, never imported; None when there is none or the file cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(1_000_000)
    except OSError:
        return None
    m = _MARKER_RE.search(text)
    return m.group(1) if m and m.group(1) in EXERCISES else None


def start(name: str, directory: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the template of exercise ``name`` to ``directory/name.py`` and return the path.

    The folder is created. An existing file is kept (ConvnetError) unless ``overwrite``:
    it may hold a student's work. The file is written atomically with the permissions a
    plain ``open`` would give.
    """
    ex = get_exercise(name)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConvnetError(f"--dir {directory} exists and is not a folder")
    path = directory / f"{ex.name}.py"
    if path.exists() and not overwrite:
        raise ConvnetError(f"{path} already exists (it may hold your work); "
                           "pass --overwrite to replace it with a fresh template")
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, ex.template())
    return path
