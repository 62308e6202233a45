"""What a run does around the method, registered by ``selfsup fit`` rather than hidden in it.

Lightning callbacks: :class:`BackboneExport` (the input format in every checkpoint,
``backbone.pt`` at the end), :class:`RandomStateCheckpoint` (every rank's random
generators in every checkpoint, for exact resume), :class:`RequeueOnSignal` (SLURM
preemption), :class:`LogAugmentedViews` (a W&B image of the views) and
:class:`RunSummary` (where everything went). Beside them: :class:`SafeCheckpointIO`
(atomic writes, safe reads) and :func:`check_devices` (refuse impossible device
requests before any process starts).

A LightningModule used without the CLI trains the same; add these callbacks to your
``Trainer`` for what they give.
"""

from selfsup.runtime.backbone_export import BackboneExport
from selfsup.runtime.checkpoint_io import SafeCheckpointIO
from selfsup.runtime.devices import check_devices
from selfsup.runtime.random_state import RandomStateCheckpoint
from selfsup.runtime.requeue import RequeueOnSignal
from selfsup.runtime.run_summary import RunSummary
from selfsup.runtime.views_image import LogAugmentedViews

__all__ = [
    "BackboneExport",
    "LogAugmentedViews",
    "RandomStateCheckpoint",
    "RequeueOnSignal",
    "RunSummary",
    "SafeCheckpointIO",
    "check_devices",
]
