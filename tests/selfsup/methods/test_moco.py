"""MoCo as a LightningModule: the momentum update, the queue across checkpoints, the setup checks."""

import copy

import pytest
import torch

from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import MoCo
from tests.helpers import quiet_trainer


def _moco(**overrides):
    torch.manual_seed(0)
    settings = dict(
        backbone="small_conv",
        backbone_kwargs={"width": 8},
        queue_size=64,
        projection_dim=16,
        encoder_momentum=0.9,
        warmup_epochs=0,
    )
    settings.update(overrides)
    return MoCo(**settings)


def _trainer(tmp_path, **overrides):
    return quiet_trainer(tmp_path, **{"max_steps": 1, **overrides})


@pytest.mark.parametrize("projection", ["linear", "mlp"])
def test_key_encoder_after_one_step_is_m_key_plus_one_minus_m_query(tmp_path, projection):
    model = _moco(projection=projection)
    keys_before = copy.deepcopy(list(model.key_backbone.parameters()) + list(model.key_projector.parameters()))
    queries_before = copy.deepcopy(list(model.backbone.parameters()) + list(model.projector.parameters()))
    _trainer(tmp_path).fit(model, datamodule=DigitsDataModule(batch_size=32))

    queries_after = list(model.backbone.parameters()) + list(model.projector.parameters())
    keys_after = list(model.key_backbone.parameters()) + list(model.key_projector.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(queries_after, queries_before))
    for key_before, query_after, key_after in zip(keys_before, queries_after, keys_after):
        torch.testing.assert_close(key_after, 0.9 * key_before + 0.1 * query_after.detach())
        assert not key_after.requires_grad


def test_checkpoint_restores_queue_and_pointer_exactly(tmp_path):
    model = _moco()
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16))
    assert int(model.queue.pointer) == 48
    trainer.save_checkpoint(tmp_path / "moco.ckpt")

    restored = MoCo.load_from_checkpoint(tmp_path / "moco.ckpt", weights_only=True)
    assert torch.equal(restored.queue.keys, model.queue.keys)
    assert int(restored.queue.pointer) == 48
    for name, param in model.key_backbone.state_dict().items():
        assert torch.equal(restored.key_backbone.state_dict()[name], param)


def test_queue_size_must_be_a_multiple_of_the_keys_per_step(tmp_path):
    with pytest.raises(ConfigurationError, match=r"queue_size=100 must be a multiple .* 32"):
        _trainer(tmp_path).fit(_moco(queue_size=100), datamodule=DigitsDataModule(batch_size=32))


def test_symmetric_variant_counts_both_views_in_the_queue_check(tmp_path):
    with pytest.raises(ConfigurationError, match=r"multiple of the keys enqueued per step, 64"):
        _trainer(tmp_path).fit(_moco(queue_size=96, symmetric=True), datamodule=DigitsDataModule(batch_size=32))
    model = _moco(queue_size=128, symmetric=True)
    _trainer(tmp_path).fit(model, datamodule=DigitsDataModule(batch_size=32))
    assert int(model.queue.pointer) == 64


def test_split_batch_norm_emulation_is_in_both_encoders_and_trains(tmp_path):
    from selfsup.components.split_batch_norm import SplitBatchNorm2d

    model = _moco(split_bn_groups=4)
    for encoder in (model.backbone, model.key_backbone):
        norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(isinstance(m, SplitBatchNorm2d) and m.num_splits == 4 for m in norms)
    _trainer(tmp_path).fit(model, datamodule=DigitsDataModule(batch_size=32))
    assert int(model.queue.pointer) == 32
    assert torch.isfinite(model.trainer.callback_metrics["train/info_nce_step"])
