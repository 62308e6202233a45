"""The pretext methods train on digits, and jigsaw's permutation set travels with the checkpoint."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import Jigsaw, RelativePosition, RotationPrediction
from tests.helpers import RecordMetric, quiet_trainer

BACKBONE = dict(backbone="small_conv", backbone_kwargs={"width": 16}, warmup_epochs=0)


CASES = {
    "rotation": (lambda: RotationPrediction(**BACKBONE, lr=0.2), 16, "train/rotation_loss"),
    "jigsaw": (
        lambda: Jigsaw(**BACKBONE, lr=0.2, num_permutations=10, classifier_hidden_dim=128),
        24,
        "train/jigsaw_loss",
    ),
    "relative_position": (
        lambda: RelativePosition(**BACKBONE, lr=0.2, classifier_hidden_dim=128),
        24,
        "train/position_loss",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(CASES))
def test_pretext_loss_falls_within_a_few_hundred_steps(tmp_path, method):
    build, image_size, key = CASES[method]
    pl.seed_everything(0)
    recorder = RecordMetric(key)
    trainer = quiet_trainer(tmp_path, max_steps=200, callbacks=[recorder])
    trainer.fit(build(), datamodule=DigitsDataModule(batch_size=32, image_size=image_size, num_views=1))
    first, last = recorder.values[:10], recorder.values[-10:]
    assert sum(last) / len(last) < 0.7 * sum(first) / len(first), (first, last)


def test_jigsaw_permutations_are_restored_from_the_checkpoint(tmp_path):
    trained = Jigsaw(**BACKBONE, num_permutations=20, permutation_seed=0)
    assert "permutations" in trained.state_dict()
    other_seed = Jigsaw(**BACKBONE, num_permutations=20, permutation_seed=1)
    assert not torch.equal(other_seed.permutations, trained.permutations)
    other_seed.load_state_dict(trained.state_dict())
    assert torch.equal(other_seed.permutations, trained.permutations)

    torch.save(
        {
            "state_dict": trained.state_dict(),
            "hyper_parameters": dict(trained.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        tmp_path / "jigsaw.ckpt",
    )
    resumed = Jigsaw.load_from_checkpoint(tmp_path / "jigsaw.ckpt", weights_only=True)
    assert torch.equal(resumed.permutations, trained.permutations)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"head_stage": True}, "head_stage must be null or a stage of this 4-stage backbone"),
        ({"head_stage": 4}, "head_stage must be null or a stage of this 4-stage backbone, in \\[-4, 3\\], got 4"),
        ({"head_stage": 1.0}, "head_stage must be null or a stage"),
        ({"head_hidden_dim": "8"}, "head_hidden_dim must be an integer >= 1, got '8'"),
        ({"head_hidden_dim": 0}, "head_hidden_dim must be an integer >= 1, got 0"),
    ],
)
def test_rotation_refuses_bad_heads_in_one_line(kwargs, message):
    with pytest.raises(ConfigurationError, match=f"^model\\.init_args\\.{message}"):
        RotationPrediction(**BACKBONE, **kwargs)


def test_rotations_head_reads_the_backbones_feature_by_default_or_the_chosen_stage():
    torch.manual_seed(0)
    assert RotationPrediction(**BACKBONE).rotation_head[0].in_features == 128  # small_conv width 16: feature 128
    assert RotationPrediction(**BACKBONE, head_stage=1).rotation_head[0].in_features == 32
