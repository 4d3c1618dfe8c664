"""PLACEHOLDER: to be written (see docs/internals.md)."""


def avg_pool_forward(*args, **kwargs):
    raise NotImplementedError('avg_pool_forward')


def avg_pool_backward(*args, **kwargs):
    raise NotImplementedError('avg_pool_backward')

