"""Reading a Keras model as a graph: who feeds a layer, who reads it, its activation."""

from __future__ import annotations

from typing import Any


def inbound(layer: Any) -> list[str]:
    """Names of the layers whose outputs feed ``layer`` (in its first call)."""
    names: list[str] = []
    for node in getattr(layer, "_inbound_nodes", [])[:1]:
        for p in node.parent_nodes:
            names.append(p.operation.name)
    return names


def consumers(layers: list) -> dict[str, list[str]]:
    """Layer name -> the names of the layers that read its output."""
    out: dict[str, list[str]] = {lyr.name: [] for lyr in layers}
    for lyr in layers:
        for p in inbound(lyr):
            if p in out:
                out[p].append(lyr.name)
    return out


def act_name(act: Any) -> str:
    """The name of a Keras activation (``'linear'`` for None)."""
    if act is None:
        return "linear"
    if isinstance(act, str):
        return act
    return getattr(act, "__name__", str(act))


__all__ = ["act_name", "consumers", "inbound"]
