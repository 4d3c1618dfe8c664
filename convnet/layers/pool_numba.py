"""PLACEHOLDER: to be written (see docs/internals.md)."""


def max_pool_forward_numba(*args, **kwargs):
    raise NotImplementedError('max_pool_forward_numba')


def max_pool_backward_numba(*args, **kwargs):
    raise NotImplementedError('max_pool_backward_numba')

