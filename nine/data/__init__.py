"""Data: the datasets (MNIST, scikit-learn digits, CIFAR-10, generated dSprites) and the views."""

from nine.data.datasets import (
    IMAGE_SHAPES,
    IMAGE_SIZE,
    DataError,
    Split,
    check_images,
    held_out_test_images,
    load_cifar10,
    load_digits8,
    load_split,
    load_torchvision_mnist,
    to_images,
)
from nine.data.views import CROP_SIZE, centre_view, evaluation_view, random_view, simclr_view, training_view

__all__ = [
    "CROP_SIZE", "IMAGE_SHAPES", "IMAGE_SIZE", "DataError", "Split", "centre_view", "check_images",
    "evaluation_view", "held_out_test_images", "load_cifar10", "load_digits8", "load_split",
    "load_torchvision_mnist", "random_view", "simclr_view", "to_images", "training_view",
]
