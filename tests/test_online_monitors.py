"""The online linear probe and kNN monitor: detached from the backbone, identical under DDP."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule
from selfsup.methods import SimCLR


def _model():
    torch.manual_seed(0)
    return SimCLR(backbone="small_conv", backbone_kwargs={"width": 8}, num_classes=10)


def test_probe_loss_trains_the_probe_but_not_the_backbone():
    model = _model()
    features = model.backbone(torch.randn(6, 3, 16, 16))
    loss = model.online_probe_step(features, torch.tensor([0, 1, 2, -1, 4, 5]))
    loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.online_probe.weight.grad.abs().sum() > 0


def test_unlabelled_batch_gives_zero_probe_loss():
    model = _model()
    features = model.backbone(torch.randn(4, 3, 16, 16))
    assert model.online_probe_step(features, torch.full((4,), -1)).item() == 0.0


def _validate(devices: int) -> dict[str, float]:
    # Odd split sizes (1077 bank images, 359 queries) make the distributed sampler pad with duplicates.
    datamodule = DigitsDataModule(batch_size=50, image_size=16, knn_bank_size=1077)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(_model(), datamodule=datamodule, verbose=False)
    return {key: value.item() for key, value in trainer.callback_metrics.items()}


@pytest.mark.slow
def test_two_process_validation_equals_single_process():
    single, distributed = _validate(1), _validate(2)
    assert set(single) == {"val/knn_acc", "val/linear_acc"}
    assert distributed == pytest.approx(single, abs=1e-7)
    assert 0.5 < single["val/knn_acc"] < 1.0
