"""PLACEHOLDER: to be written (see docs/internals.md)."""


def concat_forward(*args, **kwargs):
    raise NotImplementedError('concat_forward')


def concat_backward(*args, **kwargs):
    raise NotImplementedError('concat_backward')


def global_avg_pool_forward(*args, **kwargs):
    raise NotImplementedError('global_avg_pool_forward')


def global_avg_pool_backward(*args, **kwargs):
    raise NotImplementedError('global_avg_pool_backward')

