"""The families of checks, in the order of the rows of the ``convnet check`` table.

Each family is a module that registers its checks when imported; importing them in this
order fixes the order of :data:`~convnet.checks.registry.REGISTRY`. The import is by name
from :data:`FAMILIES` (not by ``import`` statements, which an import sorter would put in
alphabetical order).
"""

from __future__ import annotations

import importlib

from convnet.checks.registry import REGISTRY

FAMILIES = ("conv", "pooling", "dense", "normalization", "losses", "update_rules")

for _family in FAMILIES:
    importlib.import_module(f"convnet.checks.{_family}")

# Every function some check calls: what a student's module is searched for.
ALL_FUNCTION_NAMES: tuple[str, ...] = tuple(sorted({n for c in REGISTRY for n in c.needs}))
