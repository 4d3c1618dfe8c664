"""PLACEHOLDER: to be written (see docs/internals.md)."""


def max_pool_forward(*args, **kwargs):
    raise NotImplementedError('max_pool_forward')


def max_pool_backward(*args, **kwargs):
    raise NotImplementedError('max_pool_backward')


def set_pool_backend(*args, **kwargs):
    raise NotImplementedError('set_pool_backend')

POOL_BACKENDS: dict = {}
