"""Every method trains a Vision Transformer: its stages serve as the maps, its feature as the global vector."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.data import DigitsDataModule
from selfsup.data.augment import ViewGroup
from selfsup.errors import ConfigurationError
from selfsup.methods import (
    AMDIM,
    BYOL,
    CPC,
    DINO,
    DeepInfoMax,
    DenoisingAutoencoder,
    Jigsaw,
    MoCo,
    MoCoV3,
    RelativePosition,
    RotationPrediction,
    SimCLR,
)
from tests.helpers import quiet_trainer

pytestmark = pytest.mark.usefixtures("one_thread")

VIT = dict(backbone="vit_micro", backbone_kwargs={"num_layers": 3}, warmup_epochs=0, lr=0.01)
# method, its arguments, its data's views; the autoencoder reconstructs from the last block's tokens and never
# trains the final norm, which only its (detached) online probe reads.
CASES = {
    "simclr": (SimCLR, dict(projection_dim=16), 2, ()),
    "moco": (MoCo, dict(queue_size=64, projection_dim=16), 2, ()),
    "moco_v3": (MoCoV3, dict(projection_hidden_dim=32, projection_dim=16, prediction_hidden_dim=32), 2, ()),
    "dino": (DINO, dict(output_dim=32, head_hidden_dim=16, bottleneck_dim=8, freeze_last_layer_epochs=0), 2, ()),
    "byol": (BYOL, dict(projection_hidden_dim=32, projection_dim=16, prediction_hidden_dim=32), 2, ()),
    "rotation": (RotationPrediction, {}, 1, ()),
    "dim": (DeepInfoMax, dict(local_stage=1, encoding_dim=16), 1, ()),
    "amdim": (AMDIM, dict(fine_stage=0, coarse_stage=1, embedding_dim=16), 2, ()),
    "autoencoder": (DenoisingAutoencoder, dict(image_size=16, encoder_stage=-1), 1, ("encoder.ln.",)),
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_a_few_steps_train_every_part_of_the_vit(tmp_path, method):
    build, kwargs, views, untrained = CASES[method]
    pl.seed_everything(0)
    model = build(**{**VIT, **kwargs})
    before = {name: p.detach().clone() for name, p in model.backbone.named_parameters()}
    trainer = quiet_trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16, image_size=16, num_views=views))
    assert trainer.global_step == 3
    parameters = dict(model.backbone.named_parameters())
    assert all(torch.isfinite(p).all() for p in parameters.values())
    unchanged = {name for name, p in parameters.items() if torch.equal(p, before[name])}
    assert unchanged == {name for name in parameters if name.startswith(untrained)}, unchanged


@pytest.mark.parametrize(
    ("build", "kwargs"),
    [(Jigsaw, dict(num_permutations=10)), (RelativePosition, {})],
    ids=["jigsaw", "relative_position"],
)
def test_a_method_whose_tiles_are_off_the_vit_patch_grid_is_refused_in_one_line(tmp_path, build, kwargs):
    """Tiles of 10 px cannot be cut into the ViT's 4 px patches; the message names what to resize."""
    model = build(**{**VIT, **kwargs})
    trainer = quiet_trainer(tmp_path, max_steps=1)
    with pytest.raises(
        ConfigurationError, match="^the ViT backbone cuts 4x4 patches, so it takes images whose"
    ) as error:
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=8, image_size=36, num_views=1))
    assert "\n" not in str(error.value)


def test_cpc_trains_a_vit_on_its_patches_through_the_resized_position_embedding(tmp_path):
    """CPC's 8 px patches and the monitors' 16 px images share one ViT: its embedding is resized per grid."""
    model = CPC(**VIT, grid_size=3, patch_size=8, patch_stride=4, prediction_steps=1, target_dim=16)
    before = model.backbone.encoder.pos_embedding.detach().clone()
    quiet_trainer(tmp_path, max_steps=2).fit(model, datamodule=DigitsDataModule(batch_size=8, num_views=1))
    assert not torch.equal(before, model.backbone.encoder.pos_embedding)


def test_dino_multi_crop_feeds_local_crops_of_another_size_to_the_vit_student(tmp_path):
    """DINO's 96 px local crops beside 224 px global ones, at digits' scale: 8 px local crops, 16 px global ones."""
    model = DINO(**VIT, output_dim=32, head_hidden_dim=16, bottleneck_dim=8, freeze_last_layer_epochs=0)
    groups = [ViewGroup(count=2), ViewGroup(count=2, image_size=8)]
    data = DigitsDataModule(batch_size=8, image_size=16, view_groups=groups)
    before = model.backbone.encoder.pos_embedding.detach().clone()
    quiet_trainer(tmp_path, max_steps=2).fit(model, datamodule=data)
    assert not torch.equal(before, model.backbone.encoder.pos_embedding)
