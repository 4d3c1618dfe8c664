"""TensorFlow/Keras interop: Keras twins of convnet models, weight conversion, cross-checks.

Nothing here imports TensorFlow at import time: ``convnet.interop._tf.import_tf()`` does it
lazily inside the functions that need it. Import the submodules explicitly::

    from convnet.interop.keras import to_keras, from_keras, compare
"""

from convnet.interop._tf import TensorFlowNotAvailableError, import_keras, import_tf

__all__ = ["TensorFlowNotAvailableError", "import_keras", "import_tf"]
