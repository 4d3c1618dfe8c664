"""The error every Keras converter raises, and the square-size check they all need."""

from __future__ import annotations

from typing import Any

from convnet.errors import ConvnetError


class KerasConversionError(ConvnetError):
    """A model (or one of its layers) cannot be converted exactly between convnet and Keras."""


def square(v: Any, what: str, lname: str) -> int:
    """A square size given as ``int`` or ``(a, a)``; a non-square pair is refused by name."""
    if isinstance(v, (tuple, list)):
        if len({int(t) for t in v}) != 1:
            raise KerasConversionError(
                f"layer {lname!r}: non-square {what} {tuple(v)} not supported"
            )
        return int(v[0])
    return int(v)
