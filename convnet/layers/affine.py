"""PLACEHOLDER: to be written (see docs/internals.md)."""


def affine_forward(*args, **kwargs):
    raise NotImplementedError('affine_forward')


def affine_backward(*args, **kwargs):
    raise NotImplementedError('affine_backward')


def flatten_forward(*args, **kwargs):
    raise NotImplementedError('flatten_forward')


def flatten_backward(*args, **kwargs):
    raise NotImplementedError('flatten_backward')


def reshape_forward(*args, **kwargs):
    raise NotImplementedError('reshape_forward')


def reshape_backward(*args, **kwargs):
    raise NotImplementedError('reshape_backward')

