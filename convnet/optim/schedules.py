"""Learning-rate schedules: functions of the epoch that return a multiplier of the base rate.

Each factory returns a callable ``schedule(epoch) -> float`` (epoch counted from 0) giving
the factor by which the *initial* learning rate is multiplied during that epoch, so
``lr(epoch) = base_lr * schedule(epoch)`` (use :func:`learning_rate_at`). Multipliers rather
than absolute rates keep one schedule usable with any base rate and any update rule.

    constant()                          1
    step_decay(step_size, gamma=0.1)    gamma ** (epoch // step_size)
    exponential_decay(gamma)            gamma ** epoch         (cs231n's per-epoch lr_decay)
    cosine_decay(total_epochs, ...)     min + (1 - min) * (1 + cos(pi * e / total)) / 2
"""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int], float]

__all__ = [
    "Schedule",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "learning_rate_at",
]


def _epoch(name: str, epoch: int) -> int:
    if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
        raise ValueError(f"{name}: epoch must be a non-negative integer, got {epoch!r}")
    return int(epoch)


def constant() -> Schedule:
    """The constant schedule: multiplier 1 in every epoch."""

    def schedule(epoch: int) -> float:
        _epoch("constant", epoch)
        return 1.0

    return schedule


def step_decay(step_size: int, gamma: float = 0.1) -> Schedule:
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    Inputs:
    - step_size: positive int, epochs between drops.
    - gamma: factor per drop, in (0, 1].

    Returns: ``schedule(epoch) = gamma ** (epoch // step_size)``.
    """
    if int(step_size) != step_size or step_size < 1:
        raise ValueError(f"step_decay: step_size must be a positive int, got {step_size!r}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"step_decay: gamma must be in (0, 1], got {gamma!r}")

    def schedule(epoch: int) -> float:
        return float(gamma) ** (_epoch("step_decay", epoch) // int(step_size))

    return schedule


def exponential_decay(gamma: float) -> Schedule:
    """Multiply the rate by ``gamma`` every epoch (cs231n's ``lr_decay``).

    Returns: ``schedule(epoch) = gamma ** epoch``.
    """
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"exponential_decay: gamma must be in (0, 1], got {gamma!r}")

    def schedule(epoch: int) -> float:
        return float(gamma) ** _epoch("exponential_decay", epoch)

    return schedule


def cosine_decay(total_epochs: int, min_factor: float = 0.0, warmup_epochs: int = 0) -> Schedule:
    """Cosine annealing (Loshchilov & Hutter 2017, no restarts), with optional linear warm-up.

    Inputs:
    - total_epochs: epochs over which the factor falls from 1 to ``min_factor``; later epochs
      stay at ``min_factor``.
    - min_factor: final multiplier in [0, 1].
    - warmup_epochs: the first epochs ramp linearly ``(e + 1) / (warmup_epochs + 1)`` before
      the cosine starts (0: none).

    Returns: ``schedule(epoch)`` =
    ``min + (1 - min) * (1 + cos(pi * (e - warmup) / (total - warmup))) / 2``.
    """
    if int(total_epochs) != total_epochs or total_epochs < 1:
        raise ValueError(f"cosine_decay: total_epochs must be a positive int, got {total_epochs!r}")
    if not 0.0 <= min_factor <= 1.0:
        raise ValueError(f"cosine_decay: min_factor must be in [0, 1], got {min_factor!r}")
    if int(warmup_epochs) != warmup_epochs or not 0 <= warmup_epochs < total_epochs:
        raise ValueError(
            "cosine_decay: warmup_epochs must be an int in [0, total_epochs), "
            f"got {warmup_epochs!r}"
        )
    total, warm = int(total_epochs), int(warmup_epochs)

    def schedule(epoch: int) -> float:
        e = _epoch("cosine_decay", epoch)
        if e < warm:
            return (e + 1) / (warm + 1)
        progress = min(1.0, (e - warm) / (total - warm))
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule


def learning_rate_at(base_lr: float, schedule: Schedule, epoch: int) -> float:
    """The learning rate during ``epoch``: ``base_lr * schedule(epoch)``."""
    return float(base_lr) * float(schedule(epoch))
