"""The ``selfsup`` command: LightningCLI over every method and datamodule.

    selfsup fit --config configs/pretrain/simclr_digits.yaml
    selfsup fit --config configs/pretrain/simclr_cifar10.yaml --data.data_dir /data/cifar10
    selfsup fit --config ... --ckpt_path runs/simclr_cifar10/checkpoints/last.ckpt   # resume

Every constructor argument of the model, the datamodule, the trainer and the
checkpoint callback is a YAML key. A run directory (``trainer.default_root_dir``)
collects ``checkpoints/last.ckpt``, ``checkpoints/best-*.ckpt`` (highest online kNN
accuracy), ``config.yaml``, the logs and ``backbone.pt``.

Bad input ends the command with one line on stderr and exit status 2.
"""

import os
import sys

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI

from selfsup.data import PretrainDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import PretrainMethod


class SelfsupCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/knn_acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.save_top_k": 1,
                "checkpoint.filename": "best-epoch{epoch:03d}-knn{val/knn_acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.link_arguments(
            "trainer.default_root_dir", "checkpoint.dirpath", compute_fn=lambda root: os.path.join(root or ".", "checkpoints")
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")


def main(args: list[str] | None = None) -> None:
    try:
        SelfsupCLI(
            PretrainMethod,
            PretrainDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    except ConfigurationError as error:
        print(f"selfsup: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
