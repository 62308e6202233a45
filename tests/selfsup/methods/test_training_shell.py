"""The shared training shell: optimiser choice, parameter groups, scaled per-step schedule."""

import math

import pytest
import pytorch_lightning as pl
import torch

from selfsup import methods
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import SimCLR
from selfsup.optim import LARS
from selfsup.schedules import warmup_cosine
from tests.helpers import quiet_trainer


class RecordLearningRates(pl.Callback):
    def __init__(self):
        self.backbone, self.probe = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        groups = trainer.optimizers[0].param_groups
        self.backbone.append(groups[0]["lr"])
        self.probe.append(groups[-1]["lr"])


@pytest.mark.parametrize(
    "optimizer, expected_class", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW), ("lars", LARS)]
)
def test_scaled_learning_rate_follows_warmup_then_cosine_per_step(tmp_path, optimizer, expected_class):
    model = SimCLR(
        backbone="small_conv",
        backbone_kwargs={"width": 8},
        optimizer=optimizer,
        lr=0.3,
        lr_scaling="linear",
        reference_batch_size=256,
        warmup_epochs=1,
        probe_lr=0.1,
        weight_decay=1e-4,
    )
    recorder = RecordLearningRates()
    trainer = quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=4, callbacks=[recorder])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))

    assert isinstance(trainer.optimizers[0], expected_class)
    peak = 0.3 * 32 / 256
    factors = [warmup_cosine(step, 4, 8) for step in range(8)]
    assert recorder.backbone == pytest.approx([peak * f for f in factors])
    assert recorder.probe == pytest.approx([0.1 * f for f in factors])
    decayed, excluded, probe = trainer.optimizers[0].param_groups
    assert decayed["weight_decay"] == 1e-4 and excluded["weight_decay"] == 0.0 and probe["weight_decay"] == 0.0
    assert all(p.ndim <= 1 for p in excluded["params"])
    assert {id(p) for p in probe["params"]} == {id(p) for p in model.online_probe.parameters()}


@pytest.mark.parametrize("method", ["SimCLR", "MoCo", "MoCoV3", "BYOL", "AMDIM"])
def test_a_method_that_compares_views_refuses_one_view_per_image_before_training(tmp_path, method):
    model = getattr(methods, method)(backbone="small_conv", backbone_kwargs={"width": 8})
    trainer = quiet_trainer(tmp_path, max_steps=1)
    expected = f"data.init_args.num_views must be >= 2 \\({method} compares 2 views of each image\\), got 1"
    with pytest.raises(ConfigurationError, match=expected):
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=8, image_size=16, num_views=1))


class RecordWeightDecay(pl.Callback):
    def __init__(self):
        self.groups = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.groups.append([group["weight_decay"] for group in optimizer.param_groups])


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "lars"])
def test_weight_decay_follows_a_cosine_to_its_final_value_on_the_decayed_group_only(tmp_path, optimizer):
    """DINO's schedule: 0.04 at the first step to 0.4 at the end, per step; biases, norms and the probe stay at 0."""
    model = SimCLR(
        backbone="small_conv",
        backbone_kwargs={"width": 8},
        optimizer=optimizer,
        weight_decay=0.04,
        final_weight_decay=0.4,
        warmup_epochs=0,
    )
    recorder = RecordWeightDecay()
    trainer = quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=4, callbacks=[recorder])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    by_hand = [0.4 + (0.04 - 0.4) * (math.cos(math.pi * step / 8) + 1) / 2 for step in range(8)]
    assert [decayed for decayed, _, _ in recorder.groups] == pytest.approx(by_hand)
    assert by_hand[0] == pytest.approx(0.04) and by_hand[-1] < 0.4
    assert all(excluded == probe == 0.0 for _, excluded, probe in recorder.groups)


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_a_final_weight_decay_out_of_range_is_refused(value):
    with pytest.raises(ConfigurationError, match="final_weight_decay must be null or a finite number >= 0"):
        SimCLR(backbone="small_conv", backbone_kwargs={"width": 8}, final_weight_decay=value)
