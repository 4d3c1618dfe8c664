"""PLACEHOLDER: to be written (see docs/internals.md)."""


def batchnorm_forward(*args, **kwargs):
    raise NotImplementedError('batchnorm_forward')


def batchnorm_backward(*args, **kwargs):
    raise NotImplementedError('batchnorm_backward')


def spatial_batchnorm_forward(*args, **kwargs):
    raise NotImplementedError('spatial_batchnorm_forward')


def spatial_batchnorm_backward(*args, **kwargs):
    raise NotImplementedError('spatial_batchnorm_backward')

