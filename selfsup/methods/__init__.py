"""Pretraining methods, one file each, on the shared shell :class:`PretrainMethod`."""

from selfsup.methods.autoencoder import DenoisingAutoencoder
from selfsup.methods.base import PretrainMethod
from selfsup.methods.cpc import CPC
from selfsup.methods.deep_infomax import DeepInfoMax
from selfsup.methods.jigsaw import Jigsaw
from selfsup.methods.moco import MoCo
from selfsup.methods.relative_position import RelativePosition
from selfsup.methods.rotation import RotationPrediction
from selfsup.methods.simclr import SimCLR

__all__ = [
    "CPC",
    "DeepInfoMax",
    "DenoisingAutoencoder",
    "Jigsaw",
    "MoCo",
    "PretrainMethod",
    "RelativePosition",
    "RotationPrediction",
    "SimCLR",
]
