"""Datasets (MNIST, CIFAR-10), ImageNet labels, user images; search path, cache, downloads."""

from convnet.data.cifar10 import CIFAR10_CLASSES, load_cifar10, read_cifar_pickle
from convnet.data.imagenet import decode_predictions, imagenet_labels
from convnet.data.images import (
    MAX_PIXELS,
    from_nchw,
    load_image,
    preprocess_digit,
    save_image,
    scale_pixels,
    to_nchw,
)
from convnet.data.mnist import MNIST_FILES, load_mnist, read_idx
from convnet.data.store import (
    RESOURCES,
    Resource,
    cache_dir,
    download_file,
    find_data_file,
    offline,
    search_dirs,
)

__all__ = [
    "CIFAR10_CLASSES",
    "load_cifar10",
    "read_cifar_pickle",
    "decode_predictions",
    "imagenet_labels",
    "MAX_PIXELS",
    "from_nchw",
    "load_image",
    "preprocess_digit",
    "save_image",
    "scale_pixels",
    "to_nchw",
    "MNIST_FILES",
    "load_mnist",
    "read_idx",
    "RESOURCES",
    "Resource",
    "cache_dir",
    "download_file",
    "find_data_file",
    "offline",
    "search_dirs",
]
