"""AMDIM on the shell: its scales and candidates, a short run on digits, and bad settings refused."""

import math

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import Augmentation, DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.losses.amdim import clipped_nce
from selfsup.methods.amdim import AMDIM
from tests.helpers import RecordMetric, quiet_trainer

TINY = dict(backbone="small_conv", backbone_kwargs={"width": 8}, embedding_dim=16)


def _model(**overrides) -> AMDIM:
    torch.manual_seed(0)
    return AMDIM(**{**TINY, **overrides})


def _views(batch: int = 6):
    generator = torch.Generator().manual_seed(3)
    return [torch.randn(batch, 3, 16, 16, generator=generator) for _ in range(2)]


def test_the_scales_are_the_8x8_and_4x4_maps_and_every_location_of_the_batch_is_a_candidate():
    model = _model()
    features, embedded = model.encode(_views()[0])
    assert features.shape == (6, 64)  # the pooled last stage: the representation kept
    assert embedded["global"].shape == (6, 16)
    assert embedded["fine"].shape == (6, 8 * 8, 16) and embedded["coarse"].shape == (6, 4 * 4, 16)

    loss, logs, _ = model.amdim_objective(*_views())
    for name, locations in (("1t5", 16), ("1t7", 64), ("5t5", 16)):
        assert float(logs[f"mi_{name}"] + logs[f"nce_{name}"]) == pytest.approx(math.log(1 + 5 * locations))
    loss.backward()
    for name, parameter in model.named_parameters():
        if not name.startswith("online_probe"):
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_5t5_source_is_the_chosen_location_of_each_image():
    model = _model(pairings=["5t5"]).eval()
    view_1, view_2 = _views()
    locations = torch.tensor([[0, 5, 15, 3, 3, 9], [1, 1, 2, 8, 0, 14]])
    _, logs, _ = model.amdim_objective(view_1, view_2, locations)
    with torch.no_grad():
        maps_1, maps_2 = model.encode(view_1)[1]["coarse"], model.encode(view_2)[1]["coarse"]
    rows = torch.arange(6)
    expected = (
        clipped_nce(maps_1[rows, locations[0]], maps_2, 20.0)[0]
        + clipped_nce(maps_2[rows, locations[1]], maps_1, 20.0)[0]
    ) / 2
    torch.testing.assert_close(logs["nce_5t5"], expected)
    assert sorted(model.embeddings) == ["coarse"]  # only the scales a pairing uses are embedded


def test_a_short_run_on_digits_keeps_the_loss_finite_and_lowers_it(tmp_path):
    """Crops only: the default colour jitter makes the first steps' progress too slow to see in 24 steps."""
    pl.seed_everything(0)
    recorder = RecordMetric("train/amdim_loss_step")
    model = AMDIM(**TINY, optimizer="adamw", lr=1e-2, lr_scaling="none", warmup_epochs=0)
    trainer = quiet_trainer(tmp_path, max_steps=24, callbacks=[recorder])
    crops = Augmentation(
        crop_scale=(0.6, 1.0), horizontal_flip_prob=0.0, jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0
    )
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16, augmentation=crops))
    assert len(recorder.values) == 24 and all(math.isfinite(value) for value in recorder.values)
    first, last = recorder.values[:6], recorder.values[-6:]
    assert sum(last) / len(last) < sum(first) / len(first) - 0.2, (first, last)


def test_one_view_is_refused_before_training(tmp_path):
    trainer = quiet_trainer(tmp_path, max_steps=1)
    with pytest.raises(ConfigurationError, match="data.init_args.num_views must be >= 2"):
        trainer.fit(_model(), datamodule=DigitsDataModule(batch_size=8, image_size=16, num_views=1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score_clip": 0.0}, "score_clip must be a finite number > 0, got 0.0"),
        ({"score_clip": -20.0}, "score_clip must be a finite number > 0"),
        ({"score_clip": float("nan")}, "score_clip must be a finite number > 0, got nan"),
        ({"score_clip": "20"}, "score_clip must be a finite number > 0, got '20'"),
        ({"score_penalty": -0.05}, "score_penalty must be a finite number >= 0"),
        ({"score_penalty": float("inf")}, "score_penalty must be a finite number >= 0"),
        ({"fine_stage": 4}, "fine_stage must be a stage index of this 4-stage backbone, in \\[-4, 3\\]"),
        ({"coarse_stage": -5}, "coarse_stage must be a stage index"),
        ({"fine_stage": 1.0}, "fine_stage must be a stage index"),
        ({"coarse_stage": True}, "coarse_stage must be a stage index"),
        ({"fine_stage": 2, "coarse_stage": 1}, "fine_stage must be a stage before coarse_stage=1"),
        ({"embedding_dim": 0}, "embedding_dim must be an integer >= 1"),
        ({"embedding_dim": "16"}, "embedding_dim must be an integer >= 1"),
        ({"pairings": []}, "pairings must be a non-empty list"),
        ({"pairings": ["1t5", "1t5"]}, "pairings must be a non-empty list of distinct names"),
        ({"pairings": ["7t7"]}, "pairings must be .* among \\['1t5', '1t7', '5t5'\\]"),
        ({"pairings": "1t5"}, "pairings must be a non-empty list"),
        ({"pairings": [["1t5"]]}, "pairings must be a non-empty list"),
    ],
)
def test_bad_settings_are_one_line_configuration_errors_naming_the_key(kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}") as error:
        AMDIM(**TINY | kwargs)
    assert "\n" not in str(error.value)
