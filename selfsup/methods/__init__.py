"""Pretraining methods, one file each, on the shared shell :class:`PretrainMethod`."""

from selfsup.methods.base import PretrainMethod
from selfsup.methods.moco import MoCo
from selfsup.methods.simclr import SimCLR

__all__ = ["MoCo", "PretrainMethod", "SimCLR"]
