"""CPC on the shell: the patch grid, causality from pixels to contexts, a short run, and bad settings refused."""

import math

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import CPC
from tests.helpers import quiet_trainer

TINY = dict(backbone="small_conv", backbone_kwargs={"width": 8}, context_hidden_dim=8, context_layers=2)
GRID = dict(grid_size=3, patch_size=8, patch_stride=4, prediction_steps=2)  # spans 16 px


def _model(**overrides) -> CPC:
    torch.manual_seed(0)
    return CPC(**{**TINY, **GRID, **overrides})


def _images(size: int = 16, batch: int = 4) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(3)) + 0.5


def test_patches_are_the_overlapping_grid_in_row_major_order():
    model, images = _model(), _images()
    patches = model.cut_patches(images)
    assert patches.shape == (4, 9, 3, 8, 8)
    for i in range(3):
        for j in range(3):
            assert torch.equal(patches[:, 3 * i + j], images[:, :, 4 * i : 4 * i + 8, 4 * j : 4 * j + 8])


def test_a_larger_image_places_the_whole_grid_at_one_random_offset_per_image():
    model, images = _model(), _images(size=21)
    torch.manual_seed(5)
    patches = model.cut_patches(images)
    for b in range(len(images)):
        corners = [
            (top, left)
            for top in range(6)
            for left in range(6)
            if torch.equal(patches[b, 0], images[b, :, top : top + 8, left : left + 8])
        ]
        assert len(corners) == 1
        top, left = corners[0]
        assert torch.equal(patches[b, 8], images[b, :, top + 8 : top + 16, left + 8 : left + 16])


def test_patch_augmentation_flips_drops_colours_and_shifts_inside_the_image():
    images = _images()
    plain = _model().cut_patches(images)
    assert torch.equal(_model(patch_flip_prob=1.0).cut_patches(images), plain.flip(-1))
    dropped = _model(colour_drop_prob=1.0).cut_patches(images)
    kept_channels = (dropped.abs().sum(dim=(-2, -1)) > 0).sum(dim=-1)
    assert (kept_channels == 1).all()  # the inputs are > 0, so exactly the kept channel is non-zero
    torch.manual_seed(0)
    shifted = _model(patch_jitter=2).cut_patches(images)
    assert shifted.shape == plain.shape and not torch.equal(shifted, plain)


def test_contexts_of_the_rows_above_ignore_pixels_that_only_the_last_row_of_patches_sees():
    """End to end, in eval mode: pixels below row G-2's patches change z and c of the last row alone."""
    model = _model(grid_size=4, prediction_steps=3).eval()  # rows start at 0, 4, 8, 12; patches 8 px: span 20
    images = _images(size=20)
    changed = images.clone()
    changed[:, :, 16:] = torch.rand(4, 3, 4, 20, generator=torch.Generator().manual_seed(4))  # only row 3 sees y >= 16

    def contexts(batch):
        with torch.no_grad():
            z = model.backbone(model.cut_patches(batch).flatten(0, 1)).view(4, 4, 4, -1)
            return z, model.context(z)

    (z, c), (z_changed, c_changed) = contexts(images), contexts(changed)
    assert torch.equal(z_changed[:, :3], z[:, :3]) and not torch.equal(z_changed[:, 3], z[:, 3])
    assert torch.equal(c_changed[:, :3], c[:, :3])
    assert not torch.equal(c_changed[:, 3], c[:, 3])


def test_in_training_mode_batch_norm_lets_the_last_row_leak_upwards():
    """Why CPC v2 replaced batch norm by layer norm: batch statistics mix every patch of the batch."""
    model = _model(grid_size=4, prediction_steps=3).train()
    images = _images(size=20)
    changed = images.clone()
    changed[:, :, 16:] = 0.0
    with torch.no_grad():
        z = model.backbone(model.cut_patches(images).flatten(0, 1)).view(4, 4, 4, -1)
        z_changed = model.backbone(model.cut_patches(changed).flatten(0, 1)).view(4, 4, 4, -1)
    assert not torch.equal(z_changed[:, :3], z[:, :3])


