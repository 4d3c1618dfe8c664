"""PLACEHOLDER: to be written (see docs/internals.md)."""


def conv_forward(*args, **kwargs):
    raise NotImplementedError('conv_forward')


def conv_backward(*args, **kwargs):
    raise NotImplementedError('conv_backward')


def set_conv_backend(*args, **kwargs):
    raise NotImplementedError('set_conv_backend')

CONV_BACKENDS: dict = {}
