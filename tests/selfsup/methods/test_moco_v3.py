"""MoCo v3 on the shell: its heads and loss, a ViT with a frozen patch projection, bad settings refused."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods.moco_v3 import MoCoV3
from tests.helpers import RecordMetric, quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(
    backbone="small_conv",
    backbone_kwargs={"width": 8},
    projection_hidden_dim=32,
    projection_dim=16,
    prediction_hidden_dim=32,
    warmup_epochs=0,
)


def test_the_heads_are_the_papers_and_the_loss_is_symmetrised_against_the_momentum_keys():
    torch.manual_seed(0)
    model = MoCoV3(**TINY, temperature=0.5).eval()
    linears = [m for m in model.projector if isinstance(m, nn.Linear)]
    norms = [m for m in model.projector if isinstance(m, nn.BatchNorm1d)]
    assert len(linears) == 3 and len(norms) == 3 and not norms[-1].affine  # BN after every layer, the last plain
    assert len([m for m in model.predictor if isinstance(m, nn.Linear)]) == 2
    views = [torch.randn(6, 3, 16, 16) for _ in range(2)]
    with torch.no_grad():
        queries = [model.predictor(model.projector(model.backbone(view))) for view in views]
        keys = [model.momentum_projector(model.momentum_backbone(view)) for view in views]
        expected = model.criterion(queries[0], keys[1]) + model.criterion(queries[1], keys[0])
        loss, features = model.moco_v3_objective(*views)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(features, model.backbone(views[0]))


def test_a_vit_trains_with_its_patch_projection_frozen_at_the_random_initialisation(tmp_path):
    pl.seed_everything(0)
    model = MoCoV3(
        **{**TINY, "backbone": "vit_micro", "backbone_kwargs": {"num_layers": 2}},
        freeze_patch_embedding=True,
        optimizer="adamw",
        lr=1e-3,
    )
    patch_projection = [p.detach().clone() for p in model.backbone.conv_proj.parameters()]
    block = model.backbone.encoder.layers[0].mlp[0].weight.detach().clone()
    trainer = quiet_trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16, image_size=16))
    assert all(torch.equal(p, q) for p, q in zip(model.backbone.conv_proj.parameters(), patch_projection))
    assert all(torch.equal(p, q) for p, q in zip(model.momentum_backbone.conv_proj.parameters(), patch_projection))
    assert not torch.equal(model.backbone.encoder.layers[0].mlp[0].weight, block)


def test_a_short_run_on_digits_lowers_the_loss(tmp_path):
    pl.seed_everything(0)
    record = RecordMetric("train/moco_v3_loss_step")
    model = MoCoV3(**TINY, temperature=0.5, optimizer="adamw", lr=3e-3, lr_scaling="none")
    trainer = quiet_trainer(tmp_path, max_steps=30, callbacks=[record])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16))
    losses = record.values
    assert sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.1, losses


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature must be a finite number > 0, got 0.0"),
        ({"temperature": float("nan")}, "temperature must be a finite number > 0, got nan"),
        ({"encoder_momentum": 1.01}, "encoder_momentum must be in \\[0, 1\\], got 1.01"),
        ({"encoder_momentum": float("inf")}, "encoder_momentum must be in \\[0, 1\\], got inf"),
        ({"encoder_momentum_schedule": "step"}, "encoder_momentum_schedule must be constant or cosine"),
        ({"projection_hidden_dim": 0}, "projection_hidden_dim must be an integer >= 1, got 0"),
        ({"projection_dim": "16"}, "projection_dim must be an integer >= 1"),
        ({"freeze_patch_embedding": True}, "freeze_patch_embedding must be false for backbone 'small_conv'"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}") as error:
        MoCoV3(**TINY | kwargs)
    assert "\n" not in str(error.value)
