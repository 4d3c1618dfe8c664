"""Exceptions a user can cause. The CLI turns these into one line and exit code 2."""


class ConvnetError(Exception):
    """Base class of every error convnet raises on purpose."""


class LayerInputError(ConvnetError, ValueError):
    """Bad input to a layer function (wrong shape, dtype or parameter); the message names
    the function and the expected shape. A ``ValueError`` too, as the layer contract says."""


class DataError(ConvnetError):
    """A data file is missing, corrupt or of the wrong format; the message names the file."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file is not available locally (and may not be downloaded)."""


class TrainingDivergedError(ConvnetError, FloatingPointError):
    """Training produced NaN or Inf; the last good checkpoint is kept."""


class NonFiniteError(ConvnetError, FloatingPointError):
    """An input-gradient method's image became NaN or Inf; the message names the step."""


class CheckpointError(ConvnetError):
    """A checkpoint or model file does not match the model it is loaded into."""
