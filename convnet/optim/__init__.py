"""Update rules ``next_w, config = rule(w, dw, config)`` and learning-rate schedules."""

from convnet.optim.rules import (
    KERAS_DEFAULTS,
    UPDATE_RULES,
    adam,
    get_update_rule,
    nesterov,
    rmsprop,
    sgd,
    sgd_momentum,
)
from convnet.optim.schedules import (
    Schedule,
    constant,
    cosine_decay,
    exponential_decay,
    learning_rate_at,
    step_decay,
)

__all__ = [
    "KERAS_DEFAULTS",
    "UPDATE_RULES",
    "adam",
    "get_update_rule",
    "nesterov",
    "rmsprop",
    "sgd",
    "sgd_momentum",
    "Schedule",
    "constant",
    "cosine_decay",
    "exponential_decay",
    "learning_rate_at",
    "step_decay",
]
