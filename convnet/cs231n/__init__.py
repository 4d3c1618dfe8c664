"""The CS231n (Stanford, 2018) assignment-2 starter kit's API on convnet's engine.

Code written for the kit runs with only its import prefix changed::

    from cs231n.layers import *            ->  from convnet.cs231n.layers import *
    from cs231n.classifiers.fc_net import * ->  from convnet.cs231n.classifiers.fc_net import *
    from cs231n.solver import Solver        ->  from convnet.cs231n.solver import Solver

Submodules, named as the kit's: ``layers``, ``fast_layers``, ``layer_utils``, ``optim``,
``solver``, ``gradient_check``, ``data_utils``, ``vis_utils``, ``classifiers.fc_net``,
``classifiers.cnn``. Every function is a thin adapter over convnet's own layers, update
rules, gradient checks and data loaders; it only translates the kit's conventions (dropout's
``p`` is the probability of KEEPING a unit, ``Solver`` samples minibatches with replacement
from ``np.random``, ...). docs/cs231n.md lists every difference from convnet's native API
and from the original kit.
"""
