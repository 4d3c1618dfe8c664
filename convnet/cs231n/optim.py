"""The kit's ``optim`` module: update rules ``next_w, config = rule(w, dw, config)``.

These are convnet's own rules, whose defaults are the kit's: ``sgd`` (learning_rate 1e-2),
``sgd_momentum`` (1e-2, momentum 0.9, state ``velocity``), ``rmsprop`` (1e-2, decay_rate
0.99, epsilon 1e-8, state ``cache``), ``adam`` (1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8,
state ``m``, ``v``, ``t``; ``t`` is incremented before the step). The config also records
convnet's extra settings (``weight_decay`` 0, ``epsilon_placement``) at their neutral
defaults.
"""

from convnet.optim.rules import adam, rmsprop, sgd, sgd_momentum

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam"]
