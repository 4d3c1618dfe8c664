"""The check registry behind ``convnet check``: every layer, forward and backward.

Each :class:`Check` tests one property of one layer (a row of the table): the forward
output against a small independent reference (:mod:`convnet.checks.references`: einsum over
sliding windows, or the direct formula) on fixed seeded float64 inputs, or the backward pass
against numerical gradients (:func:`convnet.gradcheck.check_layer`), or an algebraic
identity (col2im is the adjoint of im2col, the transposed convolution the adjoint of the
convolution). Fast backends face the same references and shapes as the naive ones,
including stride 2, padding and overlapping 3x3 stride-2 pooling windows, so the classic
bugs show up:

* max-pool backward that assigns instead of accumulating (overlapping windows);
* im2col that is wrong for stride > 1;
* col2im that overwrites instead of summing (not the adjoint of im2col);
* conv backward that ignores the padding.

Where to read what (each module's docstring says what its checks catch and why the
tolerances are what they are):

========================  ==========================================================
``registry``              :class:`Check`, :class:`CheckResult`, statuses, tolerances,
                          :func:`register`, :data:`REGISTRY`
``references``            the independent references (conv, pooling, normalisation,
                          losses, update rules)
``compare``               forward vs reference, backward vs numerical, float32 runs
``conv``                  conv backends, Winograd, im2col/col2im, transposed conv
``pooling``               max-pool backends, average pooling
``dense``                 affine, flatten, reshape, activations, concat, dropout
``normalization``         batch norm (and its staged backward), layer norm, group norm
``losses``                softmax, SVM, MSE, BCE, Gaussian KL, softmax
``update_rules``          SGD, momentum, RMSProp, Adam
``families``              the order of the families, hence of the table's rows
``student``               loading a student's file, stubs, the input-mutation guard
``runner``                :func:`select_checks`, :func:`run_check`, :func:`run_checks`
========================  ==========================================================

An implementation is any object with the layer functions as attributes: ``convnet.layers``
(the default) or a student's module loaded from a path (:func:`load_student_module`). A check
whose functions the implementation does not define is MISSING; one whose function is a stub
(its body only raises ``NotImplementedError``, or it raises it when called) is
NOT_IMPLEMENTED. Neither fails the run. Any other exception is a FAIL with the exception in
the note, and so is a call that changes one of its array inputs in place (the harness
compares every array argument, and the arrays inside a ``cache`` tuple, before and after
each call: "relu_forward mutates its input x").

``extended`` checks exercise contract features beyond the cs231n assignment (dilation,
max-pool padding and Caffe ceil mode, group-norm parameters of shape (C,)); they run on
convnet's own layers by default and on a student's module only when asked.
"""

from __future__ import annotations

# The families register their checks on import, in the table's order: first, before any
# family module is imported by name (an import sorter would put those in alphabetical order).
from convnet.checks.families import ALL_FUNCTION_NAMES, FAMILIES
from convnet.checks.registry import (
    ADJ_TOL,
    BWD_TOL,
    F32_TOL,
    FAIL,
    FWD_TOL,
    MISSING,
    NOT_IMPLEMENTED,
    PASS,
    REGISTRY,
    STATUSES,
    Check,
    CheckResult,
    Getter,
    register,
)

# isort: split
from convnet.checks.conv import CONV_BACKENDS, CONV_FWD_CASES
from convnet.checks.pooling import POOL_BACKENDS, POOL_FWD_CASES
from convnet.checks.references import (
    ref_adam,
    ref_avg_pool,
    ref_batchnorm,
    ref_bce_loss,
    ref_conv,
    ref_conv_transpose,
    ref_gaussian_kl,
    ref_groupnorm,
    ref_layernorm,
    ref_max_pool,
    ref_max_pool_backward,
    ref_mse_loss,
    ref_rmsprop,
    ref_sgd,
    ref_sgd_momentum,
    ref_softmax_loss,
    ref_svm_loss,
)
from convnet.checks.runner import default_impl, run_check, run_checks, select_checks
from convnet.checks.student import (
    InputMutatedError,
    NothingToCheckError,
    defined_functions,
    guard_inputs,
    load_student_module,
    stub_functions,
)
from convnet.checks.update_rules import UPDATE_RULE_CASES

__all__ = [
    "ADJ_TOL", "ALL_FUNCTION_NAMES", "BWD_TOL", "CONV_BACKENDS", "CONV_FWD_CASES", "F32_TOL",
    "FAIL", "FAMILIES", "FWD_TOL", "MISSING", "NOT_IMPLEMENTED", "PASS", "POOL_BACKENDS",
    "POOL_FWD_CASES", "REGISTRY", "STATUSES", "UPDATE_RULE_CASES", "Check", "CheckResult",
    "Getter", "InputMutatedError", "NothingToCheckError", "default_impl", "defined_functions",
    "guard_inputs", "load_student_module", "ref_adam", "ref_avg_pool", "ref_batchnorm",
    "ref_bce_loss", "ref_conv", "ref_conv_transpose", "ref_gaussian_kl", "ref_groupnorm",
    "ref_layernorm", "ref_max_pool", "ref_max_pool_backward", "ref_mse_loss", "ref_rmsprop",
    "ref_sgd", "ref_sgd_momentum", "ref_softmax_loss", "ref_svm_loss", "register",
    "run_check", "run_checks", "select_checks", "stub_functions",
]
