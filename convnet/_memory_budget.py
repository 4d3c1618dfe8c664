"""Memory budget of the image commands: estimate what a run needs before it starts, and
refuse in one line what would not fit (instead of swapping, a ``MemoryError`` half-way, or
the kernel's OOM killer).

The estimate (a deliberately simple model, not a measurement of the run itself)::

    bytes = (ACTIVATION_FACTOR * activation_bytes_per_pixel + PIXEL_BYTES) * H * W * images

* activation bytes per pixel: one forward pass of a small probe image (``PROBE_SIDE``
  pixels square, or the model's own size if it takes only one) through every layer; the
  bytes of all layer outputs divided by the probe's pixel count. Convolutional activations
  grow with H * W, so this scales to any size (border effects aside).
* ``ACTIVATION_FACTOR`` = 4: the forward outputs, the caches the backward pass keeps
  (im2col columns, pooling switches), the gradients flowing back and temporaries. Measured
  on SqueezeNet (NumPy backend): 289 bytes of activations per pixel; the peak resident
  memory of ``convnet classviz --size 1024`` grew by 730 bytes per pixel (2.5x), so 4 keeps a
  margin.
* ``PIXEL_BYTES``: the image, its gradient and optimiser state in float32/float64 (64 bytes
  per pixel covers Adam's two moments and a few copies of 3 channels).

The limit (:func:`memory_limit`), first that is set:

1. ``--max-memory MB`` of the command;
2. the environment variable ``CONVNET_MAX_MEMORY_MB``;
3. ``DEFAULT_FRACTION`` (50%) of the memory available now: the smallest of
   ``MemAvailable`` in ``/proc/meminfo``, the cgroup's ``memory.max - memory.current``
   (containers), and ``RLIMIT_AS`` minus the process's current virtual size (``ulimit -v``).
   Where none of these can be read (not Linux), no default limit applies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convnet.errors import ConvnetError

__all__ = [
    "ACTIVATION_FACTOR",
    "DEFAULT_FRACTION",
    "MemoryBudgetError",
    "Estimate",
    "activation_bytes_per_pixel",
    "available_bytes",
    "check_memory",
    "estimate_images",
    "memory_limit",
]

ACTIVATION_FACTOR = 4.0
PIXEL_BYTES = 64.0
PROBE_SIDE = 96  # large enough for every keras.applications model without its top (>= 75)
DEFAULT_FRACTION = 0.5
ENV = "CONVNET_MAX_MEMORY_MB"
MB = 1024 * 1024


class MemoryBudgetError(ConvnetError, MemoryError):
    """A run's estimated memory is over the limit; the message names the options to change."""


@dataclass(frozen=True)
class Estimate:
    """Estimated peak bytes of a run and what it is made of (for messages and tests)."""

    bytes: float
    detail: str


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def _vm_size() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _rlimit_available() -> int | None:
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _vm_size()
    return None if used is None else soft - used


def available_bytes() -> int | None:
    """Memory this process can still take, in bytes (see the module docstring), or None."""
    found = [v for v in (_meminfo_available(), _cgroup_available(), _rlimit_available())
             if v is not None]  # fmt: skip
    return max(0, min(found)) if found else None


def memory_limit(max_memory_mb: float | None = None) -> tuple[float | None, str]:
    """(limit in bytes or None, where it comes from) as the module docstring orders them."""
    if max_memory_mb is not None:
        return float(max_memory_mb) * MB, f"--max-memory {max_memory_mb:g}"
    env = os.environ.get(ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            value = float("nan")
        if not (value > 0 and np.isfinite(value)):
            raise ConvnetError(f"{ENV}={env!r} must be a positive number of megabytes")
        return value * MB, f"{ENV}={env}"
    avail = available_bytes()
    if avail is None:
        return None, "no limit (available memory unknown)"
    return DEFAULT_FRACTION * avail, (
        f"{DEFAULT_FRACTION:.0%} of the {avail / MB:,.0f} MB available"
    )


def activation_bytes_per_pixel(backend: Any) -> float:
    """Bytes of every layer's output per input pixel, measured with one small probe image.

    A model that takes only one size is probed at that size; any other at PROBE_SIDE
    square. Returns bytes per pixel of one image.
    """
    if backend.input_shape is not None:
        c, h, w = (int(v) for v in backend.input_shape)
    else:
        c, h, w = backend.input_space.channels, PROBE_SIDE, PROBE_SIDE
    dtype = getattr(backend, "dtype", np.float32)
    acts = backend.forward(np.zeros((1, c, h, w), dtype), list(backend.layer_names))
    total = sum(np.asarray(a).nbytes for a in acts.values())
    return total / float(h * w)


def estimate_images(backend: Any, hw: tuple[int, int], images: float = 1.0,
                    per_pixel: float | None = None,
                    model_hw: tuple[int, int] | None = None) -> Estimate:  # fmt: skip
    """Estimated peak bytes of optimising ``images`` images of ``hw`` pixels through the model.

    - per_pixel: activation bytes per pixel if already measured (else measured here).
    - model_hw: the part of the image that goes through the model at once, if smaller
      (a tile); default the whole image.
    """
    if per_pixel is None:
        per_pixel = activation_bytes_per_pixel(backend)
    pixels = float(hw[0]) * float(hw[1]) * images
    through = pixels if model_hw is None else min(pixels, float(model_hw[0] * model_hw[1]))
    need = ACTIVATION_FACTOR * per_pixel * through + PIXEL_BYTES * pixels
    n = f"{images:g} images of " if images != 1 else ""
    return Estimate(need, f"{n}{hw[0]}x{hw[1]} pixels at ~{ACTIVATION_FACTOR * per_pixel:,.0f} "
                          "bytes per pixel")  # fmt: skip


def check_memory(estimate: Estimate | float, max_memory_mb: float | None, fix: str,
                 who: str = "this run") -> float | None:  # fmt: skip
    """Raise MemoryBudgetError if ``estimate`` is over the limit; returns the limit (bytes).

    ``fix``: what to change, in the command's own words (e.g. "lower --size").
    """
    if not isinstance(estimate, Estimate):
        estimate = Estimate(float(estimate), "")
    limit, source = memory_limit(max_memory_mb)
    if limit is not None and estimate.bytes > limit:
        detail = f" ({estimate.detail})" if estimate.detail else ""
        raise MemoryBudgetError(
            f"{who} needs about {_human(estimate.bytes)}{detail}, over the limit of "
            f"{_human(limit)} ({source}): {fix}, or raise the limit with --max-memory MB"
        )
    return limit


def _human(n: float) -> str:
    for unit, size in (("TB", 1024**4), ("GB", 1024**3), ("MB", MB)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1024:,.0f} KB"