def test_the_objective_logs_every_step_and_counts_every_patch_of_the_batch_as_a_candidate():
    model = _model(prediction_steps=2, min_step=1, target_dim=5)
    loss, logs = model.cpc_objective(_images())
    assert sorted(logs) == ["acc_k1", "acc_k2", "loss_k1", "loss_k2", "mi_k1", "mi_k2"]
    assert float(logs["mi_k1"] + logs["loss_k1"]) == pytest.approx(math.log(4 * 9), rel=1e-6)
    assert float(loss.detach()) == pytest.approx(float(logs["loss_k1"] + logs["loss_k2"]) / 2, rel=1e-6)
    loss.backward()
    for name in ("backbone", "context_network", "target_projection", "predictors"):
        module = getattr(model, name)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name
    assert _model(min_step=2, prediction_steps=2).steps == (2,)


class _RecordLoss(pl.Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(float(trainer.callback_metrics["train/cpc_loss_step"]))


def test_a_short_run_on_digits_keeps_the_loss_finite_and_lowers_it(tmp_path):
    pl.seed_everything(0)
    recorder = _RecordLoss()
    model = CPC(**{**TINY, **GRID}, target_dim=16, optimizer="adamw", lr=2e-3, lr_scaling="none", warmup_epochs=0)
    trainer = quiet_trainer(tmp_path, max_steps=20, callbacks=[recorder])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16, num_views=1))
    assert len(recorder.values) == 20 and all(math.isfinite(v) for v in recorder.values)
    first, last = recorder.values[:5], recorder.values[-5:]
    assert sum(last) / 5 < 0.9 * sum(first) / 5, (first, last)  # from ~5.4 to ~4.5 in 20 steps


BAD = [
    ({"grid_size": 1}, "grid_size"),
    ({"grid_size": 0}, "grid_size"),
    ({"patch_size": 0}, "patch_size"),
    ({"patch_size": -8}, "patch_size"),
    ({"patch_stride": 0}, "patch_stride"),
    ({"patch_stride": -4}, "patch_stride"),
    ({"prediction_steps": 0}, "prediction_steps"),
    ({"prediction_steps": 3}, "prediction_steps"),  # K >= grid rows: no target on the grid
    ({"prediction_steps": 7}, "prediction_steps"),
    ({"min_step": 0}, "min_step"),
    ({"min_step": 3, "prediction_steps": 2}, "min_step"),
    ({"target_dim": 0}, "target_dim"),
    ({"context_hidden_dim": 0}, "context_hidden_dim"),
    ({"context_layers": -1}, "context_layers"),
    ({"patch_jitter": -1}, "patch_jitter"),
    ({"patch_flip_prob": 1.5}, "patch_flip_prob"),
    ({"colour_drop_prob": float("nan")}, "colour_drop_prob"),
]


@pytest.mark.parametrize(("overrides", "name"), BAD, ids=[f"{name}={list(o.values())}" for o, name in BAD])
def test_bad_settings_are_refused_in_one_line_naming_the_key(overrides, name):
    with pytest.raises(ConfigurationError) as error:
        _model(**overrides)
    message = str(error.value)
    assert message.startswith(f"model.init_args.{name} must be ") and "\n" not in message


def test_a_grid_larger_than_the_images_is_refused_before_training_and_on_a_batch(tmp_path):
    model = _model(grid_size=5)  # 8 + 4 x 4 = 24 px
    trainer = quiet_trainer(tmp_path, max_steps=1)
    with pytest.raises(ConfigurationError) as error:
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=8, image_size=16, num_views=1))
    message = str(error.value)
    assert message.startswith("model.init_args.grid_size must be ") and "\n" not in message
    assert "16x16" in message and "span 24 px" in message
    with pytest.raises(ConfigurationError, match="model.init_args.grid_size"):
        _model(patch_size=12).cut_patches(_images())  # 12 + 2 x 6 = 24 px
