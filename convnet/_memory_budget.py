"""Memory budget of the image commands: estimate what a run needs before it starts, and
refuse in one line what would not fit (instead of swapping, a ``MemoryError`` half-way, or
the kernel's OOM killer).

The estimate (a deliberately simple model, not a simulation of the run)::

    bytes = fixed + (per_pixel + PIXEL_BYTES) * H * W * images

* ``fixed`` and ``per_pixel`` (:func:`measure_footprint`): the peak NumPy memory
  (``tracemalloc``) of one forward pass through every layer and one backward pass, for
  probe images of ``PROBE_SIDE`` and ``2 * PROBE_SIDE`` pixels square; the slope between
  the two is the cost per pixel (activations, the caches the backward pass keeps such as
  im2col columns and pooling switches, gradients), the rest is fixed (weight gradients).
  Convolutional memory grows with H * W, so this extrapolates to any size. The slope is at
  least ``ACTIVATION_FACTOR`` (5) times the bytes of every layer's output, a floor for
  memory ``tracemalloc`` does not see (TensorFlow's). Checked against measurements: for
  SqueezeNet the estimate is about 1,400 bytes per pixel while the peak resident memory of
  ``convnet classviz --size 1024`` grew by 730; for a two-layer convnet whose 3x3 im2col
  columns outweigh its outputs, 414 estimated against 315 traced (tests/cli).
* ``EXTRA_BYTES``: what a parameterisation adds per pixel, on top of ``PIXEL_BYTES``:
  the Fourier parameterisation with the robust transforms (pad, scale, rotate) of feature
  visualisation measured 210 bytes per pixel more than plain pixels; 256 is used.
* ``PIXEL_BYTES``: the image, its gradient and optimiser state (64 bytes per pixel covers
  Adam's two moments and a few float32/float64 copies of 3 channels).

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
    "Footprint",
    "activation_bytes_per_pixel",
    "available_bytes",
    "bytes_per_pixel",
    "check_memory",
    "estimate_images",
    "measure_footprint",
    "memory_limit",
]

ACTIVATION_FACTOR = 5.0  # floor: forward outputs, caches, gradients, temporaries
PIXEL_BYTES = 64.0
#: Extra bytes per pixel of an image parameterisation (see the module docstring).
EXTRA_BYTES = {"pixel": 0.0, "fourier": 256.0}
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


@dataclass(frozen=True)
class Footprint:
    """Measured memory of one forward and backward pass: ``fixed + per_pixel * H * W`` bytes."""

    fixed: float
    per_pixel: float


def _probe(backend: Any, side: int) -> np.ndarray:
    """A zero probe image (1, C, H, W): the model's own size if it has one, else side x side."""
    if backend.input_shape is not None:
        c, h, w = (int(v) for v in backend.input_shape)
    else:
        c, h, w = backend.input_space.channels, side, side
    return np.zeros((1, c, h, w), getattr(backend, "dtype", np.float32))


def activation_bytes_per_pixel(backend: Any, side: int = PROBE_SIDE) -> float:
    """Bytes of every layer's output per input pixel, for one probe image (see module doc)."""
    x = _probe(backend, side)
    acts = backend.forward(x, list(backend.layer_names))
    return sum(np.asarray(a).nbytes for a in acts.values()) / float(x.shape[2] * x.shape[3])


def _pass_peak(backend: Any, x: np.ndarray, trace: bool) -> tuple[float, float]:
    """(traced peak bytes, bytes of all layer outputs) of one forward + backward pass of x."""
    import tracemalloc

    names = list(backend.layer_names)
    if trace:
        tracemalloc.start()
    try:
        acts = backend.forward(x, names)
        outputs = float(sum(np.asarray(a).nbytes for a in acts.values()))
        backend.vjp({names[-1]: np.ones_like(np.asarray(acts[names[-1]]))})
        peak = float(tracemalloc.get_traced_memory()[1]) if trace else 0.0
    finally:
        if trace:
            tracemalloc.stop()
    return peak, outputs


def measure_footprint(backend: Any) -> Footprint:
    """The memory of one forward and backward pass as ``fixed + per_pixel * H * W``.

    Two probes (PROBE_SIDE and twice that, after an untraced warm-up that compiles kernels)
    give the slope per pixel and the fixed part (weight gradients, buffers). The slope is at
    least ``ACTIVATION_FACTOR`` times the layer outputs per pixel, the floor for memory that
    ``tracemalloc`` does not see (TensorFlow's) or when it is already in use. A model with
    one input size is probed at that size (fixed part 0).
    """
    import tracemalloc

    trace = not tracemalloc.is_tracing()
    small = _probe(backend, PROBE_SIDE)
    _pass_peak(backend, small, trace=False)  # warm-up: JIT compilation is not the model's
    peak1, out1 = _pass_peak(backend, small, trace)
    px1 = float(small.shape[2] * small.shape[3])
    floor = ACTIVATION_FACTOR * out1 / px1
    if backend.input_shape is not None:
        return Footprint(0.0, max(peak1 / px1, floor))
    large = _probe(backend, 2 * PROBE_SIDE)
    peak2, _ = _pass_peak(backend, large, trace)
    px2 = float(large.shape[2] * large.shape[3])
    slope = max((peak2 - peak1) / (px2 - px1), floor)
    return Footprint(max(0.0, peak2 - slope * px2), slope)


def bytes_per_pixel(backend: Any) -> float:
    """The per-pixel part of :func:`measure_footprint`."""
    return measure_footprint(backend).per_pixel


def estimate_images(backend: Any, hw: tuple[int, int], images: float = 1.0,
                    footprint: Footprint | None = None,
                    model_hw: tuple[int, int] | None = None,
                    extra_per_pixel: float = 0.0) -> Estimate:  # fmt: skip
    """Estimated peak bytes of optimising ``images`` images of ``hw`` pixels through the model.

    - footprint: :func:`measure_footprint` if already measured (else measured here).
    - model_hw: the part of the image that goes through the model at once, if smaller
      (a tile); default the whole image.
    - extra_per_pixel: bytes per image pixel beyond ``PIXEL_BYTES`` (``EXTRA_BYTES``).
    """
    if footprint is None:
        footprint = measure_footprint(backend)
    pixels = float(hw[0]) * float(hw[1]) * images
    through = pixels if model_hw is None else min(pixels, float(model_hw[0] * model_hw[1]))
    image = (PIXEL_BYTES + extra_per_pixel) * pixels
    need = footprint.fixed + footprint.per_pixel * through + image
    n = f"{images:g} images of " if images != 1 else ""
    return Estimate(need, f"{n}{hw[0]}x{hw[1]} pixels at ~{footprint.per_pixel:,.0f} bytes "
                          "per pixel")  # fmt: skip


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
