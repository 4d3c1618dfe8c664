"""Finding SqueezeNet's Fire module in a Keras graph (for ``from_keras``).

The pattern (Iandola et al. 2016, "SqueezeNet", arXiv:1602.07360): a 1x1 "squeeze" conv and
its ReLU feed two "expand" convs, 1x1 and 3x3 ('same', stride 1), each with a ReLU, whose
outputs are concatenated along channels, the 1x1 branch first. A ReLU is either fused into
the conv (``activation='relu'``) or a separate ``Activation('relu')`` / plain ``ReLU`` layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convnet.interop.keras.errors import square
from convnet.interop.keras.keras_graph import act_name, inbound


@dataclass(frozen=True)
class FireMatch:
    """The Keras layers of one Fire module; ``members`` are all of their names."""

    squeeze: Any
    expand1x1: Any
    expand3x3: Any
    concat: Any
    members: tuple[str, ...]


def _is_plain_relu(layer: Any) -> bool:
    kind = type(layer).__name__
    if kind == "Activation":
        return act_name(layer.activation) == "relu"
    return (kind == "ReLU" and layer.max_value is None and float(layer.negative_slope) == 0
            and float(layer.threshold) == 0)


def _relu_after(conv: Any, by_name: dict, consumers: dict) -> tuple[Any, list[str]]:
    """The layer whose output is relu(conv's output): the conv if fused, else the one layer
    after it; (None, []) if there is none."""
    if act_name(conv.activation) == "relu":
        return conv, [conv.name]
    nxt = consumers.get(conv.name, [])
    if len(nxt) == 1 and _is_plain_relu(by_name[nxt[0]]):
        return by_name[nxt[0]], [conv.name, nxt[0]]
    return None, []


def _expand_branches(sq_out: Any, by_name: dict, consumers: dict) -> list | None:
    """The two (conv, relu output, member names) branches read from the squeeze output."""
    branches = []
    for b in consumers.get(sq_out.name, []):
        conv = by_name[b]
        if type(conv).__name__ != "Conv2D":
            return None
        out, members = _relu_after(conv, by_name, consumers)
        if out is None:
            return None
        branches.append((conv, out, members))
    return branches if len(branches) == 2 else None


def _shapes_match(sq: Any, e1: Any, e3: Any, concat: Any) -> bool:
    return (square(e1.kernel_size, "k", e1.name) == 1 and square(e3.kernel_size, "k", e3.name) == 3
            and e3.padding == "same" and square(e3.strides, "s", e3.name) == 1
            and square(sq.kernel_size, "k", sq.name) == 1 and square(sq.strides, "s", sq.name) == 1
            and concat.axis in (-1, 3))


def match_fire(squeeze: Any, by_name: dict, consumers: dict) -> FireMatch | None:
    """The Fire module that starts with the Keras ``Conv2D`` ``squeeze``, or None.

    Inputs:
    - squeeze: a Keras Conv2D layer.
    - by_name: Keras layer name -> layer; consumers: name -> names of the layers reading it.
    """
    sq_out, members = _relu_after(squeeze, by_name, consumers)
    if sq_out is None:
        return None
    branches = _expand_branches(sq_out, by_name, consumers)
    if branches is None:
        return None
    reads = [consumers.get(out.name, []) for _, out, _ in branches]
    if len(reads[0]) != 1 or reads[0] != reads[1]:
        return None
    concat = by_name[reads[0][0]]
    if type(concat).__name__ != "Concatenate":
        return None
    order = inbound(concat)
    branches.sort(key=lambda b: order.index(b[1].name))
    (e1, _, m1), (e3, _, m3) = branches
    if not _shapes_match(squeeze, e1, e3, concat):
        return None
    return FireMatch(squeeze, e1, e3, concat, (*members, *m1, *m3, concat.name))


__all__ = ["FireMatch", "match_fire"]
