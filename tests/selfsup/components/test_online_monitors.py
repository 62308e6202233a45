"""The online linear probe and kNN monitor: detached from the backbone, identical under DDP."""

import os

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule
from selfsup.methods import SimCLR
from tests.helpers import run_on_two_processes


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
        strategy="ddp" if devices > 1 else "auto",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(_model(), datamodule=datamodule, verbose=False)
    return {key: value.item() for key, value in trainer.callback_metrics.items()}


def _validate_on_rank(rank: int, world_size: int, out_path: str) -> None:
    # The process group exists already; these variables tell Lightning's environment which rank this is,
    # so it joins the group instead of launching processes (and the harness destroys the group cleanly).
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world_size))
    metrics = _validate(world_size)
    if rank == 0:
        torch.save(metrics, out_path)


@pytest.mark.slow
def test_two_process_validation_equals_single_process(tmp_path):
    single = _validate(1)
    run_on_two_processes(_validate_on_rank, str(tmp_path / "metrics.pt"))
    distributed = torch.load(tmp_path / "metrics.pt")
    assert set(single) == {"val/knn_acc", "val/linear_acc"}
    assert distributed == pytest.approx(single, abs=1e-7)
    assert 0.5 < single["val/knn_acc"] < 1.0
