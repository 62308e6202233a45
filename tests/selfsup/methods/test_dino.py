"""DINO on the shell: multi-crop through view groups, the temperature warm-up, the frozen last layer, bad settings."""

import math

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule, ViewGroup
from selfsup.errors import ConfigurationError
from selfsup.methods.dino import DINO
from tests.helpers import RecordMetric, quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(
    backbone="small_conv",
    backbone_kwargs={"width": 8},
    output_dim=64,
    head_hidden_dim=32,
    bottleneck_dim=16,
    warmup_epochs=0,
)
MULTI_CROP = [ViewGroup(count=2), ViewGroup(count=2, image_size=8)]


def test_the_teacher_sees_the_global_crops_and_the_student_every_crop():
    torch.manual_seed(0)
    model = DINO(**TINY).eval()
    views = [torch.randn(3, 3, 16, 16) for _ in range(2)] + [torch.randn(3, 3, 8, 8) for _ in range(2)]
    with torch.no_grad():
        teacher = [model.teacher_head(model.teacher_backbone(v)) for v in views[:2]]
        student = [model.head(model.backbone(v)) for v in views]
        expected = model.criterion(student, teacher, 0.04)
        loss, features = model.dino_objective(views, 0.04)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(features, model.backbone(views[0]))
    assert model.criterion.center.abs().sum() > 0  # updated from the teacher's outputs


def test_the_teacher_temperature_follows_the_papers_linspace_then_stays():
    model = DINO(**TINY, warmup_teacher_temperature=0.04, teacher_temperature=0.07, warmup_teacher_temperature_epochs=4)
    assert [model.teacher_temperature(e) for e in range(6)] == pytest.approx([0.04, 0.05, 0.06, 0.07, 0.07, 0.07])
    assert DINO(**TINY, warmup_teacher_temperature_epochs=0).teacher_temperature(0) == 0.07


def test_the_last_layer_is_frozen_in_the_first_epoch_only(tmp_path):
    pl.seed_everything(0)
    model = DINO(**TINY, optimizer="adamw", lr=3e-3, lr_scaling="none", freeze_last_layer_epochs=1)
    prototypes = [p.detach().clone() for p in model.head.last_layer.parameters()]
    snapshots = []

    class AtEpochEnd(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            snapshots.append([p.detach().clone() for p in pl_module.head.last_layer.parameters()])

    record = RecordMetric("train/dino_loss_step")
    trainer = quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=10, callbacks=[record, AtEpochEnd()])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16, view_groups=MULTI_CROP))
    assert all(torch.equal(a, b) for a, b in zip(snapshots[0], prototypes))  # epoch 0: frozen
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[1], prototypes))  # epoch 1: trained
    assert len(record.values) == 20 and all(math.isfinite(value) for value in record.values)


def test_fewer_views_than_global_crops_are_refused_before_training(tmp_path):
    trainer = quiet_trainer(tmp_path, max_steps=1)
    with pytest.raises(ConfigurationError, match="data.init_args.num_views must be >= 2 and >= model.init_args"):
        trainer.fit(DINO(**TINY, global_crops=3), datamodule=DigitsDataModule(batch_size=8, image_size=16))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_dim": 0}, "output_dim must be an integer >= 1, got 0"),
        ({"global_crops": 0}, "global_crops must be an integer >= 1, got 0"),
        ({"teacher_temperature": 0.0}, "teacher_temperature must be a finite number > 0"),
        ({"warmup_teacher_temperature": float("nan")}, "warmup_teacher_temperature must be a finite number > 0"),
        ({"warmup_teacher_temperature_epochs": -1}, "warmup_teacher_temperature_epochs must be an integer >= 0"),
        ({"freeze_last_layer_epochs": 0.5}, "freeze_last_layer_epochs must be an integer >= 0"),
        ({"teacher_momentum": 1.2}, "teacher_momentum must be in \\[0, 1\\]"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}") as error:
        DINO(**TINY | kwargs)
    assert "\n" not in str(error.value)
