"""An image of the augmented views the method trains on, logged once at the start of pretraining."""

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import WandbLogger
from torchvision.utils import make_grid

from selfsup.checkpoints import InputFormat


class LogAugmentedViews(pl.Callback):
    """On the first training batch, log ``num_images`` images x every view as one grid to W&B.

    Rows are images, columns their views, un-normalised with the datamodule's mean and std
    so that they look as the augmentation left them. Rank 0 only; nothing without W&B.
    """

    def __init__(self, num_images: int = 8) -> None:
        self.num_images = num_images

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if trainer.global_step != 0 or batch_idx != 0 or not trainer.is_global_zero or not loggers:
            return
        views = [view[: self.num_images].detach().float().cpu() for view in batch[0]]
        input_format = InputFormat.of(trainer.datamodule)  # None: the views are shown as they are
        mean = torch.tensor(input_format.mean if input_format else (0.0, 0.0, 0.0)).view(1, 3, 1, 1)
        std = torch.tensor(input_format.std if input_format else (1.0, 1.0, 1.0)).view(1, 3, 1, 1)
        images = torch.stack([view * std + mean for view in views], dim=1).flatten(0, 1).clamp(0, 1)
        scale = max(1, 64 // images.shape[-1])  # small images are enlarged, pixel for pixel
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
        grid = make_grid(images, nrow=len(views), padding=2, pad_value=0.5)
        grid = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        for logger in loggers:
            logger.log_image(key="train/augmented_views", images=[grid], caption=["rows: images, columns: views"])
