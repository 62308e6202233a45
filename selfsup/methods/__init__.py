"""Pretraining methods, one file each, on the shared shell :class:`PretrainMethod`."""

from selfsup.methods.amdim import AMDIM
from selfsup.methods.autoencoder import DenoisingAutoencoder
from selfsup.methods.base import PretrainMethod
from selfsup.methods.byol import BYOL
from selfsup.methods.cpc import CPC
from selfsup.methods.deep_infomax import DeepInfoMax
from selfsup.methods.dino import DINO
from selfsup.methods.distillation import Distillation
from selfsup.methods.jigsaw import Jigsaw
from selfsup.methods.mae import MAE
from selfsup.methods.moco import MoCo
from selfsup.methods.moco_v3 import MoCoV3
from selfsup.methods.relative_position import RelativePosition
from selfsup.methods.rotation import RotationPrediction
from selfsup.methods.simclr import SimCLR

__all__ = [
    "AMDIM",
    "BYOL",
    "CPC",
    "DINO",
    "DeepInfoMax",
    "DenoisingAutoencoder",
    "Distillation",
    "Jigsaw",
    "MAE",
    "MoCo",
    "MoCoV3",
    "PretrainMethod",
    "RelativePosition",
    "RotationPrediction",
    "SimCLR",
]
