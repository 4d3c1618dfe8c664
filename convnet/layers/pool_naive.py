"""PLACEHOLDER: to be written (see docs/internals.md)."""


def max_pool_forward_naive(*args, **kwargs):
    raise NotImplementedError('max_pool_forward_naive')


def max_pool_backward_naive(*args, **kwargs):
    raise NotImplementedError('max_pool_backward_naive')

