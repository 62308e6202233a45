"""Deep InfoMax: its terms, its prior matching, and its training on digits."""

import pytest
import pytorch_lightning as pl
import torch

from selfsup.components.critics import PriorMatching
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError
from selfsup.losses.infomax import InfoMaxLoss
from selfsup.methods import DeepInfoMax
from tests.helpers import quiet_trainer

BACKBONE = dict(backbone="small_conv", backbone_kwargs={"width": 16}, warmup_epochs=0)


@pytest.mark.parametrize("estimator", ["jsd", "infonce"])
def test_local_term_averages_the_per_location_estimates(estimator):
    """Eq. 6.9: the local MI is 1/M^2 times the sum of the MI at every location."""
    torch.manual_seed(0)
    queries, keys = torch.randn(6, 4, 3), torch.randn(6, 3)
    criterion = InfoMaxLoss(estimator)
    per_location = torch.stack([criterion(queries[:, location], keys)[1] for location in range(4)])
    torch.testing.assert_close(criterion(queries, keys)[1], per_location.mean())


def test_matching_pairs_give_the_highest_infonce_estimate():
    keys = torch.eye(5)
    perfect = InfoMaxLoss("infonce")(10 * keys, keys)[1]
    shuffled = InfoMaxLoss("infonce")(10 * keys[torch.tensor([1, 2, 3, 4, 0])], keys)[1]
    assert perfect.item() == pytest.approx(torch.log(torch.tensor(5.0)).item(), abs=1e-3)
    assert shuffled.item() < 0


def test_prior_matching_keeps_the_two_players_gradients_apart():
    torch.manual_seed(0)
    prior_matching = PriorMatching(encoding_dim=4, hidden_dims=(8,))
    encoding = torch.randn(16, 4, requires_grad=True)

    encoder_loss, discriminator_loss = prior_matching(encoding)
    discriminator_loss.backward(retain_graph=True)
    assert encoding.grad is None
    assert all(parameter.grad.abs().sum() > 0 for parameter in prior_matching.parameters())

    prior_matching.zero_grad(set_to_none=True)
    encoder_loss.backward()
    assert encoding.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in prior_matching.parameters())


class RecordEstimate(pl.Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(float(trainer.callback_metrics["train/local_mi"]))


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["jsd", "dv", "infonce"])
def test_local_mi_rises_and_both_players_train(tmp_path, estimator):
    pl.seed_everything(0)
    model = DeepInfoMax(**BACKBONE, optimizer="adamw", lr=1e-3, estimator=estimator, global_weight=0.5, critic_dim=64)
    discriminator_before = [parameter.clone() for parameter in model.prior_matching.parameters()]
    recorder = RecordEstimate()
    trainer = quiet_trainer(tmp_path, max_steps=60, callbacks=[recorder])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32, image_size=16, num_views=1))

    first, last = recorder.values[:10], recorder.values[-10:]
    assert sum(last) / len(last) > sum(first) / len(first) + 0.2, (first, last)
    # global_step counts batches, not the discriminator's extra optimiser steps.
    assert trainer.global_step == 60 and len(recorder.values) == 60
    discriminator_after = list(model.prior_matching.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(discriminator_before, discriminator_after))
    assert len(trainer.optimizers) == 2


def test_discriminator_is_not_in_the_shared_optimiser(tmp_path):
    model = DeepInfoMax(**BACKBONE)
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=8, image_size=16, num_views=1))
    shared = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    own = {id(p) for group in trainer.optimizers[1].param_groups for p in group["params"]}
    assert own == {id(p) for p in model.prior_matching.parameters()}
    assert not shared & own
    assert {id(p) for p in model.backbone.parameters()} <= shared


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"local_stage": -1}, "not a stage before the last"),
        ({"local_stage": 4}, "not a stage before the last"),
        ({"global_weight": 0.0, "local_weight": 0.0}, "global_weight \\+ local_weight > 0"),
        ({"prior_weight": -1.0}, "prior_weight must be a finite number >= 0"),
        ({"estimator": "mine"}, "unknown MI estimator"),
    ],
)
def test_bad_settings_are_configuration_errors(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        DeepInfoMax(**BACKBONE, **kwargs)


def test_prior_matching_refuses_fp16_loss_scaling(tmp_path):
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.strategy.precision_plugin.precision = "16-mixed"
    model = DeepInfoMax(**BACKBONE)
    model.trainer = trainer
    with pytest.raises(ConfigurationError, match="bf16-mixed or 32"):
        model.setup("fit")
