"""Pretraining datamodules: digits (embedded), CIFAR-10/100, STL-10, image folders."""

from selfsup.data.augment import Augmentation, ViewGroup, eval_transform, view_transform
from selfsup.data.base import PretrainDataModule
from selfsup.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from selfsup.data.digits import DIGITS_AUGMENTATION, DigitsDataModule, digits_split
from selfsup.data.folder import ImageFolderDataModule
from selfsup.data.stl10 import STL10DataModule

__all__ = [
    "DIGITS_AUGMENTATION",
    "Augmentation",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "PretrainDataModule",
    "STL10DataModule",
    "ViewGroup",
    "digits_split",
    "eval_transform",
    "view_transform",
]
